/**
 * TLS end to end with self-made certificates: intranet links over mutual TLS, the gateway's TLS
 * over TCP and wss://, login over HTTPS, the SDK on both transports, refusal of plaintext, and a
 * certificate renewed on disk being served without a restart.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XClient, login } from '../src/client/index.js';
import { linkOptions } from '../src/context.js';
import { Gateway } from '../src/gateway/gateway.js';
import { Link } from '../src/link/link.js';
import { silentLogger } from '../src/log.js';
import { LoginServer } from '../src/login/login.js';
import { ClusterNode } from '../src/node/node.js';
import { waitFor } from '../testkit/index.js';
import { haveOpenssl, makeCa, makeCert } from './helpers/certs.js';
import { startCluster, waitUntil } from './helpers/inproc.js';

const HAVE_OPENSSL = haveOpenssl();
if (!HAVE_OPENSSL) console.warn('tls.test: openssl not found; the TLS tests are skipped');

type Cluster = Awaited<ReturnType<typeof startCluster>>;
let dir: string;
let ca: string;
let c: Cluster;
let gw: Gateway;
let loginServer: LoginServer;

/** fetch over https trusting our CA (Node's global fetch has no per-call CA). */
function fetchWithCa(caPem: string): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    const body = typeof init?.body === 'string' ? init.body : '';
    return new Promise<Response>((resolve, reject) => {
      const req = https.request(url, { method: init?.method ?? 'GET', headers: init?.headers as Record<string, string>, ca: caPem }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () =>
          resolve(new Response(Buffer.concat(chunks), { status: res.statusCode ?? 0, headers: res.headers as Record<string, string> })),
        );
      });
      req.on('error', reject);
      req.end(body);
    });
  }) as typeof fetch;
}

function peerFingerprint(port: number, caPem: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: caPem, servername: 'localhost' }, () => {
      resolve(s.getPeerCertificate().fingerprint256);
      s.destroy();
    });
    s.on('error', reject);
  });
}

describe.skipIf(!HAVE_OPENSSL)('TLS', () => {
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'xs-tls-'));
    ca = makeCa(dir).ca;
    const { cert, key } = makeCert(dir, 'node');
    c = await startCluster((cfg) => {
      cfg.tls.cert = cert;
      cfg.tls.key = key;
      cfg.tls.ca = ca;
      cfg.link.tls = true;
      cfg.gateway.tls = true;
      cfg.login.tls = true;
      cfg.login.autoRegister = true;
    });
    const lobby = c.own(new ClusterNode(c.ctx, { type: 4, name: 'lobby' }));
    lobby.enableRelay();
    lobby.handleClient(1, (data) => data);
    gw = c.own(new Gateway(c.ctx));
    loginServer = c.own(new LoginServer(c.ctx));
    await Promise.all([lobby.start(), gw.start(), loginServer.start()]);
    await Promise.all([lobby.ready(5000), gw.node.ready(5000), loginServer.whenRegistered(5000)]);
    await waitUntil(() => gw.node.has(lobby.id), 5000, 'the gateway lists the lobby (over an mTLS link)');
  });

  afterAll(async () => {
    await c?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('logs in over HTTPS and talks to the lobby through the gateway over wss:// and TLS over TCP', async () => {
    const caPem = readFileSync(ca, 'utf8');
    for (const transport of ['ws', 'tcp'] as const) {
      const lr = await login(`https://127.0.0.1:${loginServer.port}`, `tls-${transport}`, 'pw', { fetch: fetchWithCa(caPem) });
      expect(lr.gateway.tls).toBe(true);
      expect(lr.gateway.wsUrl).toMatch(/^wss:\/\//);
      const client = new XClient({ transport, tls: { ca: caPem, servername: 'localhost' } });
      await client.connect(lr);
      const reply = await client.request(4001, `over ${transport}`);
      expect(Buffer.from(reply).toString()).toBe(`over ${transport}`);
      await client.close();
    }
  });

  it('refuses plaintext: a client without TLS gets no WELCOME, a link without TLS never reaches the handshake', async () => {
    const lr = await login(`https://127.0.0.1:${loginServer.port}`, 'tls-plain', 'pw', { fetch: fetchWithCa(readFileSync(ca, 'utf8')) });
    const plain = new XClient({ transport: 'tcp', connectTimeoutMs: 1500, reconnect: false });
    await expect(plain.connect({ ...lr, gateway: { ...lr.gateway, tls: false } })).rejects.toMatchObject({
      code: expect.stringMatching(/DISCONNECTED|TIMEOUT|CONNECT_FAILED/),
    });
    const noTls = { ...linkOptions(c.ctx.config, silentLogger()), tls: undefined };
    await expect(Link.dial('127.0.0.1', gw.node.port(0), { type: 5, id: 'plain' }, { type: 3, id: gw.node.id }, noTls)).rejects.toBeDefined();
  });

  it('a certificate renewed on disk is served to new connections without a restart', async () => {
    const caPem = readFileSync(ca, 'utf8');
    const before = await peerFingerprint(gw.tcpPort, caPem);
    const renewed = makeCert(dir, 'renewed');
    // Key first, then the certificate: the reload keeps the old pair until both read back valid.
    copyFileSync(renewed.key, c.config.tls.key);
    copyFileSync(renewed.cert, c.config.tls.cert);
    const after = await waitFor(
      async () => {
        const f = await peerFingerprint(gw.tcpPort, caPem).catch(() => before);
        return f !== before ? f : undefined;
      },
      { timeoutMs: 15_000, what: 'the gateway serving the renewed certificate', pollMs: 250 },
    );
    expect(after).not.toBe(before);
    // And clients still connect.
    const lr = await login(`https://127.0.0.1:${loginServer.port}`, 'tls-renewed', 'pw', { fetch: fetchWithCa(caPem) });
    const client = new XClient({ transport: 'tcp', tls: { ca: caPem, servername: 'localhost' } });
    await client.connect(lr);
    await client.close();
  });
});
