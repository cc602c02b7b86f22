/**
 * TLS material (docs/operations.md, "TLS"): the PEM files named by tls.cert / tls.key / tls.ca,
 * read at start and re-read when they change (polled: mtime, size, inode), so a renewed
 * certificate is served without a restart (servers swap their secure context; open connections
 * keep theirs).
 */
import { readFileSync, statSync } from 'node:fs';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { XError } from './errors.js';

export interface TlsFiles {
  cert: string;
  key: string;
  /** CA bundle that peer certificates must chain to (intranet mTLS); '' = the system's. */
  ca: string;
}

/** How often the files are checked for a change (stat polling: works on every filesystem, cheap). */
export const TLS_RELOAD_POLL_MS = 2000;

export class TlsMaterial {
  private current: SecureContextOptions;
  private readonly listeners = new Set<(o: SecureContextOptions) => void>();
  private timer: ReturnType<typeof setInterval> | null = null;
  /** What the files looked like when last read (mtime, size, inode): a change is any difference. */
  private seen = '';

  constructor(
    private readonly files: TlsFiles,
    private readonly onError: (e: Error) => void = () => {},
    private readonly pollMs = TLS_RELOAD_POLL_MS,
  ) {
    this.seen = this.signature();
    this.current = this.read();
  }

  /** Key, certificate and CA as node:tls options. */
  get options(): SecureContextOptions {
    return this.current;
  }

  /** Calls `fn` with the new material each time the files change (and stay valid). Starts watching. */
  onReload(fn: (o: SecureContextOptions) => void): () => void {
    this.listeners.add(fn);
    if (!this.timer) {
      this.timer = setInterval(this.poll, this.pollMs);
      this.timer.unref();
    }
    return () => {
      this.listeners.delete(fn);
      if (this.listeners.size === 0) this.stop();
    };
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.listeners.clear();
  }

  private readonly poll = (): void => {
    const now = this.signature();
    if (now === this.seen) return;
    // Noted even if the new files do not load: one report per change, not one per poll.
    this.seen = now;
    let next: SecureContextOptions;
    try {
      next = this.read();
    } catch (e) {
      // A half-written renewal: keep serving the old material, try again at the next change.
      this.onError(e as Error);
      return;
    }
    this.current = next;
    for (const fn of this.listeners) fn(next);
  };

  private signature(): string {
    return this.paths()
      .map((p) => {
        try {
          const st = statSync(p);
          return `${st.mtimeMs}:${st.size}:${st.ino}`;
        } catch {
          return 'missing';
        }
      })
      .join('|');
  }

  private paths(): string[] {
    return [this.files.cert, this.files.key, this.files.ca].filter((p) => p !== '');
  }

  private read(): SecureContextOptions {
    const load = (key: string, path: string): Buffer => {
      try {
        return readFileSync(path);
      } catch (e) {
        throw new XError('CONFIG', `${key}: cannot read ${path}: ${(e as Error).message}`);
      }
    };
    const out: SecureContextOptions = { cert: load('tls.cert', this.files.cert), key: load('tls.key', this.files.key) };
    if (this.files.ca !== '') out.ca = load('tls.ca', this.files.ca);
    try {
      // Parses and pairs them now: a key that does not match the certificate (a renewal caught
      // half-way) is refused here, not inside a server's setSecureContext.
      createSecureContext(out);
    } catch (e) {
      throw new XError('CONFIG', `tls.cert / tls.key: ${(e as Error).message}`);
    }
    return out;
  }
}

const shared = new Map<string, TlsMaterial>();

/**
 * The process's material for these files: links, gateway and login of one process share one
 * reader (one poll of the files, one warning when a renewal does not load).
 */
export function tlsMaterialFor(files: TlsFiles, log: { warn(obj: object, msg: string): void }): TlsMaterial {
  const key = `${files.cert}\0${files.key}\0${files.ca}`;
  let m = shared.get(key);
  if (!m) {
    m = new TlsMaterial(files, (e) => log.warn({ err: e.message }, 'TLS files changed but cannot be loaded; keeping the previous ones'));
    shared.set(key, m);
  }
  return m;
}
