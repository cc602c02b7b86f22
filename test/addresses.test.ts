/** Bind vs advertise: ${ENV} references, advertised addresses derived from binds, client endpoints, the mgr's loopback rule. */
import type { NetworkInterfaceInfo } from 'node:os';
import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { advertisedFor, expandEnv, parseHostPort } from '../src/config/addresses.js';
import { resolveConfig } from '../src/config/load.js';
import { NodeInfoSchema } from '../src/gen/xserver/v1/cluster_pb.js';
import { AddressChecker } from '../src/mgr/address-check.js';
import { clientEndpoints, probeTarget } from '../src/node/endpoints.js';
import { createIdentity } from '../src/link/identity.js';
import { silentLogger } from '../src/log.js';

const iface = (address: string, family: 'IPv4' | 'IPv6', internal = false): NetworkInterfaceInfo =>
  ({ address, family, internal, netmask: '', mac: '', cidr: null, ...(family === 'IPv6' ? { scopeid: 0 } : {}) }) as NetworkInterfaceInfo;

const HOST = {
  lo: [iface('127.0.0.1', 'IPv4', true), iface('::1', 'IPv6', true)],
  eth0: [iface('fe80::1', 'IPv6'), iface('2001:db8::5', 'IPv6'), iface('10.1.2.3', 'IPv4')],
};
const SECRET = 'f'.repeat(8) + '0123456789abcdef0123456789abcdef0123456789abcdef0123456789';

describe('${ENV} references in settings', () => {
  it('replaces ${NAME} and ${NAME:-fallback}; $${ is a literal ${', () => {
    expect(expandEnv('${POD_IP}', { POD_IP: '10.0.0.7' })).toEqual({ value: '10.0.0.7' });
    expect(expandEnv('wss://${GW:-gw-0}.example.com/', {})).toEqual({ value: 'wss://gw-0.example.com/' });
    expect(expandEnv('wss://${GW:-gw-0}.example.com/', { GW: 'gw-3' })).toEqual({ value: 'wss://gw-3.example.com/' });
    expect(expandEnv('a$${b}', {})).toEqual({ value: 'a${b}' });
    expect(expandEnv('no refs', {})).toEqual({ value: 'no refs' });
  });

  it('an unset variable without a fallback is an error, never an empty address', () => {
    const r = expandEnv('${POD_IP}', { POD_IP: '' });
    expect(r).toEqual({ error: expect.stringContaining('${POD_IP}, which is not set') });
  });

  it('works in env, --set and typed values, and is parsed after expansion', () => {
    const r = resolveConfig({
      env: { POD_IP: '10.0.0.7', XSERVER_INNER_IP: '${POD_IP}', PORT: '7100' },
      overrides: { 'gateway.tcpPort': '${PORT}', 'gateway.publicUrl': 'wss://${HOSTNAME:-gw-1}.example.com/' },
    });
    expect(r.config.innerIp).toBe('10.0.0.7');
    expect(r.config.gateway.tcpPort).toBe(7100);
    expect(r.config.gateway.publicUrl).toBe('wss://gw-1.example.com/');
    expect(() => resolveConfig({ env: { XSERVER_INNER_IP: '${NOPE}' } })).toThrow(
      /innerIp: refers to environment variable \$\{NOPE\}.*\(from env XSERVER_INNER_IP\)/,
    );
  });
});

