// Lobby (type 4, stateful per account): roles, enter game, world and private chat, matchmaking.
// Each account is allocated to one lobby at login; the gateway routes its 4xxx commands here.
import { XError, defineService } from 'xserver';
import { LobbyCmd, MATCH, MatchCmd, fromJson, toJson } from '../protocol.js';

const NAME = /^[\p{L}\p{N}_-]{2,16}$/u;

export default defineService({
  type: 'lobby',
  start(node, { store }) {
    node.enableRelay();
    /** @type {Map<string, string>} account -> role name, for accounts in game on this lobby */
    const online = new Map();
    // The role in game is also kept in the store, so that when a lobby dies and the gateway moves
    // its accounts to another one, the players stay in game there (the client notices nothing).
    /** @param {string} account */
    const inGameKey = (account) => `in-game:${account}`;

    /** @param {import('xserver').ClientContext} ctx */
    const roleOf = async (ctx) => {
      const name = online.get(ctx.account);
      if (name) return name;
      const stored = await store.kvGet(inGameKey(ctx.account));
      if (!stored) throw new XError('BAD_REQUEST', 'enter the game with a role first');
      online.set(ctx.account, stored);
      node.setOverload(0, online.size);
      return stored;
    };

    node.handleClient(LobbyCmd.ROLE_LIST, async (_data, ctx) => {
      const roles = Object.values(await store.hashGetAll(`roles:${ctx.account}`)).map((r) => JSON.parse(r));
      return toJson({ roles });
    });

    node.handleClient(LobbyCmd.CREATE_ROLE, async (data, ctx) => {
      const { name } = fromJson(data);
      if (typeof name !== 'string' || !NAME.test(name)) throw new XError('BAD_REQUEST', 'a role name is 2-16 letters, digits, _ or -');
      // Names are unique across the cluster: claimed atomically in the store.
      if (!(await store.kvSetIfAbsent(`role-name:${name}`, ctx.account))) throw new XError('ACCOUNT_EXISTS', `the name "${name}" is taken`);
      await store.hashSet(`roles:${ctx.account}`, name, JSON.stringify({ name, createdAt: Date.now() }));
      return toJson({ name });
    });

    node.handleClient(LobbyCmd.ENTER_GAME, async (data, ctx) => {
      const { name } = fromJson(data);
      if ((await store.kvGet(`role-name:${name}`)) !== ctx.account) throw new XError('BAD_REQUEST', `no role "${name}" on this account`);
      await store.kvSet(inGameKey(ctx.account), name);
      online.set(ctx.account, name);
      node.setOverload(0, online.size);
      return toJson({ name });
    });

    node.handleClient(LobbyCmd.WORLD_CHAT, async (data, ctx) => {
      const { text } = fromJson(data);
      const from = await roleOf(ctx);
      node.broadcastToClients(LobbyCmd.WORLD_MESSAGE, toJson({ from, text: String(text).slice(0, 500) }));
    });

    node.handleClient(LobbyCmd.PRIVATE_CHAT, async (data, ctx) => {
      const { to, text } = fromJson(data);
      const from = await roleOf(ctx);
      // The target may be on another lobby and another gateway: find its account, then its gateway.
      const account = await store.kvGet(`role-name:${to}`);
      if (!account) throw new XError('NO_TARGET', `no role named "${to}"`);
      if (
        !(await store.getPresence(account)) ||
        !node.sendToClient(account, LobbyCmd.PRIVATE_MESSAGE, toJson({ from, text: String(text).slice(0, 500) }))
      ) {
        throw new XError('NO_TARGET', `${to} is not online`);
      }
      return toJson({ delivered: true });
    });

    node.handleClient(LobbyCmd.MATCH, async (_data, ctx) => {
      const role = await roleOf(ctx);
      if (!node.sendOne(MATCH, MatchCmd.REQUEST, toJson({ account: ctx.account, role }))) {
        throw new XError('NO_TARGET', 'no match service is running');
      }
      return toJson({ queued: true });
    });

    // The match service answers by id, over the direct link.
    node.handle(MatchCmd.RESULT, (data) => {
      const r = fromJson(data);
      node.sendToClient(r.account, LobbyCmd.MATCH_FOUND, toJson({ matchId: r.matchId, players: r.players }));
    });

    node.onAccountLost((account) => {
      online.delete(account);
      node.setOverload(0, online.size);
      node.log.info({ account }, 'account lost: its client is gone for good');
      store.kvDelete(inGameKey(account)).catch((e) => node.log.warn({ account, err: e.message }, 'could not clear the role in game'));
    });
  },
});
