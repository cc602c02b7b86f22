// The playground page (served by the login service at /playground/ with login.playground on):
// lists the contracts the live services publish (/playground/contracts.json), logs in as any
// account, connects with the client SDK (served at /sdk/) and sends the chosen command with the
// JSON typed in; replies, errors and every message the gateway pushes show up in the log.
import { XClient, command, empty, jsonCodec, login } from 'xserver/client';

/** @typedef {import('../src/login/playground.js').PlaygroundListing} PlaygroundListing */
/** @typedef {import('../src/login/playground.js').PlaygroundContract} PlaygroundContract */
/** @typedef {import('xserver/client').Codec<unknown>} AnyCodec */

/** Log lines kept on the page: older ones are removed, so a chatty service cannot grow it without end. */
const MAX_LOG_LINES = 500;

/** @param {string} id an element of index.html */
const $ = (id) => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html has no #${id}`);
  return el;
};
const field = (/** @type {string} */ id) => /** @type {HTMLInputElement} */ ($(id));
const select = /** @type {HTMLSelectElement} */ ($('command'));
const body = /** @type {HTMLTextAreaElement} */ ($('body'));
const sendBtn = /** @type {HTMLButtonElement} */ ($('send-btn'));

/** @type {PlaygroundListing} */
let listing = { cmdOffset: 1000, services: [] };
/** Contracts by the command number the client sees (type * cmdOffset + cmd). */
const byClientCmd = new Map();
/** @type {XClient | null} */
let client = null;
let nextSend = 1;

/**
 * @param {'sent' | 'reply' | 'push' | 'error' | 'system'} cls
 * @param {string} text
 */
function log(cls, text) {
  const el = $('log');
  const line = document.createElement('div');
  line.className = cls;
  line.textContent = `${new Date().toISOString().slice(11, 23)} ${text}`;
  el.append(line);
  while (el.childElementCount > MAX_LOG_LINES) el.firstElementChild?.remove();
  el.scrollTop = el.scrollHeight;
}

/** @param {unknown} err */
const describe = (err) => {
  const e = /** @type {{ code?: unknown, message?: unknown }} */ (err ?? {});
  return typeof e.code === 'string' ? `${e.code}: ${String(e.message)}` : String(e.message ?? err);
};

/**
 * The SDK codec of a kind the page can edit as text: JSON (with its schema name) or no body.
 * @param {string} kind
 * @returns {AnyCodec | null}
 */
function codecFor(kind) {
  if (kind === 'json') return jsonCodec();
  if (kind.startsWith('json:')) return jsonCodec(kind.slice('json:'.length));
  if (kind === 'empty') return /** @type {AnyCodec} */ (empty);
  return null;
}

/** @returns {PlaygroundContract | undefined} */
function selected() {
  return byClientCmd.get(Number(select.value));
}

/** Puts the chosen contract's example (or `{}`) in the editor and says what it sends. */
function choose() {
  const c = selected();
  const info = $('command-info');
  if (!c) {
    info.textContent = '';
    body.value = '';
    sendBtn.disabled = true;
    return;
  }
  const sendable = codecFor(c.requestKind) !== null && (c.oneWay || codecFor(c.responseKind) !== null);
  info.textContent =
    `${c.name}: type ${c.type}, cmd ${c.cmd} (client cmd ${c.clientCmd}); ` +
    (c.oneWay ? `one-way (or pushed), ${c.requestKind}` : `request ${c.requestKind} → response ${c.responseKind}`) +
    (sendable ? '' : ' — the playground edits JSON bodies only');
  body.disabled = c.requestKind === 'empty';
  body.value = c.requestKind === 'empty' ? '' : pretty(c.example ?? '{}');
  sendBtn.textContent = c.oneWay ? 'Send one-way' : 'Send request';
  sendBtn.disabled = !sendable;
}

/**
 * @param {number} n
 * @param {string} what
 */
const plural = (n, what) => `${n} ${what}${n === 1 ? '' : 's'}`;

/** @param {string} jsonText */
function pretty(jsonText) {
  try {
    return JSON.stringify(JSON.parse(jsonText), null, 2);
  } catch {
    return jsonText;
  }
}

