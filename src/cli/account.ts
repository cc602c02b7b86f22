/**
 * `xserver account add|passwd|del <name>`: account administration against the cluster store.
 * The password comes from --password, else env XSERVER_ACCOUNT_PASSWORD, else one line of stdin
 * (prompted without echo on a terminal). Exit code 0 on success, 1 on any refusal.
 */
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import type { LoadOptions } from '../config/load.js';
import { XError } from '../errors.js';
import { loadOrExit, makeLogger, openStore } from './process.js';
import { addAccount, deleteAccount, isAccountNotFound, setPassword } from '../login/accounts.js';

export const ACCOUNT_PASSWORD_ENV = 'XSERVER_ACCOUNT_PASSWORD';

export type AccountOp = 'add' | 'passwd' | 'del';

/** Reads one line from `input` (the password); on a terminal prompts on stderr and hides the typing. */
export function readPasswordLine(prompt: string, input: NodeJS.ReadStream = process.stdin): Promise<string> {
  const tty = input.isTTY === true;
  let muted = false;
  const output = new Writable({
    write(chunk, _enc, cb) {
      if (!muted) process.stderr.write(chunk);
      cb();
    },
  });
  const rl = createInterface({ input, output: tty ? output : undefined, terminal: tty });
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (fn: () => void): void => {
      if (done) return;
      done = true;
      rl.close();
      if (tty) process.stderr.write('\n');
      else input.pause();
      fn();
    };
    if (tty) {
      process.stderr.write(prompt);
      muted = true;
    }
    rl.once('line', (line) => finish(() => resolve(line)));
    rl.once('close', () =>
      finish(() => reject(new XError('BAD_REQUEST', 'no password given (use --password, $' + ACCOUNT_PASSWORD_ENV + ' or one line on stdin)'))),
    );
    rl.once('SIGINT', () => finish(() => reject(new XError('BAD_REQUEST', 'cancelled'))));
  });
}

/** --password, else $XSERVER_ACCOUNT_PASSWORD, else one line of stdin. */
export async function resolveAccountPassword(account: string, flag: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (flag !== undefined) return flag;
  const fromEnv = env[ACCOUNT_PASSWORD_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  return readPasswordLine(`Password for ${account}: `);
}

/** Runs one account command; sets process.exitCode (0 ok, 1 refused). */
export async function runAccountCommand(op: AccountOp, account: string, passwordFlag: string | undefined, loadOpts: LoadOptions): Promise<void> {
  // XSERVER_ACCOUNT_PASSWORD is no config setting: keep it out of the "unknown env" check.
  const env = { ...(loadOpts.env ?? process.env) };
  delete env[ACCOUNT_PASSWORD_ENV];
  const overrides = { 'log.level': 'warn', ...(loadOpts.overrides ?? {}) };
  const { config } = loadOrExit({ ...loadOpts, env, overrides });
  const logger = makeLogger(config, 'account');
  const fail = (msg: string): void => {
    process.stderr.write(`xserver account ${op}: ${msg}\n`);
    process.exitCode = 1;
  };
  let password: string | undefined;
  if (op !== 'del') {
    try {
      password = await resolveAccountPassword(account, passwordFlag);
    } catch (e) {
      return fail((e as Error).message);
    }
  }
  const store = await openStore(config, logger);
  try {
    if (op === 'add') await addAccount(store, account, password!);
    else if (op === 'passwd') await setPassword(store, account, password!);
    else await deleteAccount(store, account);
    const verb = op === 'add' ? 'created' : op === 'passwd' ? 'password changed' : 'deleted';
    process.stdout.write(`account "${account}" ${verb} (cluster ${config.cluster})\n`);
  } catch (e) {
    if (e instanceof XError && (e.code === 'ACCOUNT_EXISTS' || e.code === 'BAD_REQUEST' || isAccountNotFound(e))) fail(e.message);
    else fail(`failed: ${(e as Error).message}`);
  } finally {
    // The command's outcome is already printed; a failing close only means the connection is gone.
    await store.close().catch(() => {});
  }
}
