/**
 * End-to-end: the demo cluster of `xserver up` as real processes (mgr ×2, login, gateway ×2,
 * lobby ×2, match) on Redis, driven by game clients built on the SDK (dist/client).
 *
 * What a player sees — chat across gateways and lobbies, world chat, matchmaking — and what the
 * cluster promises around failures: a disconnect is reported to the services only after the
 * reconnect grace, a resume within it loses nothing, a second login kicks the first and keeps the
 * service state, a dead lobby is replaced under a connected client, and a dead gateway's clients
 * log in again elsewhere while the services lose only the ones that did not come back.
 *
 * Run: npm run build && npx vitest run test/e2e/demo.test.ts
 */
import { describe, expect, it } from 'vitest';
import { GRACE_MS, demoSuite, tag, wall, type Demo, type Player } from '../helpers/demo.js';
import { FindMatch, MatchFound, PrivateMessage, RoleList, WorldMessage } from '../../examples/contracts.js';
import type { XClientOptions } from '../../dist/client/index.js';

const { newDemo } = demoSuite('e2e/demo');

/**
 * Logs in new accounts one by one (each enters the game with a role) until `enough(byGateway)`
 * holds. Login balances on the gateways' connection counts and the lobbies' online counts, so a
 * few accounts spread over both.
 */
async function spread(demo: Demo, prefix: string, enough: (players: Player[]) => boolean, opts: XClientOptions = {}, max = 12): Promise<Player[]> {
  const players: Player[] = [];
  for (let i = 0; i < max && !enough(players); i++) {
    const p = await demo.player(`${prefix}${i}-${tag()}`, opts);
    await p.enter(`${prefix}${i}_${tag()}`);
    players.push(p);
  }
  if (!enough(players)) {
    throw new Error(
      `${max} logins did not spread as needed: ${players.map((p) => `${p.account}@gw ${p.gatewayId.slice(0, 8)}/lobby ${p.lobbyId.slice(0, 8)}`).join(', ')}`,
    );
  }
  return players;
}

const distinct = <T>(xs: T[]): number => new Set(xs).size;

