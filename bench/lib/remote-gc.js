// A full GC in another Node process, for memory figures after GC of a process the bench did not
// write (the `xserver gateway` of `ccu`). The process is started with
// NODE_OPTIONS=--inspect-port=127.0.0.1:<port>, which opens nothing; SIGUSR1 opens the inspector
// there (loopback only), and HeapProfiler.collectGarbage runs a full GC.
import WebSocket from 'ws';
import { sleep } from '../../testkit/index.js';

/** NODE_OPTIONS for a process that remoteGc() may collect later. */
export const inspectPortOption = (port) => `--inspect-port=127.0.0.1:${port}`;

async function debuggerUrl(port, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/json/list`, { signal: AbortSignal.timeout(1000) });
      const [target] = await res.json();
      if (target?.webSocketDebuggerUrl) return target.webSocketDebuggerUrl;
    } catch {
      // not open yet
    }
    if (Date.now() > deadline) throw new Error(`no inspector on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** Opens the inspector of `pid` (first call) and runs `rounds` full GCs; resolves when they are done. */
export async function remoteGc(pid, port, { rounds = 2, timeoutMs = 10_000 } = {}) {
  process.kill(pid, 'SIGUSR1');
  const ws = new WebSocket(await debuggerUrl(port, timeoutMs));
  try {
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    for (let id = 1; id <= rounds; id++) {
      ws.send(JSON.stringify({ id, method: 'HeapProfiler.collectGarbage' }));
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('collectGarbage did not answer')), timeoutMs);
        const onMessage = (data) => {
          if (JSON.parse(String(data)).id !== id) return;
          clearTimeout(timer);
          ws.off('message', onMessage);
          resolve();
        };
        ws.on('message', onMessage);
      });
    }
  } finally {
    ws.close();
  }
}
