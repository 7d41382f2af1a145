/**
 * Cross-field rules written once, in CEL, and enforced twice: by the API server (as
 * `x-kubernetes-validations` in the generated CRD) and by the operator when it reads an object
 * (evaluated here with a JavaScript CEL interpreter). A rule that compares old and new values
 * (`oldSelf`) can only be checked on update, so only the API server enforces it.
 */
import { Environment } from '@marcbachmann/cel-js';
import type { z } from 'zod';

export interface CelRule {
  /** A CEL expression over `self` (and `oldSelf` for transition rules) that must be true. */
  rule: string;
  /** What to fix, in words a user understands. */
  message: string;
  /** The field the message is about, relative to where the rule is attached, e.g. `.standbys`. */
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

const env = new Environment({ unlistedVariablesAreDyn: true });
type Compiled = (ctx: Record<string, unknown>) => unknown;
const compiled = new Map<string, Compiled>();

function compile(rule: string): Compiled {
  let fn = compiled.get(rule);
  if (!fn) {
    const parsed = env.parse(rule);
    fn = (ctx) => parsed(ctx);
    compiled.set(rule, fn);
  }
  return fn;
}

export function isTransitionRule(rule: CelRule): boolean {
  return /\boldSelf\b/.test(rule.rule);
}

/** Evaluates a non-transition rule against a value; an evaluation error counts as a violation. */
export function evaluateRule(rule: CelRule, self: unknown): boolean {
  try {
    return compile(rule.rule)({ self }) === true;
  } catch {
    return false;
  }
}

/** `.standbys[0].name` → ['standbys', 0, 'name'] */
export function fieldPathToPath(fieldPath: string | undefined): (string | number)[] {
  if (!fieldPath) return [];
  const path: (string | number)[] = [];
  for (const m of fieldPath.matchAll(/\.([A-Za-z0-9_]+)|\[(\d+)\]/g)) {
    if (m[1] !== undefined) path.push(m[1]);
    else if (m[2] !== undefined) path.push(Number(m[2]));
  }
  return path;
}

/**
 * Attaches CEL rules to a schema: they appear in the CRD, and zod checks the non-transition ones
 * with the same interpreter semantics when the operator parses an object.
 */
export function withRules<T extends z.ZodType>(schema: T, rules: CelRule[]): T {
  const runtime = rules.filter((r) => !isTransitionRule(r));
  const checked =
    runtime.length === 0
      ? schema
      : (schema.superRefine((value, ctx) => {
          for (const rule of runtime) {
            if (!evaluateRule(rule, value)) {
              ctx.addIssue({ code: 'custom', message: rule.message, path: fieldPathToPath(rule.fieldPath) });
            }
          }
        }) as unknown as T);
  return checked.meta({ 'x-kubernetes-validations': rules }) as T;
}
