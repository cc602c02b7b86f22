// Match (type 5, stateless): pairs players sent by lobbies; answers each lobby by id.
// A player waiting alone for `BOT_AFTER_MS` is matched with a bot.
import { defineService } from 'xserver';
import { MatchRequest, MatchResult } from '../contracts.js';

const BOT_AFTER_MS = 3000;
const MAX_WAITING = 10_000;

/** A player waiting for a match. */
interface Waiting {
  account: string;
  role: string;
  /** The lobby that queued the player. */
  lobbyId: string;
  since: number;
}

/** A bot has only a role. */
type Player = Waiting | { role: 'bot'; account?: undefined; lobbyId?: undefined };

let timer: ReturnType<typeof setInterval> | undefined;

export default defineService({
  type: 'match',
  start(node) {
    /** players waiting, oldest first */
    const waiting: Waiting[] = [];
    let seq = 0;

    const announce = (players: Player[]): void => {
      const matchId = `${node.id.slice(0, 8)}-${++seq}`;
      const names = players.map((p) => p.role);
      node.log.debug({ matchId, players: names }, 'match found');
      for (const p of players) {
        if (!p.account) continue; // a bot
        // sendById()/sendOne() take bytes: the contract's codec makes them.
        const result = MatchResult.request.encode({ account: p.account, matchId, players: names });
        // The lobby that queued the player may have died meanwhile (its accounts moved to another
        // lobby): any lobby can reach the player's client.
        if (!node.sendById(p.lobbyId, MatchResult.cmd, result)) node.sendOne(MatchResult.type, MatchResult.cmd, result);
      }
    };

    node.handle(MatchRequest, ({ account, role }, ctx) => {
      const p: Waiting = { account, role, lobbyId: ctx.fromId, since: Date.now() };
      const other = waiting.findIndex((w) => w.account !== p.account);
      if (other >= 0) {
        const [o] = waiting.splice(other, 1);
        announce([o, p]);
      } else if (waiting.length < MAX_WAITING && !waiting.some((w) => w.account === p.account)) {
        waiting.push(p);
        node.log.debug({ account: p.account, lobby: p.lobbyId, waiting: waiting.length }, 'player queued');
      }
    });

    timer = setInterval(() => {
      const now = Date.now();
      for (let first = waiting[0]; first && now - first.since >= BOT_AFTER_MS; first = waiting[0]) {
        waiting.shift();
        announce([first, { role: 'bot' }]);
      }
    }, 250);
    timer.unref();
  },
  stop() {
    clearInterval(timer);
  },
});
