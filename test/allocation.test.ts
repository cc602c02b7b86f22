import { describe, expect, it } from 'vitest';
import { chooseAllocation, chooseReallocation, leastLoaded } from '../src/store/allocation.js';

const c = (id: string, load: number) => ({ id, load });

describe('leastLoaded', () => {
  it('picks the minimum load, the first one on a tie', () => {
    expect(leastLoaded([c('a', 5), c('b', 2), c('c', 2)])).toBe('b');
  });

  it('ranks a non-finite load (a broken report) last', () => {
    expect(leastLoaded([c('m', Number.NaN), c('n', 1)])).toBe('n');
    expect(leastLoaded([c('m', Number.POSITIVE_INFINITY), c('n', 1e9)])).toBe('n');
    expect(leastLoaded([c('m', Number.NaN)])).toBe('m');
  });

  it('skips the excluded id and answers null when nothing is left', () => {
    expect(leastLoaded([c('x', 0), c('y', 1)], 'x')).toBe('y');
    expect(leastLoaded([c('x', 0)], 'x')).toBeNull();
    expect(leastLoaded([])).toBeNull();
  });
});

describe('chooseAllocation', () => {
  it('keeps the current node while it is a candidate, however loaded (sticky)', () => {
    expect(chooseAllocation('b', [c('a', 0), c('b', 99)])).toBe('b');
  });

  it('moves to the least loaded candidate when the current one is not a candidate', () => {
    expect(chooseAllocation('b', [c('a', 3), c('c', 1)])).toBe('c');
    expect(chooseAllocation(undefined, [c('a', 3), c('c', 1)])).toBe('c');
  });

  it('answers null without candidates, even with a current node', () => {
    expect(chooseAllocation('b', [])).toBeNull();
    expect(chooseAllocation(undefined, [])).toBeNull();
  });
});

describe('chooseReallocation', () => {
  it('moves an allocation still on the dead node to the least loaded other candidate', () => {
    expect(chooseReallocation('x', 'x', [c('x', 0), c('y', 1)])).toEqual({ pick: 'y', write: true });
  });

  it('allocates an unset one, skipping the dead id', () => {
    expect(chooseReallocation(undefined, 'x', [c('x', 0), c('y', 1)])).toEqual({ pick: 'y', write: true });
  });

  it('leaves an allocation someone already moved (compare-and-set)', () => {
    expect(chooseReallocation('y', 'x', [c('z', 0)])).toEqual({ pick: 'y', write: false });
  });

  it('keeps the dead allocation when there is nowhere to go', () => {
    expect(chooseReallocation('y', 'y', [])).toEqual({ pick: null, write: false });
    expect(chooseReallocation('y', 'y', [c('y', 0)])).toEqual({ pick: null, write: false });
  });
});
