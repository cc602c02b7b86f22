// The commands of the demo game, each declared once and imported by every side that speaks it:
// the lobby and match services, the chat page (examples/chat) and the end-to-end tests. A client
// sends type * 1000 + cmd (the gateway's cmdOffset); the service sees cmd. Browser-safe: only
// 'xserver/client', which the chat page loads from the login service's /sdk/.
import { command, contractSet, empty, jsonCodec } from 'xserver/client';

/** The service types of the demo (the `types` config map names them lobby and match). */
export const LOBBY = 4;
export const MATCH = 5;
/** The echo service of examples/echo. */
export const ECHO = 10;

export interface Role {
  name: string;
  /** Milliseconds since the epoch. */
  createdAt: number;
}

/** A chat line as clients see it: the sender's role and the text (at most 500 characters). */
export interface ChatLine {
  from: string;
  text: string;
}

// ---------------------------------------------------------------- client -> lobby

/** The roles of the caller's account. The request body is ignored. */
export const RoleList = command({ type: LOBBY, cmd: 1, name: 'lobby.roleList', request: empty, response: jsonCodec<{ roles: Role[] }>('roles@1') });

/** Creates a role; names are unique across the cluster (ACCOUNT_EXISTS when taken). */
export const CreateRole = command({
  type: LOBBY,
  cmd: 2,
  name: 'lobby.createRole',
  request: jsonCodec<{ name: string }>('roleName@1'),
  response: jsonCodec<{ name: string }>('roleName@1'),
});

/** Enters the game with one of the account's roles: needed before chat and matchmaking. */
export const EnterGame = command({
  type: LOBBY,
  cmd: 3,
  name: 'lobby.enterGame',
  request: jsonCodec<{ name: string }>('roleName@1'),
  response: jsonCodec<{ name: string }>('roleName@1'),
});

/** One-way: a line to every client on every gateway (WorldMessage). */
export const WorldChat = command({ type: LOBBY, cmd: 4, name: 'lobby.worldChat', request: jsonCodec<{ text: string }>('text@1') });

/** A line to one role, wherever its client is (PrivateMessage); NO_TARGET when it is not online. */
export const PrivateChat = command({
  type: LOBBY,
  cmd: 5,
  name: 'lobby.privateChat',
  request: jsonCodec<{ to: string; text: string }>('privateChat@1'),
  response: jsonCodec<{ delivered: true }>('delivered@1'),
});

/** Queues the caller's role for a match; MatchFound follows. The request body is ignored. */
export const FindMatch = command({ type: LOBBY, cmd: 6, name: 'lobby.findMatch', request: empty, response: jsonCodec<{ queued: true }>('queued@1') });

// ---------------------------------------------------------------- lobby -> client (pushed)

export const WorldMessage = command({ type: LOBBY, cmd: 10, name: 'lobby.worldMessage', request: jsonCodec<ChatLine>('chatLine@1') });
export const PrivateMessage = command({ type: LOBBY, cmd: 11, name: 'lobby.privateMessage', request: jsonCodec<ChatLine>('chatLine@1') });
/** `players`: the role names of the match, a bot as "bot". */
export const MatchFound = command({
  type: LOBBY,
  cmd: 12,
  name: 'lobby.matchFound',
  request: jsonCodec<{ matchId: string; players: string[] }>('matchFound@1'),
});

/**
 * What the lobby serves to clients and what a client of the lobby uses (the service's `contracts`,
 * the SDK's `contracts` option): the gateway refuses a client built with other ones
 * (CONTRACT_MISMATCH). The node-to-node commands below are not in it: clients never send them.
 */
export const lobbyContracts = contractSet(
  RoleList,
  CreateRole,
  EnterGame,
  WorldChat,
  PrivateChat,
  FindMatch,
  WorldMessage,
  PrivateMessage,
  MatchFound,
);

// ---------------------------------------------------------------- lobby <-> match, node to node

/** One-way, lobby -> one match node: queue this player. The match node adds the lobby's id. */
export const MatchRequest = command({
  type: MATCH,
  cmd: 1,
  name: 'match.request',
  request: jsonCodec<{ account: string; role: string }>('matchRequest@1'),
});

/** One-way, match -> the lobby that queued the player (or any lobby, if that one is gone). */
export const MatchResult = command({
  type: LOBBY,
  cmd: 2,
  name: 'lobby.matchResult',
  request: jsonCodec<{ account: string; matchId: string; players: string[] }>('matchResult@1'),
});

// ---------------------------------------------------------------- echo

/** Answers with what it got: a client's request, or another echo node's over the direct link. */
export const Echo = command({
  type: ECHO,
  cmd: 1,
  name: 'echo.echo',
  request: jsonCodec<{ text: string }>('text@1'),
  response: jsonCodec<{ text: string }>('text@1'),
});