describe('demo cluster, end to end (real processes)', () => {
  it('chats privately across gateways and lobbies, world chat reaches everyone, two players are matched', async () => {
    const demo = newDemo();
    await demo.start();

    // Two players on different gateways and, with the lobbies balanced by online count, different lobbies.
    const players = await spread(demo, 'p', (ps) => ps.some((x) => ps.some((y) => x.gatewayId !== y.gatewayId && x.lobbyId !== y.lobbyId)));
    const a = players[0]!;
    const b = players.find((y) => y.gatewayId !== a.gatewayId && y.lobbyId !== a.lobbyId)!;
    expect(a.gatewayId).not.toBe(b.gatewayId);
    expect(a.lobbyId).not.toBe(b.lobbyId);
    expect(new Set(demo.gateways.map((g) => g.id))).toEqual(new Set(players.map((p) => p.gatewayId)));

    // Private chat both ways, by role name.
    expect(await a.whisper(b.role, 'hello from a')).toEqual({ delivered: true });
    const atB = await b.waitMessage(PrivateMessage, (m) => m.text === 'hello from a', 'a private message from a');
    expect(atB.body).toEqual({ from: a.role, text: 'hello from a' });
    expect(await b.whisper(a.role, 'hello from b')).toEqual({ delivered: true });
    const atA = await a.waitMessage(PrivateMessage, (m) => m.text === 'hello from b', 'a private message from b');
    expect(atA.body).toEqual({ from: b.role, text: 'hello from b' });
    // Nobody else got them.
    for (const p of players) {
      if (p !== b) expect(p.received(PrivateMessage, (m) => m.text === 'hello from a')).toBeUndefined();
      if (p !== a) expect(p.received(PrivateMessage, (m) => m.text === 'hello from b')).toBeUndefined();
    }
    // A whisper to nobody is refused, not lost silently.
    await expect(a.whisper('nobody_here', 'x')).rejects.toMatchObject({ code: 'NO_TARGET' });

    // World chat from each side reaches every connected client, exactly once.
    const text = `world ${tag()}`;
    b.worldChat(text);
    for (const p of players) await p.waitMessage(WorldMessage, (m) => m.text === text, `world chat "${text}"`);
    for (const p of players) {
      const got = p.inbox.filter((m) => m.body.text === text);
      expect(got, `${p.account} gets the world message once`).toHaveLength(1);
      expect(got[0]!.body.from).toBe(b.role);
    }

    // Match round trip: client -> lobby -> match -> (by id) each player's lobby -> client.
    expect(await a.ask(FindMatch, undefined)).toEqual({ queued: true });
    expect(await b.ask(FindMatch, undefined)).toEqual({ queued: true });
    const ma = await a.waitMessage(MatchFound, () => true, 'MATCH_FOUND');
    const mb = await b.waitMessage(MatchFound, () => true, 'MATCH_FOUND');
    expect(ma.body.matchId).toBe(mb.body.matchId);
    expect([...ma.body.players].sort()).toEqual([a.role, b.role].sort());
    expect(mb.body.players).toEqual(ma.body.players);
    // Matchmaking needs a role in game.
    const idle = await demo.player(`idle-${tag()}`);
    await expect(idle.ask(FindMatch, undefined)).rejects.toMatchObject({ code: 'BAD_REQUEST' });

    for (const p of players)
      expect(
        p.events.filter((e) => e.ev !== 'connected'),
        `${p.account} stays connected`,
      ).toEqual([]);
  });

  it('reports a disconnect only after the grace; a resume within it loses nothing; a second login kicks the first and keeps the lobby state', async () => {
    // Gateways at debug level: they log "client disconnected; waiting for a reconnect".
    const demo = newDemo({ logLevels: { gateway: 'debug' } });
    await demo.start();
    const awaySeen = (account: string) =>
      demo.until(
        `a gateway sees ${account} disconnect`,
        () => demo.gateways.some((g) => g.logs.some((l) => l.account === account && /client disconnected/.test(l.msg))),
        3000,
      );

    const talker = await demo.player(`talker-${tag()}`);
    await talker.enter(`talker_${tag()}`);
    // Reconnects after 0.5-0.7 s (delay 600 ms ± 20 %): well inside the 1.5 s grace, and late
    // enough that the messages below are sent while it is away.
    const stay = await demo.player(`stay-${tag()}`, { reconnectDelayMs: 600, maxReconnectDelayMs: 600 });
    await stay.enter(`stay_${tag()}`);
    const kick = await demo.player(`kick-${tag()}`);
    await kick.enter(`kick_${tag()}`);
    const gone = await demo.player(`gone-${tag()}`);
    await gone.enter(`gone_${tag()}`);

    // --- resume within the grace: SDK auto-resume after the socket is destroyed
    const tDrop = wall();
    stay.dropConnection();
    await awaySeen(stay.account);
    expect(stay.client.connected).toBe(false);
    const whileAway = `while away ${tag()}`;
    talker.worldChat(whileAway);
    expect(await talker.whisper(stay.role, `psst ${whileAway}`)).toEqual({ delivered: true });
    const tAcked = wall();
    await demo.until(`${stay.account} resumes`, () => stay.event('reconnected'), 5000);
    expect(stay.event('reconnected')!.detail).toBe('resumed=true');
    expect(stay.event('reconnected')!.t).toBeGreaterThan(tAcked); // the messages were sent while it was away
    await stay.waitMessage(WorldMessage, (m) => m.text === whileAway, 'the world message sent while away');
    await stay.waitMessage(PrivateMessage, (m) => m.text === `psst ${whileAway}`, 'the whisper sent while away');
    // The session is the same one: the lobby still has the role in game.
    const afterResume = `after resume ${tag()}`;
    stay.worldChat(afterResume);
    const echoed = await talker.waitMessage(WorldMessage, (m) => m.text === afterResume, 'world chat of the resumed client');
    expect(echoed.body.from).toBe(stay.role);

    // --- a second login of the same account kicks the first; the lobby keeps the role in game
    const tKick = wall();
    const kick2 = await demo.player(kick.account);
    await demo.until(`the first ${kick.account} session is kicked`, () => kick.event('kicked'), 5000);
    expect(kick.event('kicked')!.detail).toMatch(/^KICKED /);
    expect(kick.client.state).toBe('closed');
    expect(kick2.lobbyId).toBe(kick.lobbyId); // sticky allocation
    expect(kick2.gatewayId).toBe(kick.gatewayId);
    const noReenter = `no re-enter ${tag()}`;
    kick2.worldChat(noReenter); // no ENTER_GAME on the new connection
    const fromKick2 = await talker.waitMessage(WorldMessage, (m) => m.text === noReenter, 'world chat of the new session');
    expect(fromKick2.body.from).toBe(kick.role);
    await kick2.waitMessage(WorldMessage, (m) => m.text === noReenter, 'its own world chat');
    expect(kick.received(WorldMessage, (m) => m.text === noReenter)).toBeUndefined();

    // --- a client that goes away for good: lost only after the grace
    const tClose = wall();
    await gone.client.close();
    const lost = await demo.until(`the lobby reports ${gone.account} lost`, () => demo.lostOf(gone.account)[0], GRACE_MS + 5000);
    const after = lost.time - tClose;
    console.log(`[e2e] account lost reported ${after} ms after the client closed (grace ${GRACE_MS} ms)`);
    expect(after).toBeGreaterThanOrEqual(GRACE_MS);
    expect(after).toBeLessThan(GRACE_MS + 3000);
    expect(lost.lobby.id).toBe(gone.lobbyId); // reported by the lobby that held it

    // Negative checks: the grace of every earlier disconnect is over (the gone client closed
    // last, on its own timer) plus a margin; nothing else was reported lost.
    await demo.until('the grace of every disconnect is over', () => wall() > Math.max(tDrop, tKick) + GRACE_MS + 500, GRACE_MS + 1000, 20);
    expect(demo.lost().map((e) => e.account)).toEqual([gone.account]);
    expect(stay.client.connected).toBe(true);
    expect(kick2.client.connected).toBe(true);
    expect(talker.events.filter((e) => e.ev !== 'connected')).toEqual([]);
  });

  it('a killed lobby is replaced under a connected client: its next lobby request is answered by the other lobby', async () => {
    const demo = newDemo({ logLevels: { match: 'debug' } }); // the match logs "player queued"
    await demo.start();
    const x = await demo.player(`x-${tag()}`);
    await x.enter(`x_${tag()}`);
    const watcher = await demo.player(`w-${tag()}`);
    await watcher.enter(`w_${tag()}`);
    const dead = demo.byId(x.lobbyId); // the lobby process holding x (status pid -> node id)
    const other = demo.lobbies.find((l) => l !== dead)!;
    expect(dead.label).toMatch(/^lobby/);
    // x waits for a match, queued by the lobby about to die.
    expect(await x.ask(FindMatch, undefined)).toEqual({ queued: true });
    await demo.until('the match queues x', () => demo.match.logs.find((l) => l.msg === 'player queued' && l.account === x.account), 3000);

    demo.kill9(dead);
    // Right away, before the cluster has noticed: the request is either re-routed to the other lobby
    // or fails fast with NO_TARGET (if the dead lobby had already taken it) — never a silent timeout.
    const t0 = Date.now();
    try {
      await x.ask(RoleList, undefined, 5000);
    } catch (e) {
      expect((e as { code?: string }).code).toBe('NO_TARGET');
    }
    expect(Date.now() - t0).toBeLessThan(4000);

    // The next request goes to the other lobby; the client stays connected throughout.
    const roles = await x.ask(RoleList, undefined, 5000);
    expect(roles.roles.map((r) => r.name)).toEqual([x.role]);
    const moved = await demo.until(
      'a gateway logs the reallocation',
      () => demo.gateways.flatMap((g) => g.logs).find((l) => l.msg === 'account reallocated' && l.account === x.account),
      3000,
    );
    expect(moved.from).toBe(dead.id);
    expect(moved.to).toBe(other.id);
    // The role stays in game (the lobbies keep it in the store): chat works without ENTER_GAME.
    const text = `after failover ${tag()}`;
    x.worldChat(text);
    const seen = await watcher.waitMessage(WorldMessage, (m) => m.text === text, 'world chat after the lobby failover');
    expect(seen.body.from).toBe(x.role);
    // The match found for x after its lobby died still reaches it (through a live lobby).
    expect(await watcher.ask(FindMatch, undefined)).toEqual({ queued: true });
    const found = await x.waitMessage(MatchFound, () => true, 'MATCH_FOUND after the lobby failover');
    expect(found.body.players).toContain(x.role);
    expect(x.client.connected).toBe(true);
    expect(
      x.events.filter((e) => e.ev !== 'connected'),
      'no disconnect, no reconnect',
    ).toEqual([]);
  });

  it('a killed gateway: its clients log in again on the other one; lobbies lose only the accounts that did not come back', async () => {
    const demo = newDemo();
    await demo.start();
    // At least 3 clients on one gateway (and some on the other). Clients give up quickly on the dead gateway.
    const players = await spread(
      demo,
      'g',
      (ps) => demo.gateways.some((g) => ps.filter((p) => p.gatewayId === g.id).length >= 3) && distinct(ps.map((p) => p.gatewayId)) === 2,
      { maxReconnectAttempts: 1, reconnectDelayMs: 100 },
    );
    const victim = demo.gateways.find((g) => players.filter((p) => p.gatewayId === g.id).length >= 3)!;
    const survivor = demo.gateways.find((g) => g !== victim)!;
    const onVictim = players.filter((p) => p.gatewayId === victim.id);
    const onSurvivor = players.filter((p) => p.gatewayId === survivor.id);
    const returners = onVictim.slice(0, 2);
    const leavers = onVictim.slice(2);

    const tKill = demo.kill9(victim);
    // Every client of the dead gateway sees the connection drop and, after its reconnect
    // attempts fail, the end of the session.
    await demo.until("the dead gateway's clients are disconnected", () => onVictim.every((p) => p.event('disconnected')), 10_000);
    // Two come back: log in again (retrying while the login still offers the dead gateway).
    const back = await Promise.all(
      returners.map((p) =>
        demo.untilAsync(
          `${p.account} logs in again`,
          async () => {
            try {
              return await demo.player(p.account);
            } catch {
              return undefined;
            }
          },
          5000,
          20,
        ),
      ),
    );
    const tBack = wall();
    console.log(`[e2e] returners were back ${tBack - tKill} ms after the gateway was killed (grace ${GRACE_MS} ms)`);
    for (const [i, p] of back.entries()) {
      expect(p.gatewayId).toBe(survivor.id);
      expect(p.lobbyId).toBe(returners[i]!.lobbyId); // same lobby, which kept the account
    }
    // The lobby kept their state: chat without ENTER_GAME.
    for (const [i, p] of back.entries()) {
      const text = `back ${i} ${tag()}`;
      p.worldChat(text);
      const m = await onSurvivor[0]!.waitMessage(WorldMessage, (b) => b.text === text, `world chat of returner ${i}`);
      expect(m.body.from).toBe(returners[i]!.role);
    }

    // The ones that did not come back are lost, after the grace, each by its own lobby.
    for (const p of leavers) {
      const e = await demo.until(`${p.account} reported lost`, () => demo.lostOf(p.account)[0], GRACE_MS + 5000);
      expect(e.time - tKill).toBeGreaterThanOrEqual(GRACE_MS);
      expect(e.lobby.id).toBe(p.lobbyId);
    }
    // Margin after the grace, then: nobody else is lost.
    await demo.until('the grace after the gateway death is over', () => wall() > tKill + GRACE_MS + 700, GRACE_MS + 2000, 20);
    expect(
      demo
        .lost()
        .map((e) => e.account)
        .sort(),
    ).toEqual(leavers.map((p) => p.account).sort());
    for (const p of [...onSurvivor, ...back]) expect(p.client.connected, `${p.account} connected`).toBe(true);
    for (const p of onSurvivor)
      expect(
        p.events.filter((e) => e.ev !== 'connected'),
        `${p.account} undisturbed`,
      ).toEqual([]);
  });
});
