/**
 * The HTTP plumbing of the login service: error answers, JSON replies, bounded request bodies
 * and static files. The login flow itself is in login.ts.
 */
import { createReadStream, promises as fsp } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import type { ErrorCodeName } from '../errors.js';
import type { Logger } from '../log.js';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
};

/** Codes of HTTP-level refusals that are not XError codes. */
export type HttpErrorCode = ErrorCodeName | 'NOT_FOUND' | 'METHOD_NOT_ALLOWED';

/** An answer with an error status. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: HttpErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headOnly = false): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(text)) });
  res.end(headOnly ? undefined : text);
}

/** Reads the whole body; 413 when it exceeds `max` bytes (declared or actual). */
export function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  const tooLarge = (): HttpError => new HttpError(413, 'BAD_REQUEST', `request body exceeds ${max} bytes`);
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const fail = (e: Error): void => {
      if (settled) return;
      settled = true;
      reject(e);
    };
    req.on('data', (c: Buffer) => {
      if (settled) return;
      size += c.length;
      if (size > max) fail(tooLarge());
      else chunks.push(c);
    });
    req.on('end', () => {
      if (settled) return;
      settled = true;
      resolve(Buffer.concat(chunks));
    });
    // The client went away mid-body: its error, not ours (400, counted as bad_request).
    const aborted = (): void => fail(new HttpError(400, 'BAD_REQUEST', 'request aborted'));
    req.on('error', aborted);
    req.on('close', aborted);
  });
}

/**
 * Serves one file under `root` for the URL path `urlPath` (mounted at `mount`): no `..`, no
 * symlink out of the root, directories through their index.html, HEAD without a body.
 */
export async function serveFile(req: IncomingMessage, res: ServerResponse, root: string, urlPath: string, mount: string, log: Logger): Promise<void> {
  let rel: string;
  try {
    rel = decodeURIComponent(urlPath);
  } catch {
    throw new HttpError(400, 'BAD_REQUEST', 'malformed percent-encoding in the path');
  }
  if (rel.includes('\0')) throw new HttpError(400, 'BAD_REQUEST', 'invalid path');
  if (rel.split(/[\\/]/).includes('..')) throw new HttpError(400, 'BAD_REQUEST', 'path may not contain ".." segments');
  const notFound = (): HttpError => new HttpError(404, 'NOT_FOUND', `not found: ${mount}${urlPath}`);
  const rootAbs = path.resolve(root);
  let full = path.join(rootAbs, rel);
  if (!inside(rootAbs, full)) throw notFound();
  let st = await fsp.stat(full).catch(() => null);
  if (!st) throw notFound();
  if (st.isDirectory()) {
    if (!urlPath.endsWith('/')) {
      // Relative links of the directory's index.html need the trailing slash.
      res.writeHead(301, { location: `${mount}${urlPath}/` }).end();
      return;
    }
    full = path.join(full, 'index.html');
    st = await fsp.stat(full).catch(() => null);
    if (!st) throw notFound();
  }
  if (!st.isFile()) throw notFound();
  const [realRoot, realFull] = await Promise.all([fsp.realpath(rootAbs), fsp.realpath(full)]).catch(() => [null, null]);
  if (!realRoot || !realFull || !inside(realRoot, realFull)) throw notFound();

  res.writeHead(200, {
    'content-type': CONTENT_TYPES[path.extname(full).toLowerCase()] ?? 'application/octet-stream',
    'content-length': String(st.size),
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  await new Promise<void>((resolve) => {
    const stream = createReadStream(realFull);
    stream.on('error', (e) => {
      log.warn({ err: e, file: realFull }, 'static file read failed');
      res.destroy();
      resolve();
    });
    res.on('close', () => {
      stream.destroy();
      resolve();
    });
    stream.pipe(res);
  });
}

function inside(root: string, p: string): boolean {
  return p === root || p.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}
