/**
 * AccountHandoff: a stateful node's side of moving its accounts to another node of its type when
 * it drains (SPEC §12; docs/protocol.md, "Account handoff"). The service opts in with
 * `node.onAccountExport()` (and its successor with `node.onAccountImport()`); without an export
 * hook nothing is handed off and a drained node's accounts start fresh elsewhere, as before.
 *
 *   draining node N              gateway G (holds the session)        node B (same type)
 *   ACCOUNT_HANDOFF   ───req──▶  holds the account's messages
 *                     ◀──reply─  (every earlier message was sent before this reply)
 *   waits for its running handlers of the account, export hook,
 *   state -> store (TTL, size limit)
 *   ACCOUNT_EXPORTED  ───req──▶  reallocate: compare-and-set away from N
 *                                ACCOUNT_IMPORT ───────req──────────▶ takes the state, import hook,
 *                                               ◀──────reply───────── account allocated here
 *                     ◀──reply─  AccountRebound; held messages -> B, in order
 *   forgets the account ('account-moved'), one fewer bound
 *
 * A step that fails before ACCOUNT_EXPORTED is answered leaves the account on N, served as without
 * hooks (the gateway sends it the held messages); a state that cannot be exported or imported
 * (too large, hook failed, timed out, expired) is logged and the account starts fresh on B. The
 * client is never dropped.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { AccountExportedSchema, AccountHandoffSchema, AccountImportSchema, AccountReboundSchema } from '../gen/xserver/v1/relay_pb.js';
import { XError } from '../errors.js';
import type { Link } from '../link/link.js';
import { Cmd } from '../protocol/commands.js';
import type { Frame } from '../protocol/frame.js';
import type { SessionStore } from '../store/store.js';
import { decode, encode } from '../wire/codec.js';

/** The service's export hook: the account's state, or undefined for none (it starts fresh on the next node). */
export type AccountExporter = (account: string) => Uint8Array | undefined | Promise<Uint8Array | undefined>;
/** The service's import hook: runs before the account's first message reaches this node. */
export type AccountImporter = (account: string, state: Uint8Array) => void | Promise<void>;

/** How one account's handoff ended (the xserver_node_account_handoffs_total{result} label). */
export type HandoffResult = 'moved' | 'fresh' | 'too_large' | 'export_failed' | 'import_failed' | 'kept';

/** An account bound to this node, as the relay knows it. */
export interface BoundAccount {
  gatewayId: string;
  generation: number;
}

export interface HandoffSettings {
  /** node.handoffMaxBytes */
  maxBytes: number;
  /** node.handoffStateTtlMs */
  stateTtlMs: number;
  /** node.handoffTimeoutMs */
  timeoutMs: number;
  /** node.handoffConcurrency */
  concurrency: number;
}

/** What the handoff needs from its node. */
export interface HandoffHost {
  readonly type: number;
  readonly log: Logger;
  readonly settings: HandoffSettings;
  readonly store: Pick<SessionStore, 'putHandoffState' | 'takeHandoffState'>;
  /** Accounts bound here now. */
  accounts(): string[];
  entry(account: string): BoundAccount | undefined;
  /** Resolves once none of the account's client handlers is running. */
  whenIdle(account: string): Promise<void>;
  /** A system request to a gateway; resolves to the reply body. */
  request(gatewayId: string, cmd: number, body: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
  /** The account is bound to `nodeId` now: forget it here (no account-lost). */
  release(account: string, generation: number, nodeId: string): void;
  /** The account is allocated here from now on, reached through `gatewayId`. */
  adopt(account: string, gatewayId: string, generation: number): void;
  counted(result: HandoffResult): void;
}

export class AccountHandoff {
  private exporter: AccountExporter | null = null;
  private importer: AccountImporter | null = null;
  private draining = false;
  /** Accounts waiting for a handoff slot (each at most once, bounded by the accounts bound here). */
  private readonly queued = new Set<string>();
  /** Accounts being handed off now (at most settings.concurrency). */
  private readonly running = new Set<string>();

  constructor(private readonly host: HandoffHost) {}

  setExporter(fn: AccountExporter): void {
    this.exporter = fn;
  }

  setImporter(fn: AccountImporter): void {
    this.importer = fn;
  }

  /** Handoffs in progress or waiting. */
  get inProgress(): number {
    return this.queued.size + this.running.size;
  }

  /** The node drains: with an export hook, every bound account is handed off. */
  startDraining(): void {
    if (this.draining) return;
    this.draining = true;
    if (!this.exporter) return;
    for (const a of this.host.accounts()) this.enqueue(a);
  }

  /** An account arrived here while draining (a race with the drain): it moves on too. */
  arrived(account: string): void {
    if (this.draining && this.exporter) this.enqueue(account);
  }

  private enqueue(account: string): void {
    if (this.running.has(account)) return;
    this.queued.add(account);
    this.pump();
  }

