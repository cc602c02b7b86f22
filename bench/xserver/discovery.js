// xserver membership (discovery scenario): an mgr process, an observer ClusterNode that reports
// 'joined'/'left' of the measured nodes, and each measured node as its own process. A node's
// ClusterNode id is a random UUID, so the harness's nodeId travels as the node's type name.
// Heartbeat 1 s / timeout 3 s are the defaults (link.heartbeatIntervalMs / heartbeatTimeoutMs):
// kill -9 closes the node's mgr link at once (LEFT lost); SIGSTOP is noticed by the mgr's heartbeat
// check (LEFT timeout).
import { roleContext, startMgr, ClusterNode, T_ECHO, T_CALLER } from './_common.js';

export default {
  name: 'xserver',
  scenario: 'discovery',
  needs: ['redis'],

  async server(opts) {
    const mgr = await startMgr(roleContext(opts));
    return { instanceId: mgr.instanceId };
  },

  async observer(opts, ctx) {
    const rctx = roleContext(opts);
    await rctx.store.ready(5000);
    const node = new ClusterNode(rctx, { type: T_CALLER, name: 'observer' });
    node.on('joined', (p) => p.type === T_ECHO && ctx.emit({ type: 'up', node: p.name }));
    node.on('left', (p, reason) => p.type === T_ECHO && ctx.emit({ type: 'down', node: p.name, reason }));
    await node.start();
    await node.ready();
    return { id: node.id };
  },

  async node(opts) {
    const rctx = roleContext(opts);
    const node = new ClusterNode(rctx, { type: T_ECHO, name: opts.nodeId });
    await node.start();
    await node.ready();
    return { id: node.id };
  },
};
