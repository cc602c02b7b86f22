// The chat demo page: logs in over HTTP, connects to its gateway over WebSocket with the client
// SDK (served by the login service at /sdk/), and talks to the lobby service (type 4).
import { XClient, login, json } from '/sdk/index.js';

const LOBBY = 4;
const Cmd = {
  ROLE_LIST: 1,
  CREATE_ROLE: 2,
  ENTER_GAME: 3,
  WORLD_CHAT: 4,
  PRIVATE_CHAT: 5,
  MATCH: 6,
  WORLD_MESSAGE: 10,
  PRIVATE_MESSAGE: 11,
  MATCH_FOUND: 12,
};

/** @param {string} id an element of index.html */
const $ = (id) => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html has no #${id}`);
  return el;
};
/** @param {string} id an <input> of index.html */
const field = (id) => /** @type {HTMLInputElement} */ ($(id));
/**
 * Errors from the SDK carry a code; others (a page bug) only a message.
 * @param {unknown} err
 * @returns {{ code?: string, message: string }}
 */
const problem = (err) => (err instanceof Error ? err : { message: String(err) });
/**
 * An async DOM event listener. Each handler shows its own failures on the page; whatever still
 * escapes one (a bug in the page) goes to the console instead of vanishing.
 * @param {(e: Event) => Promise<void>} handler
 * @returns {(e: Event) => void}
 */
const listener = (handler) => (e) => {
  handler(e).catch((err) => console.error(err));
};

const client = new XClient({ transport: 'ws' });
/** @param {number} cmd */
const lobby = (cmd) => client.cmd(LOBBY, cmd);
/**
 * A lobby request; the reply is the lobby's JSON (examples/lobby/service.js says what it holds).
 * @param {number} cmd
 * @param {unknown} [body]
 * @returns {Promise<any>}
 */
const ask = async (cmd, body) => json(await client.request(lobby(cmd), JSON.stringify(body ?? {})));

/** @param {string} view */
function show(view) {
  for (const v of ['login-view', 'role-view', 'game-view']) $(v).classList.toggle('hidden', v !== view);
}

/**
 * @param {string} cls
 * @param {string} text
 */
function log(cls, text) {
  const line = document.createElement('div');
  line.className = cls;
  line.textContent = text;
  $('log').append(line);
  $('log').scrollTop = $('log').scrollHeight;
}

/** @param {string} text */
function status(text) {
  $('status').textContent = text;
}

client.on(lobby(Cmd.WORLD_MESSAGE), (data) => {
  const m = /** @type {{ from: string, text: string }} */ (json(data));
  log('world', `[world] ${m.from}: ${m.text}`);
});
client.on(lobby(Cmd.PRIVATE_MESSAGE), (data) => {
  const m = /** @type {{ from: string, text: string }} */ (json(data));
  log('private', `[from ${m.from}] ${m.text}`);
});
client.on(lobby(Cmd.MATCH_FOUND), (data) => {
  const m = /** @type {{ matchId: string, players: string[] }} */ (json(data));
  log('match', `[match ${m.matchId}] ${m.players.join(' vs ')}`);
});
/** @type {string | null} */
let kickedWith = null;
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
      const { roles } = await ask(Cmd.ROLE_LIST);
      $('roles').textContent = roles.length ? roles.map((/** @type {{ name: string }} */ r) => r.name).join(', ') : '(none)';
      if (roles.length > 0) await enter(roles[0].name);
      else show('role-view');
    } catch (err) {
      const { code, message } = problem(err);
      status(`login failed: ${code ?? ''} ${message}`);
    }
  }),
);

/** @param {string} name */
async function enter(name) {
  await ask(Cmd.ENTER_GAME, { name });
  show('game-view');
  log('system', `you are ${name}`);
  /** @type {Window & { __role?: string }} */ (window).__role = name; // the role in game, visible from the browser console
}

$('role-form').addEventListener(
  'submit',
  listener(async (e) => {
    e.preventDefault();
    try {
      const { name } = await ask(Cmd.CREATE_ROLE, { name: field('role-name').value.trim() });
      await enter(name);
    } catch (err) {
      status(`cannot create the role: ${problem(err).message}`);
    }
  }),
);

$('world-form').addEventListener('submit', (e) => {
  e.preventDefault();
  try {
    client.send(lobby(Cmd.WORLD_CHAT), JSON.stringify({ text: field('world-text').value }));
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
      await ask(Cmd.PRIVATE_CHAT, { to, text });
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
      await ask(Cmd.MATCH);
      log('system', 'looking for a match…');
    } catch (err) {
      log('error', problem(err).message);
    }
  }),
);
