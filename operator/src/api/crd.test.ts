import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { evaluateRule, fieldPathToPath, withRules } from './cel.ts';
import { structuralSchema } from './crd.ts';
import { crdFileName, renderCrd } from './generate-crds.ts';
import { CRON_PATTERN } from './v1alpha1/cron.ts';
import { failoverPolicySpec, kinds } from './v1alpha1/index.ts';

describe('generated CRDs', () => {
  it.each(kinds.map((k) => [k.kind, k] as const))(
    'crds/ holds exactly what the %s schema generates (run make generate)',
    (_, def) => {
      const committed = readFileSync(
        join(import.meta.dirname, '..', '..', '..', 'crds', crdFileName(def)),
        'utf8',
      );
      expect(committed).toBe(renderCrd(def));
    },
  );

  it('refuses a schema with a field that has no description', () => {
    const schema = z.object({ documented: z.string().describe('yes'), bare: z.string() }).describe('root');
    expect(() => structuralSchema(schema, 'spec')).toThrow('fields without a description: spec.bare');
  });

  it('turns a discriminated union into one object with CEL rules for the chosen block', () => {
    const union = z
      .discriminatedUnion('type', [
        z
          .strictObject({ type: z.literal('A').describe('a'), a: z.object({}).describe('A block') })
          .describe('A'),
        z.strictObject({ type: z.literal('B').describe('b') }).describe('B'),
      ])
      .describe('choice');
    const out = structuralSchema(union, 'choice');
    expect(out.type).toBe('object');
    expect(out.oneOf).toBeUndefined();
    expect(out.properties?.type?.enum).toEqual(['A', 'B']);
    expect(out['x-kubernetes-validations']).toEqual([
      { rule: "self.type != 'A' || has(self.a)", message: 'a is required when type is A', fieldPath: '.a' },
      {
        rule: "!has(self.a) || self.type in ['A']",
        message: 'a may only be set when type is A',
        fieldPath: '.a',
      },
    ]);
  });

  it('replaces a pattern with a CEL rule that carries the message zod gives', () => {
    const out = structuralSchema(
      z.string().max(5).regex(/^a+$/, 'must be only the letter a').describe('x'),
      'x',
    );
    expect(out.pattern).toBeUndefined();
    expect(out['x-kubernetes-validations']).toEqual([
      { rule: "self.matches(r'^a+$')", message: 'must be only the letter a' },
    ]);
  });

  it('leaves no zod-only keywords behind', () => {
    const text = JSON.stringify(structuralSchema(failoverPolicySpec, 'spec'));
    for (const banned of [
      '"additionalProperties":false',
      '"oneOf"',
      '"anyOf"',
      '"$schema"',
      '"const"',
      '9007199254740991',
    ]) {
      expect(text).not.toContain(banned);
    }
  });
});

describe('CEL rules in zod', () => {
  const schema = withRules(z.object({ min: z.number(), max: z.number() }), [
    { rule: 'self.min <= self.max', message: 'min must not exceed max', fieldPath: '.min' },
    { rule: 'self.min == oldSelf.min', message: 'min is immutable' },
  ]);

  it('are evaluated when parsing, at the field the rule names', () => {
    const result = schema.safeParse({ min: 5, max: 1 });
    expect(result.success).toBe(false);
    expect(result.error?.issues).toEqual([
      expect.objectContaining({ message: 'min must not exceed max', path: ['min'] }),
    ]);
    expect(schema.safeParse({ min: 1, max: 5 }).success).toBe(true);
  });

  it('skip transition rules, which only the API server can check', () => {
    expect(schema.safeParse({ min: 1, max: 1 }).success).toBe(true);
  });

  it('count an evaluation error as a violation', () => {
    expect(evaluateRule({ rule: 'self.missing.field == 1', message: '' }, {})).toBe(false);
  });

  it('map field paths to zod paths', () => {
    expect(fieldPathToPath('.standbys[2].name')).toEqual(['standbys', 2, 'name']);
    expect(fieldPathToPath(undefined)).toEqual([]);
  });
});

describe('cron schedules', () => {
  const cron = new RegExp(CRON_PATTERN);
  it.each([
    '0 3 * * 1',
    '*/15 * * * *',
    '0 0 1,15 * *',
    '30 4 * * SUN',
    '0 9-17 * * mon-fri',
    '@weekly',
    '59 23 31 12 7',
    '0 0 * JAN,jul *',
  ])('accepts %s', (s) => expect(cron.test(s)).toBe(true));
  it.each([
    '99 * * * *',
    '0 24 * * *',
    '0 0 0 * *',
    '0 0 * 13 *',
    '0 0 * * 8',
    '0 0 3 * * 1',
    '* * * *',
    '@often',
    '*/0 * * * *',
    '',
  ])('refuses %j', (s) => expect(cron.test(s)).toBe(false));
});