describe('advertised addresses', () => {
  it('one bind address is advertised as is; a wildcard advertises the first non-loopback IPv4 of the host', () => {
    expect(advertisedFor('10.9.9.9', HOST)).toEqual({ address: '10.9.9.9' });
    expect(advertisedFor('127.0.0.1', HOST)).toEqual({ address: '127.0.0.1' });
    expect(advertisedFor('0.0.0.0', HOST)).toEqual({ address: '10.1.2.3' });
    expect(advertisedFor('::', { eth0: [iface('fe80::1', 'IPv6'), iface('2001:db8::5', 'IPv6')] })).toEqual({ address: '2001:db8::5' });
    const lonely = advertisedFor('0.0.0.0', { lo: HOST.lo });
    expect(lonely.address).toBe('127.0.0.1');
    expect(lonely.warning).toContain('no non-loopback address');
  });

  it('loadConfig derives empty innerIp/outerIp from bindHost/gateway.host and says so; a set value wins', () => {
    const r = resolveConfig({ env: { XSERVER_BIND_HOST: '0.0.0.0', XSERVER_GATEWAY_HOST: '0.0.0.0', XSERVER_SECRET: SECRET }, interfaces: HOST });
    expect(r.config.innerIp).toBe('10.1.2.3');
    expect(r.config.outerIp).toBe('10.1.2.3');
    expect(r.sources.innerIp).toEqual({ kind: 'derived', from: 'bindHost' });
    const set = resolveConfig({ env: { XSERVER_BIND_HOST: '0.0.0.0', XSERVER_INNER_IP: '192.0.2.1', XSERVER_SECRET: SECRET }, interfaces: HOST });
    expect(set.config.innerIp).toBe('192.0.2.1');
    const lonely = resolveConfig({ env: { XSERVER_BIND_HOST: '0.0.0.0', XSERVER_SECRET: SECRET }, interfaces: { lo: HOST.lo } });
    expect(lonely.warnings.join('\n')).toMatch(/innerIp: bound to 0\.0\.0\.0 but the host has no non-loopback address/);
  });

  it('gateway.publicUrl must be ws(s):// and gateway.publicTcp host:port', () => {
    expect(() => resolveConfig({ env: { XSERVER_GATEWAY_PUBLIC_URL: 'http://gw/' } })).toThrow(
      /gateway.publicUrl: expected a ws:\/\/ or wss:\/\/ URL/,
    );
    expect(() => resolveConfig({ env: { XSERVER_GATEWAY_PUBLIC_TCP: 'gw-3.example.com' } })).toThrow(/gateway.publicTcp: expected host:port/);
    expect(parseHostPort('[2001:db8::5]:7100')).toEqual({ host: '2001:db8::5', port: 7100 });
    expect(parseHostPort('gw:0')).toBeUndefined();
  });
});

describe('client endpoints of a gateway', () => {
  const gw = (patch: Partial<{ publicUrl: string; publicTcp: string; clientTls: boolean }>) =>
    create(NodeInfoSchema, { id: 'g', type: 3, outerIp: '10.1.2.3', ports: [7000, 7100, 7101], ...patch });

  it('default to outerIp and the client ports; the public settings replace them', () => {
    expect(clientEndpoints(gw({}))).toEqual({ host: '10.1.2.3', tcpPort: 7100, wsUrl: 'ws://10.1.2.3:7101/', tls: false });
    expect(clientEndpoints(gw({ clientTls: true })).wsUrl).toBe('wss://10.1.2.3:7101/');
    const pub = clientEndpoints(gw({ publicUrl: 'wss://gw-3.example.com/', publicTcp: 'gw-3.example.com:443', clientTls: true }));
    expect(pub).toEqual({ host: 'gw-3.example.com', tcpPort: 443, wsUrl: 'wss://gw-3.example.com/', tls: true });
  });

  it('login probes the TCP address, else the WebSocket URL with its default port', () => {
    expect(probeTarget(clientEndpoints(gw({})))).toEqual({ host: '10.1.2.3', port: 7100 });
    const wsOnly = create(NodeInfoSchema, { id: 'g', type: 3, outerIp: '10.1.2.3', ports: [7000, 0, 7101], publicUrl: 'wss://gw-3.example.com/' });
    expect(probeTarget(clientEndpoints(wsOnly))).toEqual({ host: 'gw-3.example.com', port: 443 });
  });
});

describe('the mgr dial-back', () => {
  it('refuses a loopback address registered from another host without dialling', async () => {
    const checker = new AddressChecker({
      enabled: true,
      timeoutMs: 200,
      self: { type: 1, id: 'mgr' },
      link: {
        cluster: 'c',
        secret: SECRET,
        maxFrame: 65536,
        handshakeTimeoutMs: 200,
        heartbeatIntervalMs: 100,
        heartbeatTimeoutMs: 300,
        maxOutboundBytes: 1 << 20,
        logger: silentLogger(),
        identity: createIdentity(),
      },
    });
    const info = create(NodeInfoSchema, { id: 'n1', type: 4, innerIp: '127.0.0.1', ports: [1] });
    const r = await checker.check(info, '10.0.0.5');
    expect(r).toMatchObject({ reached: false, advertised: '127.0.0.1:1', seenFrom: '10.0.0.5' });
    expect(r.error).toContain('loopback address, and the member registered from another host');
    expect(AddressChecker.refusal(r).code).toBe('ADVERTISE_UNREACHABLE');
    expect(checker.all().map((x) => x.id)).toEqual(['n1']);
    expect(checker.known(info)).toBe(false);
  });
});
