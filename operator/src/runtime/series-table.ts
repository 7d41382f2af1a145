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

/** One series of a family, made by what reads it: a sample for prom-client, or a line of text. */
type Series = Sample | string;
type Line<L extends string> = (
  labels: Readonly<Record<L, string>>,
  extra: readonly [name: string, value: string] | undefined,
  value: number,
) => Series;

/** What prom-client's Registry reads from a metric: its identity, `get()` and `reset()`. */
interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: 'gauge';
  readonly aggregator: 'sum';
  get(): Promise<{ name: string; help: string; type: 'gauge'; aggregator: 'sum'; values: Sample[] }>;
  reset(): void;
  /**
   * The family's exposition text as prom-client writes it, in pieces of about `chunk` characters,
   * of the rows as they were when it began (a scrape waits for the socket between pieces).
   */
  text(chunk?: number): Iterable<string>;
}

/** A family that can write its own exposition text without a sample object per series. */
export const writesOwnText = (metric: object): metric is Pick<Family, 'text'> =>
  typeof (metric as Partial<Family>).text === 'function';

// prom-client's escaping: a backslash and a newline in HELP and label values, a quote in values.
const escapeHelp = (s: string) => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const escapeValue = (s: string) => (/[\\\n"]/.test(s) ? escapeHelp(s).replace(/"/g, '\\"') : s);
/** As prom-client's getValueAsString. */
const valueText = (v: number) =>
  Number.isNaN(v) ? 'Nan' : Number.isFinite(v) ? `${v}` : v < 0 ? '-Inf' : '+Inf';

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
      ...this.family(name, help, function* (row, line) {
        const value = row.values[slot] as number;
        if (!Number.isNaN(value)) yield line(row.labels, undefined, value);
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
    return this.stateGauge(name, help, function* (row, state, line) {
      for (const option of options) yield line(row.labels, [label, option], state === option ? 1 : 0);
    });
  }

  /** A gauge whose one series per object names a value in `label` (which cluster is primary): 1. */
  infoGauge(name: string, help: string, label: string): EnumGauge<L> {
    return this.stateGauge(name, help, function* (row, state, line) {
      yield line(row.labels, [label, state], 1);
    });
  }

  /** Drops every series of the object `labels` name (by the identity labels): it was deleted. */
  forget(labels: Readonly<Record<string, string>>): void {
    this.rows.delete(this.identity.map((n) => labels[n]).join('\u0000'));
  }

  private stateGauge(
    name: string,
    help: string,
    series: (row: Row<L>, state: string, line: Line<L>) => Iterable<Series>,
  ): EnumGauge<L> {
    const slot = this.enumSlots++;
    const gauge: EnumGauge<L> = {
      ...this.family(name, help, function* (row, line) {
        const state = row.states[slot];
        if (state !== undefined) yield* series(row, state, line);
      }),
      set: (labels, state) => this.write(labels, (row) => (row.states[slot] = state)),
      remove: (labels) => this.write(labels, (row) => (row.states[slot] = undefined), false),
      reset: () => this.clear((row) => (row.states[slot] = undefined)),
    };
    this.registry.registerMetric(gauge as unknown as Metric);
    return gauge;
  }

  /**
   * A family from its series: prom-client's `get()` makes a sample of each, `text()` writes each
   * line straight into the exposition (a full scrape at 2,000 policies is ~42,000 lines: as
   * samples, their labels and prom-client's pieces of each line, ~20 MiB of RSS at once).
   */
  private family(
    name: string,
    help: string,
    seriesOf: (row: Row<L>, line: Line<L>) => Iterable<Series>,
  ): Family {
    const { labelNames, rows } = this;
    // Of the rows as they were when it began: a scrape waits for the socket between pieces.
    const series = function* (line: Line<L>) {
      for (const row of [...rows.values()]) yield* seriesOf(row, line);
    };
    return {
      name,
      help,
      type: 'gauge',
      aggregator: 'sum',
      get: async () => {
        const sample: Line<L> = (labels, extra, value) => ({
          labels: extra ? { ...labels, [extra[0]]: extra[1] } : labels,
          value,
        });
        const values = [...series(sample)] as Sample[];
        return { name, help, type: 'gauge', aggregator: 'sum', values };
      },
      reset: () => undefined,
      *text(chunk = 65_536) {
        const text: Line<L> = (labels, extra, value) => {
          let pairs = '';
          for (const n of labelNames) pairs += `${pairs ? ',' : ''}${n}="${escapeValue(labels[n])}"`;
          if (extra) pairs += `${pairs ? ',' : ''}${extra[0]}="${escapeValue(extra[1])}"`;
          return `\n${name}${pairs ? `{${pairs}}` : ''} ${valueText(value)}`;
        };
        let out = `# HELP ${escapeHelp(name)} ${escapeHelp(help)}\n# TYPE ${escapeHelp(name)} gauge`;
        for (const line of series(text)) {
          out += line as string;
          if (out.length >= chunk) {
            yield out;
            out = '';
          }
        }
        if (out) yield out;
      },
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
