// The chat demo page: logs in over HTTP, connects to its gateway over WebSocket with the client
// SDK, and talks to the lobby service through the contracts of ../contracts.ts. The build
// (scripts/build-examples.js) compiles it for the browser; index.html maps 'xserver/client' to the
// SDK the login service serves at /sdk/.
import { XClient, login } from 'xserver/client';
import {
  CreateRole,
  EnterGame,
  FindMatch,
  MatchFound,
  PrivateChat,
  PrivateMessage,
  RoleList,
  WorldChat,
  WorldMessage,
  lobbyContracts,
} from '../contracts.js';

/** An element of index.html. */
const $ = (id: string): HTMLElement => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html has no #${id}`);
  return el;
};
/** An <input> of index.html. */
const field = (id: string): HTMLInputElement => $(id) as HTMLInputElement;
/** Errors from the SDK carry a code; others (a page bug) only a message. */
const problem = (err: unknown): { code?: string; message: string } => (err instanceof Error ? err : { message: String(err) });
/**
 * An async DOM event listener. Each handler shows its own failures on the page; whatever still
 * escapes one (a bug in the page) goes to the console instead of vanishing.
 */
const listener =
  (handler: (e: Event) => Promise<void>): ((e: Event) => void) =>
  (e) => {
    handler(e).catch((err: unknown) => console.error(err));
  };

// With the lobby's contracts, the gateway refuses this page (CONTRACT_MISMATCH) when the lobbies
// run other ones, instead of letting it send what they no longer understand.
const client = new XClient({ transport: 'ws', contracts: lobbyContracts });

function show(view: 'login-view' | 'role-view' | 'game-view'): void {
  for (const v of ['login-view', 'role-view', 'game-view']) $(v).classList.toggle('hidden', v !== view);
}

function log(cls: string, text: string): void {
  const line = document.createElement('div');
  line.className = cls;
  line.textContent = text;
  $('log').append(line);
  $('log').scrollTop = $('log').scrollHeight;
}

function status(text: string): void {
  $('status').textContent = text;
}

client.on(WorldMessage, (m) => log('world', `[world] ${m.from}: ${m.text}`));
client.on(PrivateMessage, (m) => log('private', `[from ${m.from}] ${m.text}`));
client.on(MatchFound, (m) => log('match', `[match ${m.matchId}] ${m.players.join(' vs ')}`));
let kickedWith: string | null = null;
client.on('kicked', (code, message) => {
  kickedWith = code;
  status(`kicked (${code}): ${message}`);
});
client.on('reconnecting', (n) => status(`connection lost, reconnecting (attempt ${n})…`));
client.on('reconnected', () => status(`reconnected as ${client.welcome?.account}`));
// The session is over (kicked, or the gateway is gone for good): back to the login form, from
// where the same client connects again (to whichever gateway the login picks).
client.on('disconnected', (reason) => {
  if (reason !== kickedWith) status(`disconnected: ${reason}`);
  kickedWith = null;
  show('login-view');
});

$('login-form').addEventListener(
  'submit',
  listener(async (e) => {
    e.preventDefault();
    try {
      status('logging in…');
      const session = await login('/login', field('account').value.trim(), field('password').value);
      await client.connect(session);
      status(`connected as ${session.account} via gateway ${session.gateway.id.slice(0, 8)} (${session.gateway.wsUrl})`);
      const { roles } = await client.request(RoleList, undefined);
      $('roles').textContent = roles.length ? roles.map((r) => r.name).join(', ') : '(none)';
      if (roles[0]) await enter(roles[0].name);
      else show('role-view');
    } catch (err) {
      const { code, message } = problem(err);
      status(`login failed: ${code ?? ''} ${message}`);
    }
  }),
);

async function enter(name: string): Promise<void> {
  await client.request(EnterGame, { name });
  show('game-view');
  log('system', `you are ${name}`);
  (window as Window & { __role?: string }).__role = name; // the role in game, visible from the browser console
}

$('role-form').addEventListener(
  'submit',
  listener(async (e) => {
    e.preventDefault();
    try {
      const { name } = await client.request(CreateRole, { name: field('role-name').value.trim() });
      await enter(name);
    } catch (err) {
      status(`cannot create the role: ${problem(err).message}`);
    }
  }),
);

$('world-form').addEventListener('submit', (e) => {
  e.preventDefault();
  try {
    client.send(WorldChat, { text: field('world-text').value });
    field('world-text').value = '';
  } catch (err) {
    log('error', `not sent: ${problem(err).message}`);
  }
});

$('private-form').addEventListener(
  'submit',
  listener(async (e) => {
    e.preventDefault();
    const to = field('private-to').value.trim();
    const text = field('private-text').value;
    try {
      await client.request(PrivateChat, { to, text });
      log('private', `[to ${to}] ${text}`);
      field('private-text').value = '';
    } catch (err) {
      log('error', `not delivered: ${problem(err).message}`);
    }
  }),
);

$('match-btn').addEventListener(
  'click',
  listener(async () => {
    try {
      await client.request(FindMatch, undefined);
      log('system', 'looking for a match…');
    } catch (err) {
      log('error', problem(err).message);
    }
  }),
);
