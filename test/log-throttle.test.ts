import { describe, expect, it } from 'vitest';
import { LogThrottle } from '../src/log.js';

describe('LogThrottle', () => {
  it('passes one line per key and interval, and reports how many it held back', () => {
    let t = 0;
    const th = new LogThrottle(1000, 64, () => t);
    const lines: [string, number][] = [];
    const log = (key: string) => th.run(key, (n) => lines.push([key, n]));
    for (let i = 0; i < 100; i++) log('AUTH_FAILED');
    log('WRONG_CLUSTER');
    t = 999;
    log('AUTH_FAILED');
    t = 1000;
    log('AUTH_FAILED');
    expect(lines).toEqual([
      ['AUTH_FAILED', 0],
      ['WRONG_CLUSTER', 0],
      ['AUTH_FAILED', 100],
    ]);
  });

  it('keeps at most maxKeys keys', () => {
    let t = 0;
    const th = new LogThrottle(1000, 2, () => t);
    let n = 0;
    for (const k of ['a', 'b', 'c', 'a']) th.run(k, () => n++);
    // 'a' was forgotten when 'c' came, so it passes again within the interval.
    expect(n).toBe(4);
    t = 1;
    th.run('c', () => n++);
    expect(n).toBe(4);
  });
});