/** Loads the contracts of the live services into the command list (keeping the choice). */
async function loadContracts() {
  const keep = select.value;
  try {
    const r = await fetch('/playground/contracts.json', { cache: 'no-store' });
    if (!r.ok) throw new Error(`HTTP ${r.status} from /playground/contracts.json`);
    listing = /** @type {PlaygroundListing} */ (await r.json());
  } catch (e) {
    log('error', `cannot load the contracts: ${describe(e)}`);
    return;
  }
  byClientCmd.clear();
  select.replaceChildren();
  $('services').textContent =
    'services: ' +
    (listing.services
      .map(
        (s) =>
          `${s.name} (type ${s.type}, ${plural(s.nodes, 'node')}, ${s.contracts.length ? plural(s.contracts.length, 'contract') : 'no contracts declared'})`,
      )
      .join(', ') || 'none live');
  for (const s of listing.services) {
    if (s.contractHashes.length > 1)
      log('system', `${s.name} (type ${s.type}): its nodes serve different contracts (${s.contractHashes.join(', ')})`);
    if (s.contracts.length === 0) continue;
    const group = document.createElement('optgroup');
    group.label = `${s.name} (type ${s.type})`;
    for (const c of s.contracts) {
      byClientCmd.set(c.clientCmd, c);
      const opt = document.createElement('option');
      opt.value = String(c.clientCmd);
      opt.textContent = `${c.name} — ${c.oneWay ? 'one-way' : 'request'}`;
      group.append(opt);
    }
    select.append(group);
  }
  if (byClientCmd.size === 0) {
    const opt = document.createElement('option');
    opt.textContent = 'no live service publishes contracts (declare them: contracts in defineService, or node.useContracts)';
    opt.disabled = true;
    select.append(opt);
  } else if (byClientCmd.has(Number(keep))) {
    select.value = keep;
  }
  if (select.value !== keep || byClientCmd.size === 0) choose();
}

/**
 * A pushed message, decoded by its contract when one matches.
 * @param {Uint8Array} data
 * @param {number} cmd
 */
function onPush(data, cmd) {
  const c = byClientCmd.get(cmd);
  const codec = c ? codecFor(c.requestKind) : null;
  let shown;
  try {
    shown = codec ? JSON.stringify(codec.decode(data) ?? null) : new TextDecoder().decode(data);
  } catch (e) {
    shown = `(${data.length} bytes that do not decode: ${describe(e)})`;
  }
  log('push', `⇐ push ${c ? c.name : `cmd ${cmd}`}: ${shown}`);
}

/** @param {Event} e */
async function logIn(e) {
  e.preventDefault();
  const account = field('account').value.trim();
  const password = field('password').value;
  if (client) {
    await client.close();
    client = null;
  }
  $('status').textContent = `logging in as ${account}…`;
  try {
    const lr = await login(location.origin, account, password);
    const c = new XClient({ transport: 'ws', cmdOffset: listing.cmdOffset });
    c.onAny(onPush);
    c.on('error', (err) => log('error', `error notice ${describe(err)}`));
    c.on('kicked', (code, message) => log('error', `kicked ${code}: ${message}`));
    c.on('reconnecting', (n) => log('system', `connection lost; reconnect attempt ${n}`));
    c.on('reconnected', () => log('system', 'reconnected'));
    c.on('disconnected', (reason) => {
      log('system', `disconnected (${reason})`);
      if (client === c) $('status').textContent = `disconnected (${reason})`;
    });
    await c.connect(lr);
    client = c;
    $('status').textContent = `connected as ${lr.account} via gateway ${lr.gateway.id.slice(0, 8)}`;
    log('system', `logged in as ${lr.account}`);
  } catch (err) {
    $('status').textContent = 'not connected';
    log('error', `login failed ${describe(err)}`);
  }
}

async function send() {
  const c = selected();
  if (!c) return;
  const n = nextSend++;
  if (!client) {
    log('error', `#${n} ${c.name}: log in first`);
    return;
  }
  const requestCodec = codecFor(c.requestKind);
  if (!requestCodec) return;
  /** @type {unknown} */
  let value;
  if (c.requestKind !== 'empty') {
    try {
      value = JSON.parse(body.value);
    } catch (err) {
      log('error', `#${n} ${c.name}: the request is not valid JSON (${describe(err)}); nothing sent`);
      return;
    }
  }
  const text = c.requestKind === 'empty' ? '(no body)' : JSON.stringify(value);
  try {
    if (c.oneWay) {
      client.send(command({ type: c.type, cmd: c.cmd, name: c.name, request: requestCodec }), value);
      log('sent', `#${n} → ${c.name} (one-way): ${text}`);
      return;
    }
    const responseCodec = codecFor(c.responseKind);
    if (!responseCodec) return;
    const cmd = command({ type: c.type, cmd: c.cmd, name: c.name, request: requestCodec, response: responseCodec });
    log('sent', `#${n} → ${c.name}: ${text}`);
    const t0 = performance.now();
    const reply = await client.request(cmd, value);
    log('reply', `#${n} ← ${c.name} (${Math.round(performance.now() - t0)} ms): ${JSON.stringify(reply ?? null)}`);
  } catch (err) {
    log('error', `#${n} ← ${c.name} failed ${describe(err)}`);
  }
}

$('login-form').addEventListener('submit', (e) => void logIn(e));
select.addEventListener('change', choose);
$('refresh-btn').addEventListener('click', () => void loadContracts());
sendBtn.addEventListener('click', () => void send());
$('clear-btn').addEventListener('click', () => $('log').replaceChildren());
await loadContracts();
