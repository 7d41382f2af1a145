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
 * parseWith, once per value. The informer replaces an object with a new one on every change,
 * keeping only a spec that did not change, so a status value stands for one resourceVersion and a
 * spec value for one unchanged spec: keyed on them, a reconcile or probe round of an unchanged
 * object parses nothing (parsing was a quarter of the operator's allocations). The result is
 * shared between readers, so it is frozen: a reader that changed it would change what the next
 * one reads, and fails loudly instead.
 */
export function parseOnce<S extends z.ZodType>(schema: S, value: unknown, root = ''): Parsed<z.output<S>> {
  if (typeof value !== 'object' || value === null) return parseWith(schema, value, root);
  const known = parsedByValue.get(value);
  let parsed = known instanceof Map ? known.get(schema) : known?.schema === schema ? known.parsed : undefined;
  if (!parsed) {
    const result = schema.safeParse(value);
    // The same result whatever root a caller names: only a failure's message carries it.
    parsed = result.success
      ? Object.freeze({ ok: true as const, value: deepFreeze(shared(result.data, value) as z.output<S>) })
      : result;
    if (!known) parsedByValue.set(value, { schema, parsed });
    else if (known instanceof Map) known.set(schema, parsed);
    else
      parsedByValue.set(
        value,
        new Map([
          [known.schema, known.parsed],
          [schema, parsed],
        ]),
      );
  }
  return ('ok' in parsed ? parsed : parsedOf(parsed, root)) as Parsed<z.output<S>>;
}

type ParseResult = { ok: true; value: unknown } | z.ZodSafeParseResult<unknown>;

/** Per value, its parse: most values are read with one schema, so a Map only for a second one. */
const parsedByValue = new WeakMap<
  object,
  { schema: z.ZodType; parsed: ParseResult } | Map<z.ZodType, ParseResult>
>();

/**
 * `parsed` with each part equal to the same part of `input` replaced by it, so the informer's
 * object and its parse hold what they have in common once (the parse was a second copy of every
 * spec and status: ~15 % of the live heap with 2,000 policies). Plain objects and arrays only,
 * with the same keys: zod adds defaults and drops unknown keys, so a part that differs keeps
 * zod's copy, while the parts below it that match are still shared. A shared object keeps the
 * input's key order (the API server's, alphabetical), not the schema's: no reader depends on it
 * (statuses are compared in depth, not by their JSON). Those parts of `input` are frozen with the
 * result.
 */
function shared(parsed: unknown, input: unknown): unknown {
  if (parsed === input) return parsed;
  if (!isPlain(parsed) || !isPlain(input) || Array.isArray(parsed) !== Array.isArray(input)) return parsed;
  const out = parsed as Record<string, unknown>;
  const from = input as Record<string, unknown>;
  const keys = Object.keys(out);
  let same = keys.length === Object.keys(from).length;
  for (const key of keys) {
    if (!Object.hasOwn(from, key)) {
      same = false;
      continue;
    }
    const part = shared(out[key], from[key]);
    if (part !== out[key]) out[key] = part;
    if (part !== from[key]) same = false;
  }
  return same ? input : parsed;
}

/** An array or an object made by `{}` or JSON.parse: what zod's objects and the informer's are. */
function isPlain(value: unknown): value is object {
  if (typeof value !== 'object' || value === null) return false;
  if (Array.isArray(value)) return true;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  Object.freeze(value);
  for (const v of Object.values(value)) deepFreeze(v);
  return value;
}
