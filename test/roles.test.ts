import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../src/config/schema.js';
import { silentLogger, type Logger } from '../src/log.js';
import { createRoleContext, resolveType, startRole, stopInOrder } from '../src/roles.js';

/** A logger that records error() calls (the only level stopInOrder uses). */
function recordingLogger(): { log: Logger; errors: unknown[][] } {
  const errors: unknown[][] = [];
  const log = silentLogger();
  log.error = ((...args: unknown[]) => void errors.push(args)) as Logger['error'];
  return { log, errors };
}

describe('createRoleContext', () => {
  it('fills what is not given: a store for config.redisUrl, a logger, a metrics registry', async () => {
    const config = defaultConfig();
    config.redisUrl = 'memory://';
    config.log.level = 'silent';
    const ctx = createRoleContext({ config });
    try {
      expect(ctx.config).toBe(config);
      expect(ctx.store.kind).toBe('memory');
      expect(typeof ctx.logger.info).toBe('function');
      expect(ctx.metrics).toBeDefined();
    } finally {
      await ctx.store.close();
    }
  });

  it('keeps what is given, so the roles of one process share them', () => {
    const base = createRoleContext({ config: { ...defaultConfig(), redisUrl: 'memory://' } });
    const ctx = createRoleContext(base);
    expect(ctx.store).toBe(base.store);
    expect(ctx.logger).toBe(base.logger);
    expect(ctx.metrics).toBe(base.metrics);
    return base.store.close();
  });
});

describe('startRole', () => {
  it('refuses a node role without a service', async () => {
    const ctx = createRoleContext({ config: { ...defaultConfig(), redisUrl: 'memory://' } });
    await expect(startRole('node', ctx)).rejects.toMatchObject({ code: 'CONFIG' });
    await ctx.store.close();
  });

  it('resolves a service type by name through the types map, and says which names exist', () => {
    expect(resolveType({ type: 'lobby', start: () => {} }, { lobby: 4 })).toBe(4);
    expect(resolveType({ type: 9, start: () => {} }, {})).toBe(9);
    expect(() => resolveType({ type: 'nope', start: () => {} }, { lobby: 4 })).toThrow(/lobby/);
  });
});

describe('stopInOrder', () => {
  it('stops every step in the given order, one at a time', async () => {
    const order: string[] = [];
    const step = (name: string) => ({
      name,
      stop: async () => {
        order.push(`${name} start`);
        await new Promise((r) => setTimeout(r, 5));
        order.push(`${name} done`);
      },
    });
    expect(await stopInOrder([step('a'), step('b')], silentLogger())).toBe(0);
    expect(order).toEqual(['a start', 'a done', 'b start', 'b done']);
  });

  it('logs a failing step with its name and still stops the rest', async () => {
    const { log, errors } = recordingLogger();
    const stopped: string[] = [];
    const failed = await stopInOrder(
      [
        { name: 'gateway', stop: () => Promise.reject(new Error('socket busy')) },
        { name: 'store', stop: async () => void stopped.push('store') },
      ],
      log,
    );
    expect(failed).toBe(1);
    expect(stopped).toEqual(['store']);
    expect(errors).toHaveLength(1);
    expect(errors[0]![0]).toMatchObject({ step: 'gateway' });
    expect(String(errors[0]![1])).toContain('socket busy');
  });
});
