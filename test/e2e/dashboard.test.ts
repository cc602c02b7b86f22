/**
 * The mgr dashboard in headless Chromium (playwright-core) against the demo cluster of `xserver up`
 * as real processes, both mgrs with an admin server: under client load (SDK clients sending
 * requests in a loop) the client messages/s chart's values rise above 0 and the drawn chart
 * changes; a kill -9 of a lobby shows on the timeline as left with reason "lost"; a member's page
 * shows its figures; the standby mgr's dashboard shows the active mgr's view (relayed), and its own,
 * opening with the takeover, once the active mgr is killed.
 *
 * Needs Debian's chromium at /usr/bin/chromium; skipped with a message otherwise.
 * Run: npm run build && npx vitest run test/e2e/dashboard.test.ts
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { RoleList } from '../../examples/contracts.js';
import { demoSuite, tag, type Player, type Proc } from '../helpers/demo.js';

const CHROMIUM = process.env.XSERVER_E2E_CHROMIUM ?? '/usr/bin/chromium';
const haveChromium = fs.existsSync(CHROMIUM);
if (!haveChromium) console.log(`[e2e/dashboard] skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, or set XSERVER_E2E_CHROMIUM)`);

const { newDemo } = demoSuite('e2e/dashboard');

/** Pause between two requests of one load client: steady traffic without saturating two cores. */
const LOAD_PAUSE_MS = 20;

