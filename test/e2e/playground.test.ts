/**
 * End-to-end in a browser: the playground page (served by login with login.playground) in
 * headless Chromium via playwright-core, against a development cluster in this process
 * (startDevCluster, memory store) with a service that declares a request/response contract and a
 * push. The page logs in, picks the command, edits its JSON, sends it and shows the reply; a push
 * from the service shows up live; bad JSON and an error reply are reported on the page.
 *
 * The cluster runs from dist/ (login serves the SDK from dist/client/): `npm run build` first.
 * Needs Debian's chromium at /usr/bin/chromium (CI installs it); skipped with a message otherwise.
 * Run: npm run build && npx vitest run test/e2e/playground.test.ts
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { XError } from '../../dist/errors.js';
import { startDevCluster, type DevCluster } from '../../dist/dev.js';
import { defineService } from '../../dist/service.js';
import { command, jsonCodec } from '../../dist/client/index.js';
import { haveChromium, launchChromium, pageProblems, sayIfNoChromium, watchPage } from '../helpers/chromium.js';
import { tag } from '../helpers/demo.js';

sayIfNoChromium('e2e/playground');
const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/login/login.js');

const T = 9;
/** Request/response: the text back, with the caller's account. */
const Echo = command({
  type: T,
  cmd: 1,
  name: 'pg.echo',
  request: jsonCodec<{ text: string }>('echo@1'),
  response: jsonCodec<{ text: string; account: string }>('echoed@1'),
  example: { text: 'hello' },
});
/** A push to clients; sent by a client (one-way), it comes back to the sender as a push. */
const News = command({ type: T, cmd: 2, name: 'pg.news', request: jsonCodec<{ headline: string }>() });

const service = defineService({
  type: T,
  name: 'pg',
  contracts: [Echo, News],
  start(node) {
    node.handleClient(Echo, (req, ctx) => {
      if (!req.text) throw new XError('BAD_REQUEST', 'text must not be empty');
      return { text: req.text, account: ctx.account };
    });
    node.handleClient(News, (msg, ctx) => void node.sendToClient(ctx.account, News, { headline: `back: ${msg.headline}` }));
  },
});

describe('playground page in headless Chromium', () => {
  it.skipIf(!haveChromium)(
    'log in, pick the command, edit the JSON, send: the reply shows; a push shows live; bad JSON is an error, not a crash',
    async () => {
      if (!fs.existsSync(DIST)) throw new Error('dist/ is not built: run `npm run build` first');
      const pageLog: string[] = [];
      let browser: Browser | undefined;
      let dev: DevCluster | undefined;
      try {
        // Each assigned as it comes, so the finally block stops whichever started when the other failed.
        await Promise.all([
          startDevCluster({ services: [service], configure: (c) => (c.login.port = 0) }).then((d) => (dev = d)),
          launchChromium().then((b) => (browser = b)),
        ]);
        if (!dev || !browser) throw new Error('unreachable: both started');
        const page = await browser.newPage();
        page.setDefaultTimeout(10_000);
        watchPage(page, 'playground', pageLog);
        await page.goto(dev.playgroundUrl!);
        await expect(page.title()).resolves.toBe('xserver playground');

        // The list holds the service's contracts; the request one starts with its example.
        const cmdOf = (c: { type: number; cmd: number }): string => String(c.type * dev!.config.gateway.cmdOffset + c.cmd);
        await page.locator(`#command option[value="${cmdOf(Echo)}"]`).waitFor({ state: 'attached' });
        await expect(page.locator('#command option').allTextContents()).resolves.toEqual(['pg.echo — request', 'pg.news — one-way']);
        await expect(page.locator('#services').textContent()).resolves.toBe('services: pg (type 9, 1 node, 2 contracts)');
        await page.locator('#command').selectOption(cmdOf(Echo));
        await expect(page.locator('#body').inputValue()).resolves.toBe(JSON.stringify({ text: 'hello' }, null, 2));
        await expect(page.locator('#send-btn').textContent()).resolves.toBe('Send request');

        // Log in as any account (auto-registered).
        const account = `pg-${tag()}`;
        await page.locator('#account').fill(account);
        await page.locator('#password').fill('any password');
        await page.locator('#login-btn').click();
        await expect.poll(() => page.locator('#status').textContent()).toMatch(new RegExp(`^connected as ${account} via gateway `));

        // Edit the JSON, send: the reply appears.
        await page.locator('#body').fill('{"text": "from the playground"}');
        await page.locator('#send-btn').click();
        await page.locator('#log div.reply', { hasText: `pg.echo` }).waitFor();
        await expect(page.locator('#log div.reply').textContent()).resolves.toContain(JSON.stringify({ text: 'from the playground', account }));

        // A push from the service shows up live, decoded by its contract.
        await expect.poll(() => dev!.nodes[0]!.sendToClient(account, News, { headline: 'pushed by the service' })).toBe(true);
        await page.locator('#log div.push', { hasText: `push pg.news: ${JSON.stringify({ headline: 'pushed by the service' })}` }).waitFor();

        // Bad JSON: an error line, nothing sent, the page keeps working.
        const sentBefore = await page.locator('#log div.sent').count();
        await page.locator('#body').fill('{"text": ');
        await page.locator('#send-btn').click();
        await page.locator('#log div.error', { hasText: 'the request is not valid JSON' }).waitFor();
        await expect(page.locator('#log div.sent').count()).resolves.toBe(sentBefore);

        // An error reply is shown with its code.
        await page.locator('#body').fill('{"text": ""}');
        await page.locator('#send-btn').click();
        await page.locator('#log div.error', { hasText: 'BAD_REQUEST: text must not be empty' }).waitFor();

        // One-way: the push contract sent by the page comes back as a push.
        await page.locator('#command').selectOption(cmdOf(News));
        await expect(page.locator('#send-btn').textContent()).resolves.toBe('Send one-way');
        await page.locator('#body').fill('{"headline": "from the page"}');
        await page.locator('#send-btn').click();
        await page.locator('#log div.push', { hasText: `push pg.news: ${JSON.stringify({ headline: 'back: from the page' })}` }).waitFor();

        expect(pageProblems(pageLog), 'no page errors, failed requests or console errors').toEqual([]);
      } catch (e) {
        if (pageLog.length) console.error(`[e2e/playground] page output:\n${pageLog.join('\n')}`);
        throw e;
      } finally {
        await browser?.close().catch(() => {}); // the test's own outcome is already decided
        await dev?.stop();
      }
    },
    60_000,
  );
});
