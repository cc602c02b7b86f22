/**
 * Framework command numbers (docs/protocol.md, "Commands"). User commands are
 * 0 .. SYSTEM_CMD_BASE-1; everything from SYSTEM_CMD_BASE up is reserved for the framework.
 */
export const SYSTEM_CMD_BASE = 0xffff0000;

/**
 * Client routing: a client command `type * offset + sub` goes to service type `type`
 * (the `gateway.cmdOffset` default, and the SDK's `cmdOffset` default).
 */
export const DEFAULT_CMD_OFFSET = 1000;

/** Reserved node types (SPEC §2): HELLO's from_type and expect_type, a client command's target type. */
export const NodeType = {
  CLIENT: 0,
  MGR: 1,
  LOGIN: 2,
  GATEWAY: 3,
  FIRST_SERVICE: 4,
} as const;

export const Cmd = {
  // handshake + liveness (every link; a client sees AUTH, WELCOME, ERROR, PING, PONG)
  HELLO: 0xffff0001,
  CHALLENGE: 0xffff0002,
  AUTH: 0xffff0003,
  WELCOME: 0xffff0004,
  ERROR: 0xffff0005,
  PING: 0xffff0006,
  PONG: 0xffff0007,
  // a draining gateway tells its client where to move (client-messages.ts)
  GOING_AWAY: 0xffff0008,
  // membership (node <-> mgr)
  REGISTER: 0xffff0010,
  SNAPSHOT: 0xffff0011,
  JOINED: 0xffff0012,
  LEFT: 0xffff0013,
  UPDATED: 0xffff0014,
  LEAVE: 0xffff0015,
  STATUS: 0xffff0016,
  DRAIN: 0xffff0017,
  // canary routing (mgr -> member one-way; tool -> mgr requests; mgr -> gateway request)
  ROUTING_POLICIES: 0xffff0018,
  CANARY_SET: 0xffff0019,
  CANARY_ROLLBACK: 0xffff001a,
  VERSION_COUNTS: 0xffff001b,
  CANARY_CLEAR: 0xffff001c,
  // membership again: several JOINED in one frame (to members whose REGISTER asked for it)
  JOINED_BATCH: 0xffff001d,
  // relay (node <-> gateway)
  RELAY_TO_CLIENT: 0xffff0020,
  RELAY_FROM_CLIENT: 0xffff0021,
  RELAY_BROADCAST_CLIENTS: 0xffff0022,
  RELAY_TO_NODES: 0xffff0023,
  RELAY_FROM_NODE: 0xffff0024,
  ACCOUNT_ARRIVED: 0xffff0025,
  ACCOUNT_LOST: 0xffff0026,
  KICK_ACCOUNT: 0xffff0027,
  // account handoff between stateful nodes (docs/protocol.md, "Account handoff")
  ACCOUNT_HANDOFF: 0xffff0028,
  ACCOUNT_EXPORTED: 0xffff0029,
  ACCOUNT_IMPORT: 0xffff002a,
  // session handoff (gateway <-> gateway, node -> gateway; proto/xserver/v1/handoff.proto)
  HANDOFF_CLAIM: 0xffff0030,
  HANDOFF_STATE: 0xffff0031,
  HANDOFF_FORWARD: 0xffff0032,
  HANDOFF_FENCE: 0xffff0033,
  HANDOFF_DONE: 0xffff0034,
  // dashboard: member -> mgr figures (one-way); standby mgr -> active mgr data (request, tool link)
  STATS: 0xffff0038,
  DASHBOARD: 0xffff0039,
} as const;

export type CmdName = keyof typeof Cmd;

const names = new Map<number, string>(Object.entries(Cmd).map(([k, v]) => [v, k]));

/** A readable name for logs: the framework command's name, SYSTEM_0x... for an unknown reserved one, else the number. */
export function cmdName(cmd: number): string {
  return names.get(cmd) ?? (cmd >= SYSTEM_CMD_BASE ? `SYSTEM_0x${cmd.toString(16)}` : String(cmd));
}

export function isSystemCmd(cmd: number): boolean {
  return cmd >= SYSTEM_CMD_BASE;
}

/** An integer in the user range 0 .. SYSTEM_CMD_BASE-1. */
export function isUserCmd(cmd: number): boolean {
  return Number.isInteger(cmd) && cmd >= 0 && cmd < SYSTEM_CMD_BASE;
}
