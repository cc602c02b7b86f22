/**
 * Per-process metrics. One Metrics (one prom-client Registry) is created per process and passed
 * to every role running in it, so several roles in one process (e.g. `xserver up`) expose one
 * /metrics without colliding. The global prom-client registry is never used: libraries touching
 * it could not then leak metrics into ours, and tests can create fresh registries freely.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric } from 'prom-client';

export const METRIC_PREFIX = 'xserver_';

export interface MetricsOptions {
  /** Also collect Node process metrics (CPU, memory, event-loop lag, GC) as xserver_process_* etc. */
  defaultMetrics?: boolean;
  /** Labels added to every series, e.g. { cluster }. */
  defaultLabels?: Record<string, string>;
}

interface PolledSource {
  key: string;
  labels: Record<string, string>;
  read: () => number;
}

export interface PolledCounter<L extends string = string> {
  /** Adds a source of values for `labels`; returns a function that retires it (its count is kept). */
  add(labels: Partial<Record<L, string>>, read: () => number): () => void;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly polled = new Map<string, PolledCounter<string>>();

  constructor(opts: MetricsOptions = {}) {
    if (opts.defaultLabels) this.registry.setDefaultLabels(opts.defaultLabels);
    if (opts.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });
  }

  /** Content-Type of text(). */
  get contentType(): string {
    return this.registry.contentType;
  }

  counter<L extends string = string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return this.getOrCreate(name, Counter, labelNames, () => new Counter<L>({ name: full(name), help, labelNames, registers: [this.registry] }));
  }

  gauge<L extends string = string>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
    return this.getOrCreate(name, Gauge, labelNames, () => new Gauge<L>({ name: full(name), help, labelNames, registers: [this.registry] }));
  }

  /** `buckets` in seconds, prom-client defaults when absent. */
  histogram<L extends string = string>(name: string, help: string, labelNames: readonly L[] = [], buckets?: number[]): Histogram<L> {
    return this.getOrCreate(
      name,
      Histogram,
      labelNames,
      () => new Histogram<L>({ name: full(name), help, labelNames, registers: [this.registry], ...(buckets ? { buckets } : {}) }),
    );
  }

  /**
   * A counter read at scrape time from plain numbers: hot paths (a message sent) only do `n++`,
   * instead of prom-client's label hashing per call. Several sources (e.g. several nodes in one
   * process) add up per label set.
   */
  polledCounter<L extends string = string>(name: string, help: string, labelNames: readonly L[] = []): PolledCounter<L> {
    let pc = this.polled.get(full(name));
    if (!pc) {
      const sources: PolledSource[] = [];
      const retired = new Map<string, number>();
      const reported = new Map<string, number>();
      // Registered in this.registry; read only through collect().
      new Counter<L>({
        name: full(name),
        help,
        labelNames,
        registers: [this.registry],
        collect() {
          const totals = new Map<string, { labels: Record<string, string>; value: number }>(
            [...retired].map(([k, v]) => [k, { labels: JSON.parse(k) as Record<string, string>, value: v }]),
          );
          for (const s of sources) {
            const t = totals.get(s.key) ?? { labels: s.labels, value: 0 };
            t.value += s.read();
            totals.set(s.key, t);
          }
          for (const [k, t] of totals) {
            const delta = t.value - (reported.get(k) ?? 0);
            if (delta > 0) {
              this.inc(t.labels as never, delta);
              reported.set(k, t.value);
            }
          }
        },
      });
      pc = {
        add: (labels, read) => {
          const src: PolledSource = { key: JSON.stringify(labels), labels: labels as Record<string, string>, read };
          sources.push(src);
          return () => {
            const i = sources.indexOf(src);
            if (i < 0) return;
            sources.splice(i, 1);
            retired.set(src.key, (retired.get(src.key) ?? 0) + src.read());
          };
        },
      };
      this.polled.set(full(name), pc);
    }
    return pc as PolledCounter<L>;
  }

  /** Prometheus text exposition of every metric in this registry. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /**
   * Idempotent creation: code paths that run once per link/connection can call counter(...)
   * without caching the object. Asking for the same name with another kind or label set is a
   * programming error and throws rather than silently reporting under the wrong shape.
   */
  private getOrCreate<M extends Metric<string>>(
    name: string,
    kind: abstract new (...args: never[]) => M,
    labelNames: readonly string[],
    create: () => M,
  ): M {
    const existing = this.registry.getSingleMetric(full(name));
    if (existing === undefined) return create();
    const existingLabels = ((existing as unknown as { labelNames?: string[] }).labelNames ?? []).join(',');
    if (!(existing instanceof kind) || existingLabels !== [...labelNames].join(',')) {
      throw new Error(`metric ${full(name)} already exists as another kind or with labels [${existingLabels}]`);
    }
    return existing;
  }
}

function full(name: string): string {
  return name.startsWith(METRIC_PREFIX) ? name : METRIC_PREFIX + name;
}