  private pump(): void {
    while (this.running.size < this.host.settings.concurrency && this.queued.size > 0) {
      const account = this.queued.values().next().value as string;
      this.queued.delete(account);
      this.running.add(account);
      void this.handOff(account).finally(() => {
        this.running.delete(account);
        this.pump();
      });
    }
  }

  /** One account through the whole sequence (see the diagram at the top). */
  private async handOff(account: string): Promise<void> {
    const { host } = this;
    const e = host.entry(account);
    if (!e) return;
    const t = host.settings.timeoutMs;
    const base = { account, generation: BigInt(e.generation), type: host.type };
    try {
      await host.request(e.gatewayId, Cmd.ACCOUNT_HANDOFF, encode(AccountHandoffSchema, base), t);
    } catch (err) {
      host.counted('kept');
      host.log.warn(
        { account, err: (err as Error).message },
        'account handoff refused by its gateway; the account stays on this node until it leaves',
      );
      return;
    }
    // The gateway holds the account now; what it sent before has arrived. Let running handlers finish.
    await within(host.whenIdle(account), t).catch(() =>
      host.log.warn({ account, timeoutMs: t }, 'a client handler of the account still runs after node.handoffTimeoutMs; exporting anyway'),
    );
    let result: HandoffResult = 'moved';
    let state: Uint8Array | undefined;
    try {
      state = await within(Promise.resolve(this.exporter!(account)), t);
    } catch (err) {
      result = 'export_failed';
      host.log.error(
        { account, err },
        `onAccountExport failed: the account starts fresh on its next node (${(err as Error)?.message ?? String(err)})`,
      );
    }
    if (state !== undefined && state.byteLength > host.settings.maxBytes) {
      const err = new XError(
        'STATE_TOO_LARGE',
        `the exported state of "${account}" is ${state.byteLength} bytes, over node.handoffMaxBytes (${host.settings.maxBytes}): the account starts fresh on its next node; export less or raise the limit`,
      );
      host.log.error({ account, code: err.code, bytes: state.byteLength, maxBytes: host.settings.maxBytes }, err.message);
      result = 'too_large';
      state = undefined;
    }
    const handoffId = randomUUID();
    if (state !== undefined) {
      try {
        await host.store.putHandoffState(account, handoffId, state, host.settings.stateTtlMs);
      } catch (err) {
        result = 'export_failed';
        state = undefined;
        host.log.error({ account, err: (err as Error).message }, 'could not store the exported state: the account starts fresh on its next node');
      }
    }
    if (state === undefined && result === 'moved') result = 'fresh';
    try {
      // The gateway reallocates and waits for the new node's import, itself bounded by t.
      const reply = await host.request(
        e.gatewayId,
        Cmd.ACCOUNT_EXPORTED,
        encode(AccountExportedSchema, { ...base, handoffId, hasState: state !== undefined }),
        2 * t,
      );
      const r = decode(AccountReboundSchema, reply);
      if (!r.imported && result === 'moved') result = 'import_failed';
      host.release(account, e.generation, r.nodeId);
      host.counted(result);
      host.log.info({ account, to: r.nodeId, result }, 'account handed off');
    } catch (err) {
      host.counted('kept');
      host.log.warn({ account, err: (err as Error).message }, 'the gateway did not rebind the account; it stays on this node until it leaves');
    }
  }

  /** ACCOUNT_IMPORT from a gateway: take the state, run the import hook, then the account is ours. */
  onImport(f: Frame, link: Link): void {
    const m = decode(AccountImportSchema, f.body);
    void this.importOne(m.account, m.handoffId, m.hasState).then((imported) => {
      this.host.adopt(m.account, m.gatewayId, Number(m.generation));
      link.reply(f, encode(AccountReboundSchema, { account: m.account, nodeId: '', imported }));
    });
  }

  /** False when there was state and it did not make it into the service. */
  private async importOne(account: string, handoffId: string, hasState: boolean): Promise<boolean> {
    if (!hasState) return true;
    const { host } = this;
    try {
      const state = await host.store.takeHandoffState(account, handoffId);
      if (state === null) {
        host.log.error(
          { account, ttlMs: host.settings.stateTtlMs },
          'the handed-off state is gone (expired: node.handoffStateTtlMs); the account starts fresh',
        );
        return false;
      }
      if (!this.importer) {
        host.log.error({ account }, 'a handed-off state arrived but this node has no onAccountImport hook; the account starts fresh');
        return false;
      }
      await within(Promise.resolve(this.importer(account, state)), host.settings.timeoutMs);
      return true;
    } catch (err) {
      host.log.error({ account, err }, `onAccountImport failed: the account starts fresh (${(err as Error)?.message ?? String(err)})`);
      return false;
    }
  }
}

/** `p`, or a TIMEOUT after `ms` (the timer is cleared either way). */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new XError('TIMEOUT', `no answer within node.handoffTimeoutMs (${ms} ms)`)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e as Error);
      },
    );
  });
}
