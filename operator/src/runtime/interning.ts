/**
 * One copy of each short string the cache holds many times. Every watch event and list page is a
 * fresh JSON.parse, and V8 gives each string value its own copy: 4,000 clusters' statuses held
 * 12,000 copies of "Unreachable" and 4,000 of the same probe message, and every object its own
 * apiVersion, kind and namespace (7.7 MiB of a 79 MiB heap at 2,000 policies were such copies).
 */

/** Longer strings (certificates, long messages) are rarely repeated and costly to hash. */
const MAX_LENGTH = 128;

/**
 * Canonical copies, bounded: when full it starts over. The copies already handed out stay shared;
 * only later strings are compared against a new set, so the worst case is today's duplication.
 */
export class StringTable {
  private readonly table = new Map<string, string>();
  private readonly capacity: number;

  constructor(capacity = 20_000) {
    this.capacity = capacity;
  }

  intern(s: string): string {
    if (s.length > MAX_LENGTH) return s;
    const have = this.table.get(s);
    if (have !== undefined) return have;
    if (this.table.size >= this.capacity) this.table.clear();
    this.table.set(s, s);
    return s;
  }

  get size(): number {
    return this.table.size;
  }
}

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
