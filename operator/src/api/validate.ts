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
