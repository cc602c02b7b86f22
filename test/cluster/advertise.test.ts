/**
 * Addresses that check themselves (real processes): on REGISTER the mgr dials the member's
 * advertised intranet address back, and only the member itself (its identity key) counts as
 * reached. A member advertising an address others cannot dial is refused with
 * ADVERTISE_UNREACHABLE, says so at error level, is never listed, and `xserver doctor` names it.
 *
 * 127.0.0.0/8 all reaches this host, so "another host's view" is made with two loopback
 * addresses: a node that binds 127.0.0.1 but advertises 127.0.0.2 cannot be reached there.
 */
import { describe, expect, it } from 'vitest';
import { FAST, clusterSuite, freePort, type ProbeProc } from '../helpers/cluster.js';

const { newCluster } = clusterSuite();

const ERROR_LEVEL = 50;

describe('advertised addresses are dialled back by the mgr', () => {
  it('a node advertising an address it does not listen on is refused loudly, never listed, and doctor names it', async () => {
    const c = newCluster({ env: FAST });
    const mgr = await c.startMgr();
    await c.mgrActive(mgr);
    const good = await c.startProbe();
    await c.allListed([good]);

    const bad = await c.startProbe({ env: { XSERVER_INNER_IP: '127.0.0.2' } });
    const refusal = await c.waitFor(
      'the misconfigured node logs the refusal at error level',
      () => bad.logs.find((l) => l.code === 'ADVERTISE_UNREACHABLE' && l.level === ERROR_LEVEL),
      10_000,
    );
    expect(String(refusal.msg)).toContain(`advertised 127.0.0.2:${bad.port} is not reachable from the mgr`);
    expect(String(refusal.msg)).toContain('set innerIp');

    const status = await c.status();
    expect(status.members.map((m) => m.id)).toEqual([good.id]);
    expect((await good.view()).ids).not.toContain(bad.id);

    const doctor = await c.cli(['doctor']);
    expect(doctor.code).toBe(1);
    expect(doctor.stdout).toContain('refused registrations (ADVERTISE_UNREACHABLE)');
    expect(doctor.stdout).toMatch(new RegExp(`${bad.id}\\s+advertised 127\\.0\\.0\\.2:${bad.port}, registered from 127\\.0\\.0\\.1`));
    // The healthy member: where it binds, what it advertises, and that the mgr reached it there.
    const row = doctor.stdout.split('\n').find((l) => l.includes(good.id.slice(0, 8)) && l.includes('intranet'));
    expect(row).toMatch(
      new RegExp(`intranet\\s+127\\.0\\.0\\.1:${good.port}\\s+127\\.0\\.0\\.1:${good.port}\\s+yes \\(\\d+ ms\\)\\s+127\\.0\\.0\\.1`),
    );

    const json = JSON.parse((await c.cli(['doctor', '--json'])).stdout) as { checks: { id: string; reached: boolean; error: string }[] };
    expect(json.checks.find((x) => x.id === good.id)).toMatchObject({ reached: true });
    expect(json.checks.find((x) => x.id === bad.id)).toMatchObject({ reached: false });
  }, 60_000);

  it('reaching some process at the advertised address is not enough: it must be the member itself', async () => {
    const c = newCluster({ env: FAST });
    const mgr = await c.startMgr();
    await c.mgrActive(mgr);
    // `holder` listens on 127.0.0.3:P; `impostor` listens on 127.0.0.1:P but advertises 127.0.0.3,
    // so the mgr's dial-back lands on `holder`.
    const port = await freePort();
    const holder = await c.startProbe({ env: { XSERVER_BIND_HOST: '127.0.0.3', XSERVER_NODE_PORT: String(port) } });
    const impostor: ProbeProc = await c.startProbe({ env: { XSERVER_INNER_IP: '127.0.0.3', XSERVER_NODE_PORT: String(port) } });
    await c.allListed([holder]);
    const refusal = await c.waitFor(
      'the node whose address leads to another process is refused',
      () => impostor.logs.find((l) => l.code === 'ADVERTISE_UNREACHABLE'),
      10_000,
    );
    expect(String(refusal.msg)).toContain(`127.0.0.3:${port}`);
    expect(String(refusal.msg)).toContain(`this is type 6 id ${holder.id}, not type 6 id ${impostor.id}`);
    expect((await c.status()).members.map((m) => m.id)).toEqual([holder.id]);
  }, 60_000);
});
