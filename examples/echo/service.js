// A minimal service: answers command 1 with what it got, and every few seconds asks another
// echo node for the time over a direct link. Run it with:
//   npx xserver node --entry examples/echo/service.js
import { defineService } from 'xserver';

const ECHO = 1;

export default defineService({
  type: 10,
  name: 'echo',
  start(node) {
    node.handle(ECHO, (body) => body); // returning bytes answers a request

    node.on('joined', (peer) => node.log.info({ peer: peer.id, type: peer.type }, 'peer joined'));
    node.on('left', (peer, reason) => node.log.info({ peer: peer.id, reason }, 'peer left'));

    const timer = setInterval(async () => {
      const other = node.one(node.type, { excludeId: node.id });
      if (!other) return;
      try {
        const reply = await other.request(ECHO, `hello from ${node.id.slice(0, 8)}`, { timeoutMs: 1000 });
        node.log.info({ from: other.id.slice(0, 8), reply: Buffer.from(reply).toString() }, 'echo');
      } catch (e) {
        node.log.warn({ code: e.code }, e.message);
      }
    }, 5000);
    timer.unref();
    this.timer = timer;
  },
  stop() {
    clearInterval(this.timer);
  },
});
