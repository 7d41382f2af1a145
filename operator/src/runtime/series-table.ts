/**
 * Gauges with a series per policy or per cluster, kept as one row per object that every gauge of
 * the table shares, and turned into samples only when scraped.
 *
 * prom-client keeps, for each series, an entry object, its labels object and a hash string, and
 * makes new ones on every `set`. With ~20 gauges per policy and 3 per cluster that was ~42,000
 * series at 2,000 policies: several MiB of heap that a reconcile rebuilt in part each time. Here a
 * row is one labels object and one array of numbers; a scrape builds its samples and drops them.
 */
import type { Metric, Registry } from 'prom-client';

interface Row<L extends string> {
  labels: Readonly<Record<L, string>>;
  /** By gauge slot; NaN where the gauge has no series for this object. */
  readonly values: number[];
  /** By enum slot: the current value of an enumerated gauge, or undefined. */
  readonly states: (string | undefined)[];
}

interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** What prom-client's Registry reads from a metric: its identity, `get()` and `reset()`. */
interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: 'gauge';
  readonly aggregator: 'sum';
  get(): Promise<{ name: string; help: string; type: 'gauge'; aggregator: 'sum'; values: Sample[] }>;
  reset(): void;
}

export class SeriesTable<L extends string> {
  private readonly rows = new Map<string, Row<L>>();
  private slots = 0;
  private enumSlots = 0;

  private readonly registry: Registry;
  /** Every series' label names, in exposition order. */
  private readonly labelNames: readonly L[];
  /**
   * The labels that name the object. Its other labels (a cluster's policy and region) are
   * attributes: when they change, the object's series move with it rather than stay behind.
   */
  private readonly identity: readonly L[];

  constructor(registry: Registry, labelNames: readonly L[], identity: readonly L[] = labelNames) {
    this.registry = registry;
    this.labelNames = labelNames;
    this.identity = identity;
  }

  /** A gauge with at most one series per object. Setting NaN removes the object's series. */
  gauge(name: string, help: string): TableGauge<L> {
    const slot = this.slots++;
    for (const row of this.rows.values()) row.values.push(Number.NaN);
    const gauge: TableGauge<L> = {
      ...this.family(name, help, (out) => {
        for (const row of this.rows.values()) {
          const value = row.values[slot] as number;
          if (!Number.isNaN(value)) out.push({ labels: row.labels, value });
        }
      }),
      set: (labels, value) => this.write(labels, (row) => (row.values[slot] = value), !Number.isNaN(value)),
      remove: (labels) => this.write(labels, (row) => (row.values[slot] = Number.NaN), false),
      reset: () => this.clear((row) => (row.values[slot] = Number.NaN)),
    };
    this.registry.registerMetric(gauge as unknown as Metric);
    return gauge;
  }

  /**
   * An enumerated gauge, kube-state-metrics style: one series per option under `label`, 1 for the
   * object's current value and 0 for the others.
   */
  enumGauge(name: string, help: string, label: string, options: readonly string[]): EnumGauge<L> {
    return this.stateGauge(name, help, (row, state, out) => {
      for (const option of options)
        out.push({ labels: { ...row.labels, [label]: option }, value: state === option ? 1 : 0 });
    });
  }

  /** A gauge whose one series per object names a value in `label` (which cluster is primary): 1. */
  infoGauge(name: string, help: string, label: string): EnumGauge<L> {
    return this.stateGauge(name, help, (row, state, out) =>
      out.push({ labels: { ...row.labels, [label]: state }, value: 1 }),
    );
  }

  /** Drops every series of the object `labels` name (by the identity labels): it was deleted. */
  forget(labels: Readonly<Record<string, string>>): void {
    this.rows.delete(this.identity.map((n) => labels[n]).join('\u0000'));
  }

  private stateGauge(
    name: string,
    help: string,
    samples: (row: Row<L>, state: string, out: Sample[]) => void,
  ): EnumGauge<L> {
    const slot = this.enumSlots++;
    const gauge: EnumGauge<L> = {
      ...this.family(name, help, (out) => {
        for (const row of this.rows.values()) {
          const state = row.states[slot];
          if (state !== undefined) samples(row, state, out);
        }
      }),
      set: (labels, state) => this.write(labels, (row) => (row.states[slot] = state)),
      remove: (labels) => this.write(labels, (row) => (row.states[slot] = undefined), false),
      reset: () => this.clear((row) => (row.states[slot] = undefined)),
    };
    this.registry.registerMetric(gauge as unknown as Metric);
    return gauge;
  }

  private family(name: string, help: string, collect: (out: Sample[]) => void): Family {
    return {
      name,
      help,
      type: 'gauge',
      aggregator: 'sum',
      get: async () => {
        const values: Sample[] = [];
        collect(values);
        return { name, help, type: 'gauge', aggregator: 'sum', values };
      },
      reset: () => undefined,
    };
  }

  private write(labels: Readonly<Record<L, string>>, change: (row: Row<L>) => void, create = true): void {
    const key = this.key(labels);
    let row = this.rows.get(key);
    if (!row) {
      if (!create) return;
      row = { labels: this.own(labels), values: new Array(this.slots).fill(Number.NaN), states: [] };
      this.rows.set(key, row);
    } else if (create && this.labelNames.some((n) => row?.labels[n] !== labels[n])) {
      row.labels = this.own(labels);
    }
    change(row);
    if (!create && this.empty(row)) this.rows.delete(key);
  }

  private clear(change: (row: Row<L>) => void): void {
    for (const row of [...this.rows.values()]) {
      change(row);
      if (this.empty(row)) this.rows.delete(this.key(row.labels));
    }
  }

  private empty(row: Row<L>): boolean {
    return row.values.every(Number.isNaN) && row.states.every((s) => s === undefined);
  }

  private key(labels: Readonly<Record<L, string>>): string {
    return this.identity.map((n) => labels[n]).join('\u0000');
  }

  /** A frozen copy of the series' labels only: the caller's object may carry more, or change. */
  private own(labels: Readonly<Record<L, string>>): Readonly<Record<L, string>> {
    return Object.freeze(Object.fromEntries(this.labelNames.map((n) => [n, labels[n]])) as Record<L, string>);
  }
}

export interface TableGauge<L extends string> extends Family {
  set(labels: Readonly<Record<L, string>>, value: number): void;
  remove(labels: Readonly<Record<L, string>>): void;
}

export interface EnumGauge<L extends string> extends Family {
  set(labels: Readonly<Record<L, string>>, state: string): void;
  remove(labels: Readonly<Record<L, string>>): void;
}
