// A minimal service: answers Echo (node to node) with what it got, and every few seconds asks another echo node
// for an echo over a direct link. After `npm run build`, run it with:
//   npx xserver node --entry dist/examples/echo/service.js
import { defineService, isXError } from 'xserver';
import { ECHO, Echo } from '../contracts.js';

/** How often a node asks another one, and how long it waits for the answer. */
const ASK_EVERY_MS = 5000;
const ASK_TIMEOUT_MS = 1000;

let timer: ReturnType<typeof setInterval> | undefined;

export default defineService({
  type: ECHO,
  name: 'echo',
  start(node) {
    node.handle(Echo, (msg) => msg); // the returned value is the response

    node.on('joined', (peer) => node.log.info({ peer: peer.id, type: peer.type }, 'peer joined'));
    node.on('left', (peer, reason) => node.log.info({ peer: peer.id, reason }, 'peer left'));

    // Never rejects: a failed request is logged, so the timer can ignore the promise.
    const askAnother = async (): Promise<void> => {
      const other = node.one(node.type, { excludeId: node.id });
      if (!other) return;
      try {
        const reply = await node.request(other.id, Echo, { text: `hello from ${node.id.slice(0, 8)}` }, { timeoutMs: ASK_TIMEOUT_MS });
        node.log.info({ from: other.id.slice(0, 8), reply: reply.text }, 'echo');
      } catch (e) {
        if (isXError(e)) node.log.warn({ code: e.code }, e.message);
        else node.log.warn({ err: e }, 'echo request failed');
      }
    };
    timer = setInterval(() => void askAnother(), ASK_EVERY_MS);
    timer.unref();
  },
  stop() {
    clearInterval(timer);
  },
});
