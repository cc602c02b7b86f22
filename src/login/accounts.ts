/**
 * Who may log in. The default verifier checks the account records in the cluster store (scrypt
 * hashes) and can create unknown accounts on first login (`login.autoRegister`, development
 * only). `login.verifier` names a module whose `verify(account, password)` replaces it, e.g. to
 * ask an existing user database. The account admin helpers back `xserver account ...`.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { XError } from '../errors.js';
import type { AccountStore } from '../store/store.js';
import { hashPassword, validateAccountName, validatePassword, verifyAgainstDummy, verifyPassword } from './password.js';

/** Resolves true when the credentials are valid. Throwing is an internal error, not a refusal. */
export type Verifier = (account: string, password: string) => Promise<boolean>;

export interface StoreVerifierOptions {
  /** Create unknown accounts with the given password (development only). */
  autoRegister?: boolean;
  /** Called when an account was auto-registered (logging). */
  onRegistered?: (account: string) => void;
}

/** The default verifier: the account's scrypt hash in the store. */
export function storeVerifier(store: AccountStore, opts: StoreVerifierOptions = {}): Verifier {
  return async (account, password) => {
    const rec = await store.getAccount(account);
    if (rec) return verifyPassword(password, rec.passwordHash);
    if (!opts.autoRegister) return verifyAgainstDummy(password);
    const passwordHash = await hashPassword(password);
    if (await store.createAccount(account, { passwordHash, createdAt: Date.now() })) {
      opts.onRegistered?.(account);
      return true;
    }
    // Someone registered it meanwhile (a concurrent first login): check against theirs.
    const now = await store.getAccount(account);
    return now ? verifyPassword(password, now.passwordHash) : false;
  };
}

type VerifyFn = (account: string, password: string) => boolean | Promise<boolean>;

/**
 * Loads a user verifier module: its default export or named export `verify` must be a function
 * `(account, password) => boolean | Promise<boolean>`. A relative path is resolved against the
 * working directory. Only a result of exactly `true` admits the login.
 */
export async function loadVerifier(modulePath: string): Promise<Verifier> {
  const url = /^(file|data|node):/.test(modulePath) ? modulePath : pathToFileURL(path.resolve(modulePath)).href;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(url)) as Record<string, unknown>;
  } catch (e) {
    throw new XError('CONFIG', `login.verifier: cannot load ${modulePath}: ${(e as Error).message}`);
  }
  const fn = (typeof mod.default === 'function' ? mod.default : mod.verify) as VerifyFn | undefined;
  if (typeof fn !== 'function') {
    throw new XError('CONFIG', `login.verifier: ${modulePath} must export a function verify(account, password) (default export or named "verify")`);
  }
  return async (account, password) => (await fn(account, password)) === true;
}

/** The verifier the config asks for: `login.verifier` when set, else the store with `login.autoRegister`. */
export async function createVerifier(
  store: AccountStore,
  login: { verifier: string; autoRegister: boolean },
  onRegistered?: (account: string) => void,
): Promise<Verifier> {
  if (login.verifier.trim() !== '') return loadVerifier(login.verifier.trim());
  return storeVerifier(store, { autoRegister: login.autoRegister, onRegistered });
}

// ---- account administration (xserver account add|passwd|del) ----

/** Creates an account; throws ACCOUNT_EXISTS when it exists, BAD_REQUEST for an invalid name or password. */
export async function addAccount(store: AccountStore, account: string, password: string): Promise<void> {
  validateAccountName(account);
  validatePassword(password);
  const passwordHash = await hashPassword(password);
  if (!(await store.createAccount(account, { passwordHash, createdAt: Date.now() }))) {
    throw new XError('ACCOUNT_EXISTS', `account "${account}" already exists`);
  }
}

/** Error of setPassword/deleteAccount for an account that does not exist. */
export function accountNotFound(account: string): XError {
  return new XError('BAD_REQUEST', `account "${account}" does not exist`, { notFound: true });
}

export function isAccountNotFound(e: unknown): boolean {
  return e instanceof XError && e.details?.notFound === true;
}

/** Replaces the password of an existing account; throws (isAccountNotFound) when it does not exist. */
export async function setPassword(store: AccountStore, account: string, password: string): Promise<void> {
  validateAccountName(account);
  validatePassword(password);
  const passwordHash = await hashPassword(password);
  if (!(await store.setAccountPassword(account, passwordHash))) throw accountNotFound(account);
}

/** Deletes an account; throws (isAccountNotFound) when it does not exist. */
export async function deleteAccount(store: AccountStore, account: string): Promise<void> {
  validateAccountName(account);
  if (!(await store.deleteAccount(account))) throw accountNotFound(account);
}
