/**
 * Who may send which framework command to a node (docs/protocol.md, "Authorization"). Knowing the
 * cluster secret makes a process a peer; it does not make it a gateway. A framework command is
 * obeyed only from a link whose claimed id is a registered member of the cluster with the claimed
 * type, and only when that type may send it:
 *
 *   command                                   sender
 *   RELAY_FROM_CLIENT, RELAY_FROM_NODE,       a gateway (type 3)
 *   ACCOUNT_ARRIVED, ACCOUNT_LOST,
 *   KICK_ACCOUNT, ACCOUNT_IMPORT,
 *   HANDOFF_CLAIM, HANDOFF_STATE,
 *   HANDOFF_FORWARD, HANDOFF_DONE
 *   RELAY_TO_CLIENT, RELAY_BROADCAST_CLIENTS, a service node (type >= 4)
 *   RELAY_TO_NODES, ACCOUNT_HANDOFF,
 *   ACCOUNT_EXPORTED, HANDOFF_FENCE
 *
 * Anything else (a tool, an unregistered id, a service forging ACCOUNT_LOST) is FORBIDDEN: the
 * link is closed, counted and logged. User commands (below SYSTEM_CMD_BASE) may come from any
 * member type, but also only from a listed member: a node the mgr evicted (LEFT) is not served,
 * whatever it still believes. Other system commands keep their own handling (PING is the link's;
 * an unknown one is UNKNOWN_COMMAND).
 */
import type { Link, LinkIdentity } from '../link/link.js';
import { Cmd, NodeType, SYSTEM_CMD_BASE, cmdName } from '../protocol/commands.js';
import type { Frame } from '../protocol/frame.js';

export type SenderRule = 'gateway' | 'service';

const FROM_GATEWAY: readonly number[] = [
  Cmd.RELAY_FROM_CLIENT,
  Cmd.RELAY_FROM_NODE,
  Cmd.ACCOUNT_ARRIVED,
  Cmd.ACCOUNT_LOST,
  Cmd.KICK_ACCOUNT,
  Cmd.ACCOUNT_IMPORT,
  Cmd.HANDOFF_CLAIM,
  Cmd.HANDOFF_STATE,
  Cmd.HANDOFF_FORWARD,
  Cmd.HANDOFF_DONE,
];
const FROM_SERVICE: readonly number[] = [
  Cmd.RELAY_TO_CLIENT,
  Cmd.RELAY_BROADCAST_CLIENTS,
  Cmd.RELAY_TO_NODES,
  Cmd.ACCOUNT_HANDOFF,
  Cmd.ACCOUNT_EXPORTED,
  Cmd.HANDOFF_FENCE,
];

/** The one table: framework command -> who may send it. */
export const SYSTEM_SENDERS: ReadonlyMap<number, SenderRule> = new Map<number, SenderRule>([
  ...FROM_GATEWAY.map((c) => [c, 'gateway'] as const),
  ...FROM_SERVICE.map((c) => [c, 'service'] as const),
]);

/** True when `cmd` is obeyed only from a listed member: the table's commands and every user command. */
export function needsListedSender(cmd: number): boolean {
  return cmd < SYSTEM_CMD_BASE || SYSTEM_SENDERS.has(cmd);
}

/** True when a member of `type` may send `cmd` (commands outside the table are not this table's to judge). */
export function typeMaySend(cmd: number, type: number): boolean {
  const rule = SYSTEM_SENDERS.get(cmd);
  if (rule === undefined) return true;
  return rule === 'gateway' ? type === NodeType.GATEWAY : type >= NodeType.FIRST_SERVICE;
}

/** What the gate needs from its node. */
export interface GateHost {
  /** True when the link's remote is a listed member of its claimed type (and key). */
  isMember(remote: LinkIdentity): boolean;
  /** Hands an authorized frame to its handler. */
  deliver(f: Frame, link: Link): void;
  /** Closes `link` with FORBIDDEN (counted and logged by the host). */
  forbid(link: Link, cmd: number, why: string): void;
}

/**
 * Applies SYSTEM_SENDERS to the framework frames a node receives, and the listed-member rule to
 * its user frames. A peer's direct link may
 * deliver its first frames before the mgr's JOINED for it arrives here (two links, no order
 * between them), so frames from a claimed member not listed yet are held, in order, for up to
 * `holdMs` (at most `maxHeld` of them), delivered when its JOINED arrives, and refused otherwise.
 */
export class SystemFrameGate {
  private readonly held = new Map<Link, { frames: Frame[]; timer: ReturnType<typeof setTimeout> }>();
  /**
   * Links already found to be listed members: relay frames are the hot path, so the membership
   * lookup runs once per link. A member that leaves has its link closed (after a graceful LEFT, once
   * it has sent what it still had), which ends the entry.
   */
  private readonly listed = new WeakSet<Link>();

  constructor(
    private readonly host: GateHost,
    private readonly holdMs: number,
    private readonly maxHeld: number,
  ) {}

  /** Frames waiting for their sender's JOINED. */
  get heldCount(): number {
    let n = 0;
    for (const h of this.held.values()) n += h.frames.length;
    return n;
  }

  receive(f: Frame, link: Link): void {
    if (!needsListedSender(f.cmd)) return this.host.deliver(f, link);
    const { id, type } = link.remote;
    if (!typeMaySend(f.cmd, type)) return this.refuse(link, f.cmd, `type ${type} may not send ${cmdName(f.cmd)}`);
    if (this.listed.has(link)) return this.host.deliver(f, link);
    const h = this.held.get(link);
    if (h) {
      if (h.frames.length >= this.maxHeld) return this.refuse(link, f.cmd, `${id} is not a registered member (${this.maxHeld} frames held)`);
      h.frames.push({ ...f, body: f.body.slice() }); // the body is a view into a socket chunk
      return;
    }
    if (this.host.isMember(link.remote)) {
      this.listed.add(link);
      return this.host.deliver(f, link);
    }
    const timer = setTimeout(() => this.refuse(link, f.cmd, `${id} (type ${type}) is not a registered member`), this.holdMs);
    this.held.set(link, { frames: [{ ...f, body: f.body.slice() }], timer });
  }

  /** A member was listed: its held frames go to their handlers, in order. */
  memberJoined(id: string): void {
    for (const [link, h] of this.held) {
      if (link.remote.id !== id || !this.host.isMember(link.remote)) continue;
      clearTimeout(h.timer);
      this.held.delete(link);
      this.listed.add(link);
      if (link.isOpen) for (const f of h.frames) this.host.deliver(f, link);
    }
  }

  stop(): void {
    for (const h of this.held.values()) clearTimeout(h.timer);
    this.held.clear();
  }

  private refuse(link: Link, cmd: number, why: string): void {
    const h = this.held.get(link);
    if (h) clearTimeout(h.timer);
    this.held.delete(link);
    if (link.isOpen) this.host.forbid(link, cmd, why);
  }
}
