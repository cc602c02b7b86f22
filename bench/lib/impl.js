// Helpers shared by the parent and the children for naming implementations.
import { wallMs } from '../../testkit/clock.js';

/** Wall-clock milliseconds with sub-ms resolution, comparable across processes on one host. */
export const now = wallMs;

/** All implementation objects a module exports: its default (object or array) and named objects. */
export function implsOf(mod) {
  const out = [];
  for (const [key, value] of Object.entries(mod)) {
    const list = key === 'default' && Array.isArray(value) ? value : [value];
    for (const v of list) if (v && typeof v === 'object' && typeof v.name === 'string') out.push(v);
  }
  return out;
}

export function findImpl(mod, name) {
  const impl = implsOf(mod).find((i) => i.name === name);
  if (!impl) throw new Error(`module exports no implementation named '${name}'`);
  return impl;
}
