// Match (type 5, stateless): pairs players sent by lobbies; answers each lobby by id.
// A player waiting alone for `BOT_AFTER_MS` is matched with a bot.
import { defineService } from 'xserver';
import { LOBBY, MatchCmd, fromJson, toJson } from '../protocol.js';

const BOT_AFTER_MS = 3000;
const MAX_WAITING = 10_000;

/**
 * A player in a match; a bot has only a role.
 * @typedef {{ account?: string, role?: string, lobbyId?: string, since?: number }} Player
 */

/** @type {ReturnType<typeof setInterval> | undefined} */
let timer;

export default defineService({
  type: 'match',
  start(node) {
    /** @type {Required<Player>[]} players waiting, oldest first */
    const waiting = [];
    let seq = 0;

    /** @param {Player[]} players */
    const announce = (players) => {
      const matchId = `${node.id.slice(0, 8)}-${++seq}`;
      const names = players.map((p) => p.role ?? 'bot');
      node.log.debug({ matchId, players: names }, 'match found');
      for (const p of players) {
        if (!p.account) continue; // a bot
        const result = toJson({ account: p.account, matchId, players: names });
        // The lobby that queued the player may have died meanwhile (its accounts moved to another
        // lobby): any lobby can reach the player's client.
        if (!p.lobbyId || !node.sendById(p.lobbyId, MatchCmd.RESULT, result)) node.sendOne(LOBBY, MatchCmd.RESULT, result);
      }
    };

    node.handle(MatchCmd.REQUEST, (data, ctx) => {
      /** @type {Required<Player>} */
      const p = { ...fromJson(data), lobbyId: ctx.fromId, since: Date.now() };
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