function watch(page: Page, label: string, sink: string[]): void {
  page.on('console', (m) => sink.push(`[${label} console.${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => sink.push(`[${label} pageerror] ${e.message}`));
  page.on('requestfailed', (r) => sink.push(`[${label} requestfailed] ${r.url()} ${r.failure()?.errorText ?? ''}`));
}

/** The values a chart drew last (its canvas's data-last), null before it was drawn. */
async function chartValues(page: Page, id: string): Promise<(number | null)[] | null> {
  const raw = await page
    .locator(`#c-${id} canvas`)
    .getAttribute('data-last', { timeout: 1000 })
    .catch(() => null);
  return raw ? (JSON.parse(raw) as (number | null)[]) : null;
}

/** RoleList requests in a loop until `stop.done`; counts answers. */
async function loadLoop(p: Player, stop: { done: boolean }, count: { ok: number }): Promise<void> {
  while (!stop.done) {
    await p.ask(RoleList, undefined).then(
      () => count.ok++,
      () => {},
    );
    await new Promise((r) => setTimeout(r, LOAD_PAUSE_MS));
  }
}

describe('mgr dashboard in headless Chromium', () => {
  it.skipIf(!haveChromium)(
    'charts move under client load, a kill -9 shows as left (lost), the standby shows the active view, then its own after a takeover',
    async () => {
      const demo = newDemo({ mgrAdmin: true });
      const { chromium } = await import('playwright-core');
      const pageLog: string[] = [];
      const stop = { done: false };
      const loops: Promise<void>[] = [];
      let browser: Browser | undefined;
      try {
        const [, b] = await Promise.all([
          demo.start(),
          chromium.launch({
            executablePath: CHROMIUM,
            args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-sync'],
            timeout: 20_000,
          }),
        ]);
        browser = b;
        const isActive = (m: Proc): boolean => m.logsMatching(/^mgr is ACTIVE/).length > 0;
        const active = await demo.until('one mgr is active', () => demo.mgrs.find(isActive), 10_000);
        const standby = demo.mgrs.find((m) => m !== active)!;
        expect(active.adminPort).toBeGreaterThan(0);

        const page = await browser.newPage();
        page.setDefaultTimeout(10_000);
        watch(page, 'active', pageLog);
        await page.goto(`http://127.0.0.1:${active.adminPort}/dashboard`);
        await expect(page.title()).resolves.toBe('xserver dashboard');
        await page.locator('tr.member').first().waitFor();

        // Client load: a few SDK clients asking the lobby in a loop.
        const t = tag();
        const count = { ok: 0 };
        const players = await Promise.all([1, 2, 3].map((i) => demo.player(`load${i}-${t}`)));
        for (const p of players) loops.push(loadLoop(p, stop, count));

        // The messages/s chart's data rises above 0 (in and out), and the latency chart has values.
        await expect
          .poll(async () => (await chartValues(page, 'messages')) ?? [], { timeout: 15_000, message: 'client messages/s in and out above 0' })
          .toSatisfy((v: (number | null)[]) => (v[0] ?? 0) > 0 && (v[1] ?? 0) > 0);
        await expect
          .poll(async () => (await chartValues(page, 'latency'))?.[1] ?? null, { timeout: 10_000, message: 'a p99 latency is charted' })
          .toBeGreaterThan(0);
        await expect.poll(async () => (await chartValues(page, 'connections'))?.[0] ?? 0, { timeout: 10_000 }).toBeGreaterThanOrEqual(players.length);
        // The drawn chart changes as new samples arrive.
        const canvas = page.locator('#c-messages canvas');
        const before = await canvas.evaluate((c: HTMLCanvasElement) => c.toDataURL());
        await expect.poll(() => canvas.evaluate((c: HTMLCanvasElement) => c.toDataURL()), { timeout: 10_000 }).not.toBe(before);
        expect(count.ok).toBeGreaterThan(0);

        // kill -9 of a lobby: the timeline shows it left with reason "lost".
        const victim = demo.lobbies[1]!;
        expect(victim.id).not.toBe('');
        demo.kill9(victim);
        const lostRow = (p: Page) => p.locator(`tr.ev[data-kind="left"][data-reason="lost"][data-id="${victim.id}"]`);
        await lostRow(page).waitFor({ timeout: 15_000 });
        await expect(page.locator(`tr.member[data-id="${victim.id}"]`).count()).resolves.toBe(0);

        // A member's page: its figures and charts.
        const gw = demo.gateways[0]!;
        await page.goto(`http://127.0.0.1:${active.adminPort}/dashboard#/member/${gw.id}`);
        await expect.poll(() => page.locator('#member-info').textContent()).toContain(gw.id);
        await expect.poll(() => page.locator('#member-info').textContent()).toContain('address check');
        await expect.poll(async () => (await chartValues(page, 'messages'))?.[0] ?? 0, { timeout: 10_000 }).toBeGreaterThan(0);
        // The surviving lobby's page: the client requests it answered have a latency.
        const lobby = demo.lobbies[0]!;
        await page.goto(`http://127.0.0.1:${active.adminPort}/dashboard#/member/${lobby.id}`);
        await expect.poll(() => page.locator('#member-info').textContent()).toContain(lobby.id);
        await expect.poll(async () => (await chartValues(page, 'latency'))?.[1] ?? null, { timeout: 10_000 }).toBeGreaterThan(0);

        // The standby's dashboard shows the active mgr's view: marked relayed, same timeline.
        const spage = await browser.newPage();
        spage.setDefaultTimeout(10_000);
        watch(spage, 'standby', pageLog);
        await spage.goto(`http://127.0.0.1:${standby.adminPort}/dashboard`);
        await spage.locator('#relayed').waitFor();
        await lostRow(spage).waitFor();
        await expect.poll(() => spage.locator('#mgr').textContent()).toContain(String(active.logsMatching(/^mgr is ACTIVE/)[0]!.epoch));
        await expect.poll(async () => (await chartValues(spage, 'messages'))?.[0] ?? 0, { timeout: 10_000 }).toBeGreaterThan(0);

        // kill -9 of the active mgr: the standby takes over, and its dashboard is its own (no longer
        // relayed), its timeline opening with the takeover.
        await page.close(); // it polls the mgr about to die: its failed requests would be expected ones
        demo.kill9(active);
        await spage.locator('tr.ev[data-kind="takeover"]').waitFor({ timeout: 20_000 });
        await expect.poll(() => spage.locator('#relayed').count()).toBe(0);
        await expect.poll(() => spage.locator('tr.member').count(), { timeout: 15_000 }).toBeGreaterThanOrEqual(5);

        expect(
          pageLog.filter((l) => /pageerror|requestfailed|console\.error/.test(l)),
          'no page errors, failed requests or console errors',
        ).toEqual([]);
      } catch (e) {
        if (pageLog.length) console.error(`[e2e/dashboard] page output:\n${pageLog.join('\n')}`);
        throw e;
      } finally {
        stop.done = true;
        await Promise.all(loops);
        await browser?.close().catch(() => {});
      }
    },
    90_000,
  );
});
