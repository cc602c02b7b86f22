/**
 * Headless Chromium for the browser tests, through playwright-core (no browser download): Debian's
 * chromium at /usr/bin/chromium, or XSERVER_E2E_CHROMIUM. A test file skips itself when there is
 * none (`it.skipIf(!haveChromium)`), after saying so once.
 */
import fs from 'node:fs';
import type { Browser, Page } from 'playwright-core';

export const CHROMIUM = process.env.XSERVER_E2E_CHROMIUM ?? '/usr/bin/chromium';
export const haveChromium = fs.existsSync(CHROMIUM);

/** Prints why the file's browser tests are skipped, when they are. */
export function sayIfNoChromium(label: string): void {
  if (!haveChromium) console.log(`[${label}] skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, or set XSERVER_E2E_CHROMIUM)`);
}

/** Headless, no sandbox (root in CI), nothing in the background that talks to the network. */
export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 20_000,
  });
}

/** What a page printed to its console, and its uncaught errors and failed requests: shown when a test fails. */
export function watchPage(page: Page, label: string, sink: string[]): void {
  page.on('console', (m) => sink.push(`[${label} console.${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => sink.push(`[${label} pageerror] ${e.message}`));
  page.on('requestfailed', (r) => sink.push(`[${label} requestfailed] ${r.url()} ${r.failure()?.errorText ?? ''}`));
}

/** The lines of `sink` that are page errors, failed requests or console errors (a passing page has none). */
export function pageProblems(sink: string[]): string[] {
  return sink.filter((l) => /pageerror|requestfailed|console\.error/.test(l));
}
