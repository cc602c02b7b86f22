// The game service: one node type whose handlers are typed by the contracts. Scores live in this
// process (a real game keeps them in a store): enough to see a request, a reply and a push.
import { defineService } from 'xserver';
import { AddScore, GAME, Milestone, Top, contracts, type Player } from './contracts.js';

/** Most players kept; a bounded map, like everything a service holds per client. */
const MAX_PLAYERS = 10_000;

export default defineService({
  type: GAME,
  name: 'game',
  contracts,
  start(node) {
    const scores = new Map<string, number>();
    node.enableRelay();
    node.handleClient(AddScore, ({ points }, ctx): Player => {
      if (!Number.isInteger(points) || points < 0 || points > 1000) throw new RangeError('points must be an integer in 0..1000');
      if (!scores.has(ctx.account) && scores.size >= MAX_PLAYERS) throw new RangeError('too many players');
      const before = scores.get(ctx.account) ?? 0;
      const score = before + points;
      scores.set(ctx.account, score);
      if (before < 100 && score >= 100) node.sendToClient(ctx.account, Milestone, { score });
      return { name: ctx.account, score };
    });
    node.handleClient(Top, ({ limit }) =>
      [...scores]
        .map(([name, score]) => ({ name, score }))
        .sort((a, b) => b.score - a.score)
        .slice(0, Math.max(0, Math.min(100, limit))),
    );
    node.onAccountLost((account) => node.log.info({ account }, 'player left'));
  },
});
