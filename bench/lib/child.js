// Entry point of every benchmark child process: `node child.js <module> <impl-name>`.
// Imports the implementation module, then serves {type:'call', role, opts} messages from the
// parent by invoking impl[role](opts, ctx) and replying with its result.
import { pathToFileURL } from 'node:url';
import { now, findImpl } from './impl.js';

const [modulePath, implName] = process.argv.slice(2);

// The parent owns our lifetime: if it goes away, so do we.
process.on('disconnect', () => process.exit(0));

const ctx = {
  now,
  /** Reports an asynchronous observation to the parent (used by the discovery scenario). */
  emit(event) {
    process.send({ type: 'event', event, t: now() });
  },
};

let impl;
try {
  impl = findImpl(await import(pathToFileURL(modulePath).href), implName);
} catch (err) {
  process.send({ type: 'fatal', message: err?.message ?? String(err) });
  process.exit(1);
}

/**
 * Runs one role call from the parent and sends back its value or its error, so it does not reject
 * (unless the channel is gone, and then the 'disconnect' handler ends the process).
 */
async function call(msg) {
  try {
    const fn = impl[msg.role];
    if (typeof fn !== 'function') throw new Error(`${implName} has no '${msg.role}' function`);
    const value = await fn.call(impl, msg.opts, ctx);
    process.send({ type: 'return', id: msg.id, value: value ?? null });
  } catch (err) {
    process.send({ type: 'throw', id: msg.id, message: err?.message ?? String(err), stack: err?.stack });
  }
}

process.on('message', (msg) => {
  if (msg?.type === 'call') void call(msg);
});

const roles = Object.keys(impl).filter((k) => typeof impl[k] === 'function');
process.send({ type: 'hello', roles });
