// Commands of the demo game, shared by the lobby and match services and the chat page.
// A client sends type * 1000 + cmd (the gateway's cmdOffset); the service sees cmd.
export const LOBBY = 4;
export const MATCH = 5;

export const LobbyCmd = {
  ROLE_LIST: 1, // request -> { roles: [{ name, createdAt }] }
  CREATE_ROLE: 2, // request { name } -> { name }
  ENTER_GAME: 3, // request { name } -> { name }
  WORLD_CHAT: 4, // { text }
  PRIVATE_CHAT: 5, // request { to, text } -> { delivered: true }
  MATCH: 6, // request {} -> { queued: true }; later MATCH_FOUND
  // lobby -> client
  WORLD_MESSAGE: 10, // { from, text }
  PRIVATE_MESSAGE: 11, // { from, text }
  MATCH_FOUND: 12, // { matchId, players }
};

// lobby <-> match, direct node-to-node
export const MatchCmd = {
  REQUEST: 1, // lobby -> match { account, role, lobbyId }
  RESULT: 2, // match -> lobby, by id { account, matchId, players }
};

const enc = new TextEncoder();
const dec = new TextDecoder();
/** @param {unknown} v */
export const toJson = (v) => enc.encode(JSON.stringify(v));
/**
 * Message bodies are whatever the other side sent: callers check the fields they use.
 * @param {Uint8Array} b
 * @returns {any}
 */
export const fromJson = (b) => JSON.parse(dec.decode(b));
