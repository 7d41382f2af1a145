/**
 * Runtime validation of what the operator reads. The API server has already checked new objects;
 * this catches older objects, hand-edited status and anything else that slipped past, and turns
 * it into a message a person can act on instead of a crash.
 */
import type { z } from 'zod';

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

/** `spec.standbys[0]` style paths, as the API server prints them. */
export function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, key) => {
    if (typeof key === 'number') return `${acc}[${key}]`;
    return acc ? `${acc}.${String(key)}` : String(key);
  }, '');
}

export function parseWith<S extends z.ZodType>(schema: S, value: unknown, root = ''): Parsed<z.output<S>> {
  const result = schema.safeParse(value);
  if (result.success) return { ok: true, value: result.data };
  const message = result.error.issues
    .map((issue) => {
      const path = formatPath([...(root ? [root] : []), ...issue.path]);
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join('; ');
  return { ok: false, message };
}

/**
 * parseWith, once per value. The informer replaces an object with a new one on every change, so
 * its spec and status values stand for one resourceVersion: keyed on them, a reconcile or probe
 * round of an unchanged object parses nothing (parsing was a quarter of the operator's
 * allocations). The result is shared between readers, so it is frozen: a reader that changed
 * it would change what the next one reads, and fails loudly instead.
 */
export function parseOnce<S extends z.ZodType>(schema: S, value: unknown, root = ''): Parsed<z.output<S>> {
  if (typeof value !== 'object' || value === null) return parseWith(schema, value, root);
  const bySchema = parsedByValue.get(value) ?? new Map();
  const cached = bySchema.get(schema);
  if (cached && cached.root === root) return cached.parsed as Parsed<z.output<S>>;
  const parsed = parseWith(schema, value, root);
  if (parsed.ok) deepFreeze(parsed.value);
  parsedByValue.set(value, bySchema);
  bySchema.set(schema, { root, parsed: Object.freeze(parsed) });
  return parsed;
}

const parsedByValue = new WeakMap<object, Map<z.ZodType, { root: string; parsed: Parsed<unknown> }>>();

function deepFreeze(value: unknown): void {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const v of Object.values(value)) deepFreeze(v);
}
