/**
 * End-to-end in a browser: the chat page (examples/chat, built into dist/examples/web/ and
 * served by the login service with autoRegister; it talks to the lobby through the contracts of
 * examples/contracts.ts) in headless Chromium via playwright-core, against the demo cluster of
 * `xserver up` as real processes. Two pages log in with two accounts, create roles, and chat:
 * world chat from A appears in B, a private message from B appears in A; a second login of A's
 * account kicks page A back to the login form, from which it logs in again.
 *
 * Needs Debian's chromium at /usr/bin/chromium (CI installs it); skipped with a message otherwise.
 * Run: npm run build && npx vitest run test/e2e/browser.test.ts
 */
import { describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { haveChromium, launchChromium, pageProblems, sayIfNoChromium, watchPage as watch } from '../helpers/chromium.js';
import { demoSuite, tag } from '../helpers/demo.js';

sayIfNoChromium('e2e/browser');

const { newDemo } = demoSuite('e2e/browser');

/** Logs in through the form and creates (and enters with) a role; returns once in game. */
async function joinAs(page: Page, account: string, role: string): Promise<void> {
  await page.locator('#account').fill(account);
  await page.locator('#password').fill(`pw-${account}`);
  await page.locator('#login-btn').click();
  await page.locator('#role-view').waitFor({ state: 'visible', timeout: 10_000 });
  await expect.poll(() => page.locator('#status').textContent()).toMatch(new RegExp(`^connected as ${account} via gateway `));
  await page.locator('#role-name').fill(role);
  await page.locator('#create-btn').click();
  await page.locator('#game-view').waitFor({ state: 'visible', timeout: 10_000 });
  await page.locator('#log div.system', { hasText: `you are ${role}` }).waitFor({ timeout: 5000 });
}

describe('chat page in headless Chromium', () => {
  it.skipIf(!haveChromium)(
    'two pages: world chat from A shows in B, a private message from B shows in A',
    async () => {
      const demo = newDemo();
      const pageLog: string[] = [];
      let browser: Browser | undefined;
      try {
        const [, b] = await Promise.all([demo.start(), launchChromium()]);
        browser = b;
        // Two independent browser contexts: two players, no shared storage.
        const [pageA, pageB] = await Promise.all([browser.newContext().then((c) => c.newPage()), browser.newContext().then((c) => c.newPage())]);
        pageA.setDefaultTimeout(10_000);
        pageB.setDefaultTimeout(10_000);
        watch(pageA, 'A', pageLog);
        watch(pageB, 'B', pageLog);
        await Promise.all([pageA.goto(`${demo.loginUrl}/`), pageB.goto(`${demo.loginUrl}/`)]);
        await expect(pageA.title()).resolves.toBe('xserver chat demo');

        const t = tag();
        const [accA, accB, roleA, roleB] = [`alice-${t}`, `bob-${t}`, `Alice_${t}`, `Bob_${t}`];
        await joinAs(pageA, accA, roleA);
        await joinAs(pageB, accB, roleB);

        // World chat from A appears in B (and in A).
        const hello = `hello world ${t}`;
        await pageA.locator('#world-text').fill(hello);
        await pageA.locator('#world-btn').click();
        const worldLine = `[world] ${roleA}: ${hello}`;
        await pageB.locator('#log div.world', { hasText: worldLine }).waitFor();
        await pageA.locator('#log div.world', { hasText: worldLine }).waitFor();
        await expect(pageA.locator('#world-text').inputValue()).resolves.toBe('');

        // A private message from B appears in A, and B sees it delivered.
        const secret = `psst ${t}`;
        await pageB.locator('#private-to').fill(roleA);
        await pageB.locator('#private-text').fill(secret);
        await pageB.locator('#private-btn').click();
        await pageA.locator('#log div.private', { hasText: `[from ${roleB}] ${secret}` }).waitFor();
        await pageB.locator('#log div.private', { hasText: `[to ${roleA}] ${secret}` }).waitFor();
        // Only A got it, and nobody saw an error.
        await expect(pageB.locator('#log div.private', { hasText: `[from ${roleB}]` }).count()).resolves.toBe(0);
        await expect(pageA.locator('#log div.error').count()).resolves.toBe(0);
        await expect(pageB.locator('#log div.error').count()).resolves.toBe(0);

        // A whisper to a role nobody has is reported on the page.
        await pageB.locator('#private-to').fill(`nobody_${t}`);
        await pageB.locator('#private-text').fill('anyone?');
        await pageB.locator('#private-btn').click();
        await pageB.locator('#log div.error', { hasText: 'not delivered' }).waitFor();

        // A second login of A's account (a game client elsewhere) kicks page A: the page says so and
        // offers the login form again; logging in from it takes the account back, in game at once.
        const intruder = await demo.player(accA);
        await pageA.locator('#login-view').waitFor({ state: 'visible' });
        await expect.poll(() => pageA.locator('#status').textContent()).toMatch(/^kicked \(KICKED\)/);
        await expect(pageA.locator('#game-view').isHidden()).resolves.toBe(true);
        await pageA.locator('#login-btn').click(); // the form still holds the account and password
        await pageA.locator('#game-view').waitFor({ state: 'visible' });
        await expect.poll(() => pageA.locator('#log div.system', { hasText: `you are ${roleA}` }).count()).toBe(2);
        await demo.until('the game client is kicked in turn', () => intruder.event('kicked'), 5000);
        const again = `back again ${t}`;
        await pageA.locator('#world-text').fill(again);
        await pageA.locator('#world-btn').click();
        await pageB.locator('#log div.world', { hasText: `[world] ${roleA}: ${again}` }).waitFor();

        expect(pageProblems(pageLog), 'no page errors, failed requests or console errors').toEqual([]);
      } catch (e) {
        if (pageLog.length) console.error(`[e2e/browser] page output:\n${pageLog.join('\n')}`);
        throw e;
      } finally {
        await browser?.close().catch(() => {}); // the test's own outcome is already decided
      }
    },
    60_000,
  );
});
