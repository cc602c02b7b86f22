// Lobby (type 4, stateful per account): roles, enter game, world and private chat, matchmaking.
// Each account is allocated to one lobby at login; the gateway routes its 4xxx commands here.
// The commands are the contracts of ../contracts.ts: the handlers get decoded requests and return
// the responses, the contracts' codecs do the bytes.
import { XError, defineService, jsonCodec, type ClientContext } from 'xserver';
import {
  CreateRole,
  EnterGame,
  FindMatch,
  MatchFound,
  MatchRequest,
  MatchResult,
  PrivateChat,
  PrivateMessage,
  RoleList,
  WorldChat,
  WorldMessage,
  lobbyContracts,
  type Role,
} from '../contracts.js';

/** What a lobby hands the next one for an account it drains: the role the account plays. */
const InGame = jsonCodec<{ role: string }>('lobby.inGame@1');

const NAME = /^[\p{L}\p{N}_-]{2,16}$/u;
/** Longest chat line passed on; the rest is cut. */
const MAX_TEXT = 500;

export default defineService({
  type: 'lobby',
  contracts: lobbyContracts,
  start(node, { store }) {
    node.enableRelay();
    /** account -> role name, for accounts in game on this lobby */
    const online = new Map<string, string>();
    // The role in game is also kept in the store, so that when a lobby dies and the gateway moves
    // its accounts to another one, the players stay in game there (the client notices nothing).
    const inGameKey = (account: string): string => `in-game:${account}`;

    // Account handoff: when this lobby drains (a rolling upgrade, `xserver drain`), each account's
    // role in game moves to the lobby the gateway re-binds it to, before its next message there.
    node.onAccountExport(InGame, (account) => {
      const role = online.get(account);
      return role === undefined ? undefined : { role };
    });
    node.onAccountImport(InGame, (account, { role }) => {
      online.set(account, role);
      node.setOverload(0, online.size);
    });
    node.on('account-moved', (account) => {
      online.delete(account);
      node.setOverload(0, online.size);
    });

    const roleOf = async (ctx: ClientContext): Promise<string> => {
      const name = online.get(ctx.account);
      if (name) return name;
      const stored = await store.kvGet(inGameKey(ctx.account));
      if (!stored) throw new XError('BAD_REQUEST', 'enter the game with a role first');
      online.set(ctx.account, stored);
      node.setOverload(0, online.size);
      return stored;
    };

    node.handleClient(RoleList, async (_req, ctx) => {
      const roles = Object.values(await store.hashGetAll(`roles:${ctx.account}`)).map((r) => JSON.parse(r) as Role);
      return { roles };
    });

    node.handleClient(CreateRole, async ({ name }, ctx) => {
      if (typeof name !== 'string' || !NAME.test(name)) throw new XError('BAD_REQUEST', 'a role name is 2-16 letters, digits, _ or -');
      // Names are unique across the cluster: claimed atomically in the store.
      if (!(await store.kvSetIfAbsent(`role-name:${name}`, ctx.account))) throw new XError('ACCOUNT_EXISTS', `the name "${name}" is taken`);
      const role: Role = { name, createdAt: Date.now() };
      await store.hashSet(`roles:${ctx.account}`, name, JSON.stringify(role));
      return { name };
    });

    node.handleClient(EnterGame, async ({ name }, ctx) => {
      if ((await store.kvGet(`role-name:${name}`)) !== ctx.account) throw new XError('BAD_REQUEST', `no role "${name}" on this account`);
      await store.kvSet(inGameKey(ctx.account), name);
      online.set(ctx.account, name);
      node.setOverload(0, online.size);
      return { name };
    });

    node.handleClient(WorldChat, async ({ text }, ctx) => {
      const from = await roleOf(ctx);
      node.broadcastToClients(WorldMessage, { from, text: String(text).slice(0, MAX_TEXT) });
    });

    node.handleClient(PrivateChat, async ({ to, text }, ctx) => {
      const from = await roleOf(ctx);
      // The target may be on another lobby and another gateway: find its account, then its gateway.
      const account = await store.kvGet(`role-name:${to}`);
      if (!account) throw new XError('NO_TARGET', `no role named "${to}"`);
      if (!(await store.getPresence(account)) || !node.sendToClient(account, PrivateMessage, { from, text: String(text).slice(0, MAX_TEXT) })) {
        throw new XError('NO_TARGET', `${to} is not online`);
      }
      return { delivered: true } as const;
    });

    node.handleClient(FindMatch, async (_req, ctx) => {
      const role = await roleOf(ctx);
      // sendOne() takes bytes: the contract's codec makes them (one-way, so no reply to wait for).
      if (!node.sendOne(MatchRequest.type, MatchRequest.cmd, MatchRequest.request.encode({ account: ctx.account, role }))) {
        throw new XError('NO_TARGET', 'no match service is running');
      }
      return { queued: true } as const;
    });

    // The match service answers by id, over the direct link (node.handle: node-to-node commands,
    // apart from the client commands of handleClient).
    node.handle(MatchResult, ({ account, matchId, players }) => {
      node.sendToClient(account, MatchFound, { matchId, players });
    });

    node.onAccountLost((account) => {
      online.delete(account);
      node.setOverload(0, online.size);
      node.log.info({ account }, 'account lost: its client is gone for good');
      store.kvDelete(inGameKey(account)).catch((e: Error) => node.log.warn({ account, err: e.message }, 'could not clear the role in game'));
    });
  },
});
