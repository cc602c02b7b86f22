/**
 * The examples as `npm run build` leaves them (scripts/build-examples.js): every module
 * `xserver up` runs (clusterPlan()) is there and exports a service; the chat page's directory
 * (login.staticDir) holds what its index.html loads and none of the services' code; the page and
 * the lobby were built from the same contracts (the gateway would refuse the page otherwise).
 *
 * Needs `npm run build` first (like every test that runs dist/).
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { clusterPlan } from '../src/cli/up.js';
import { contractHash, type Command } from '../src/protocol/contract.js';
import type { ServiceDefinition } from '../src/service.js';

const plan = clusterPlan();
const staticDir = String(plan.find((p) => p.role === 'login')?.set?.['login.staticDir'] ?? '');

/** Every file under `dir`, relative, with / separators. */
function filesUnder(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }) as string[])
    .filter((f) => fs.statSync(path.join(dir, f)).isFile())
    .map((f) => f.split(path.sep).join('/'));
}

describe('the built examples', () => {
  it('every service module of clusterPlan() exists and default-exports a service definition', async () => {
    const entries = [...new Set(plan.flatMap((p) => (p.entry ? [p.entry] : [])))];
    expect(entries.map((e) => path.basename(path.dirname(e))).sort()).toEqual(['lobby', 'match']);
    for (const entry of entries) {
      expect(fs.existsSync(entry), `${entry} (npm run build)`).toBe(true);
      const def = ((await import(pathToFileURL(entry).href)) as { default: ServiceDefinition }).default;
      expect(typeof def.start, `${entry}: start()`).toBe('function');
      expect(['lobby', 'match']).toContain(def.type);
    }
  });

  it('the chat page directory holds index.html and the modules it loads, and no service code', () => {
    expect(staticDir).not.toBe('');
    const html = fs.readFileSync(path.join(staticDir, 'index.html'), 'utf8');
    const script = /<script type="module" src="\.\/([^"]+)"/.exec(html)?.[1];
    expect(script).toBe('chat/app.js');
    const importMap = JSON.parse(/<script type="importmap">([\s\S]*?)<\/script>/.exec(html)?.[1] ?? '{}') as { imports?: Record<string, string> };
    // The login service serves the SDK at /sdk/ (dist/client/index.js).
    expect(importMap.imports).toEqual({ 'xserver/client': '/sdk/index.js' });
    const app = fs.readFileSync(path.join(staticDir, script!), 'utf8');
    const imports = [...app.matchAll(/^import .* from '([^']+)';$/gm)].map((m) => m[1]!);
    expect(imports.sort()).toEqual(['../contracts.js', 'xserver/client']);
    const js = filesUnder(staticDir).filter((f) => f.endsWith('.js'));
    expect(js.sort()).toEqual(['chat/app.js', 'contracts.js']);
  });

  it("the page's contracts and the lobby's hash alike", async () => {
    type Contracts = { lobbyContracts: Command<unknown, unknown>[]; LOBBY: number };
    const page = (await import(pathToFileURL(path.join(staticDir, 'contracts.js')).href)) as Contracts;
    const lobbyEntry = plan.find((p) => p.name === 'lobby-1')!.entry!;
    const services = (await import(pathToFileURL(path.join(path.dirname(lobbyEntry), '../contracts.js')).href)) as Contracts;
    const pageHash = contractHash(page.lobbyContracts, page.LOBBY);
    expect(pageHash).toMatch(/^[0-9a-f]{16}$/);
    expect(contractHash(services.lobbyContracts, services.LOBBY)).toBe(pageHash);
  });
});
