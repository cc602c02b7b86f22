// The chat demo page: logs in over HTTP, connects to its gateway over WebSocket with the client
// SDK (served by the login service at /sdk/), and talks to the lobby service (type 4).
import { XClient, login, json } from '/sdk/index.js';

const LOBBY = 4;
const Cmd = { ROLE_LIST: 1, CREATE_ROLE: 2, ENTER_GAME: 3, WORLD_CHAT: 4, PRIVATE_CHAT: 5, MATCH: 6, WORLD_MESSAGE: 10, PRIVATE_MESSAGE: 11, MATCH_FOUND: 12 };

const $ = (id) => document.getElementById(id);
const client = new XClient({ transport: 'ws' });
const lobby = (cmd) => client.cmd(LOBBY, cmd);
const ask = async (cmd, body) => json(await client.request(lobby(cmd), JSON.stringify(body ?? {})));

function show(view) {
  for (const v of ['login-view', 'role-view', 'game-view']) $(v).classList.toggle('hidden', v !== view);
}

function log(cls, text) {
  const line = document.createElement('div');
  line.className = cls;
  line.textContent = text;
  $('log').append(line);
  $('log').scrollTop = $('log').scrollHeight;
}

function status(text) {
  $('status').textContent = text;
}

client.on(lobby(Cmd.WORLD_MESSAGE), (data) => {
  const m = json(data);
  log('world', `[world] ${m.from}: ${m.text}`);
});
client.on(lobby(Cmd.PRIVATE_MESSAGE), (data) => {
  const m = json(data);
  log('private', `[from ${m.from}] ${m.text}`);
});
client.on(lobby(Cmd.MATCH_FOUND), (data) => {
  const m = json(data);
  log('match', `[match ${m.matchId}] ${m.players.join(' vs ')}`);
});
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

$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    status('logging in…');
    const session = await login('/login', $('account').value.trim(), $('password').value);
    await client.connect(session);
    status(`connected as ${session.account} via gateway ${session.gateway.id.slice(0, 8)} (${session.gateway.wsUrl})`);
    const { roles } = await ask(Cmd.ROLE_LIST);
    $('roles').textContent = roles.length ? roles.map((r) => r.name).join(', ') : '(none)';
    if (roles.length > 0) await enter(roles[0].name);
    else show('role-view');
  } catch (err) {
    status(`login failed: ${err.code ?? ''} ${err.message}`);
  }
});

async function enter(name) {
  await ask(Cmd.ENTER_GAME, { name });
  show('game-view');
  log('system', `you are ${name}`);
  window.__role = name;
}

$('role-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    const { name } = await ask(Cmd.CREATE_ROLE, { name: $('role-name').value.trim() });
    await enter(name);
  } catch (err) {
    status(`cannot create the role: ${err.message}`);
  }
});

$('world-form').addEventListener('submit', (e) => {
  e.preventDefault();
  try {
    client.send(lobby(Cmd.WORLD_CHAT), JSON.stringify({ text: $('world-text').value }));
    $('world-text').value = '';
  } catch (err) {
    log('error', `not sent: ${err.message}`);
  }
});

$('private-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const to = $('private-to').value.trim();
  const text = $('private-text').value;
  try {
    await ask(Cmd.PRIVATE_CHAT, { to, text });
    log('private', `[to ${to}] ${text}`);
    $('private-text').value = '';
  } catch (err) {
    log('error', `not delivered: ${err.message}`);
  }
});

$('match-btn').addEventListener('click', async () => {
  try {
    await ask(Cmd.MATCH);
    log('system', 'looking for a match…');
  } catch (err) {
    log('error', err.message);
  }
});
