/**
 * One copy of each short string the cache holds many times. Every watch event and list page is a
 * fresh JSON.parse, and V8 gives each string value its own copy: 4,000 clusters' statuses held
 * 12,000 copies of "Unreachable" and 4,000 of the same probe message, and every object its own
 * apiVersion, kind and namespace (7.7 MiB of a 79 MiB heap at 2,000 policies were such copies).
 */

/** Longer strings (certificates, long messages) are rarely repeated and costly to hash. */
const MAX_LENGTH = 128;

/**
 * Canonical copies, bounded, in two generations: when the current one is full it becomes the
 * previous and a new one starts; a string found in the previous moves to the current. Strings in
 * use (reasons, messages, regions) stay canonical across turns, and one-off values (timestamps)
 * are dropped after two turns, so the table holds at most twice its capacity of dead strings.
 */
export class StringTable {
  private current = new Map<string, string>();
  private previous = new Map<string, string>();
  private readonly capacity: number;

  constructor(capacity = 10_000) {
    this.capacity = capacity;
  }

  /** The canonical copy of `s` (equal to it, so its literal type holds). */
  intern<T extends string>(s: T): T {
    if (s.length > MAX_LENGTH) return s;
    const have = this.current.get(s);
    if (have !== undefined) return have as T;
    const canonical = this.previous.get(s) ?? s;
    if (this.current.size >= this.capacity) {
      this.previous = this.current;
      this.current = new Map();
    }
    this.current.set(canonical, canonical);
    return canonical as T;
  }

  get size(): number {
    return this.current.size + this.previous.size;
  }
}

/**
 * The process's table, shared by the informers' caches and the operator's own long-lived texts
 * (a probe's failure message is the same for every cluster a region's outage cut off).
 */
export const sharedStrings = new StringTable();

/**
 * Replaces, in place, every short string inside `value` (object properties and array elements,
 * at any depth) by its canonical copy. Only values change, never keys, so no object changes shape.
 * A frozen part is left alone: it is one a parse already shares, interned when it was first cached.
 */
export function internStrings(value: object, table: StringTable): void {
  if (Object.isFrozen(value)) return;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      if (typeof v === 'string') value[i] = table.intern(v);
      else if (v !== null && typeof v === 'object') internStrings(v, table);
    }
    return;
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    const v = record[key];
    if (typeof v === 'string') record[key] = table.intern(v);
    else if (v !== null && typeof v === 'object') internStrings(v, table);
  }
}
