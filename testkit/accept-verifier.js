// @ts-check
/**
 * A login verifier (`login.verifier = ACCEPT_VERIFIER`) for load tests: accepts any account whose
 * password is "bot" (the default password of `xserver bots`). The default verifier costs one
 * scrypt per login, which is what a login-rate test measures but not what a CCU test is about.
 */
import { fileURLToPath } from 'node:url';

/** This module's path, for the `login.verifier` setting. */
export const ACCEPT_VERIFIER = fileURLToPath(import.meta.url);

/**
 * @param {string} _account
 * @param {string} password
 */
export function verify(_account, password) {
  return password === 'bot';
}
