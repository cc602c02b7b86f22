// A minimal service: answers command 1 with what it got, and every few seconds asks another
// echo node for the time over a direct link. Run it with:
//   npx xserver node --entry examples/echo/service.js
import { defineService, isXError } from 'xserver';

const ECHO = 1;

/** @type {ReturnType<typeof setInterval> | undefined} */
let timer;

export default defineService({
  type: 10,
  name: 'echo',
  start(node) {
    node.handle(ECHO, (body) => body); // returning bytes answers a request

    node.on('joined', (peer) => node.log.info({ peer: peer.id, type: peer.type }, 'peer joined'));
    node.on('left', (peer, reason) => node.log.info({ peer: peer.id, reason }, 'peer left'));

    // Never rejects: a failed request is logged, so the timer can ignore the promise.
    const askAnother = async () => {
      const other = node.one(node.type, { excludeId: node.id });
      if (!other) return;
      try {
        const reply = await other.request(ECHO, `hello from ${node.id.slice(0, 8)}`, { timeoutMs: 1000 });
        node.log.info({ from: other.id.slice(0, 8), reply: Buffer.from(reply).toString() }, 'echo');
      } catch (e) {
        if (isXError(e)) node.log.warn({ code: e.code }, e.message);
        else node.log.warn({ err: e }, 'echo request failed');
      }
    };
    timer = setInterval(() => void askAnother(), 5000);
    timer.unref();
  },
  stop() {
    clearInterval(timer);
  },
});
