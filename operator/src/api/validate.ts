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
  return parsedOf(schema.safeParse(value), root);
}

function parsedOf<T>(result: z.ZodSafeParseResult<T>, root: string): Parsed<T> {
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
  let bySchema = parsedByValue.get(value);
  if (!bySchema) {
    bySchema = new Map();
    parsedByValue.set(value, bySchema);
  }
  let parsed = bySchema.get(schema);
  if (!parsed) {
    const result = schema.safeParse(value);
    // The same result whatever root a caller names: only a failure's message carries it.
    parsed = result.success ? Object.freeze({ ok: true as const, value: deepFreeze(result.data) }) : result;
    bySchema.set(schema, parsed);
  }
  return ('ok' in parsed ? parsed : parsedOf(parsed, root)) as Parsed<z.output<S>>;
}

const parsedByValue = new WeakMap<
  object,
  Map<z.ZodType, { ok: true; value: unknown } | z.ZodSafeParseResult<unknown>>
>();

function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  Object.freeze(value);
  for (const v of Object.values(value)) deepFreeze(v);
  return value;
}
