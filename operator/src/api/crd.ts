/**
 * Turns the zod schemas into CustomResourceDefinitions. zod's own JSON Schema export does most of
 * the work; this module reshapes it into what the API server accepts as a structural schema:
 * discriminated unions become one object with CEL rules, and every field must have a description.
 */
import { z } from 'zod';
import type { CelRule } from './cel.ts';

export type JsonSchema = {
  type?: string;
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  additionalProperties?: JsonSchema | boolean;
  enum?: unknown[];
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
  default?: unknown;
  pattern?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  'x-kubernetes-validations'?: CelRule[];
  [key: string]: unknown;
};

export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description: string;
  priority?: number;
}

export interface KindDefinition {
  group: string;
  version: string;
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  categories: string[];
  description: string;
  spec: z.ZodType;
  /** Omitted for kinds that are pure data written by one party, like Lease. */
  status: z.ZodType | undefined;
  printerColumns: PrinterColumn[];
}

/** The structural OpenAPI schema for one zod schema, as it goes into a CRD. */
export function structuralSchema(schema: z.ZodType, where: string): JsonSchema {
  const raw = z.toJSONSchema(schema, {
    target: 'openapi-3.0',
    io: 'input',
    unrepresentable: 'throw',
    override: ({ zodSchema, jsonSchema }) => {
      const message = patternMessage(zodSchema);
      if (message) (jsonSchema as JsonSchema)[PATTERN_MESSAGE] = message;
    },
  }) as JsonSchema;
  const out = reshape(raw);
  const missing: string[] = [];
  findMissingDescriptions(out, where, missing);
  if (missing.length > 0) throw new Error(`fields without a description: ${missing.join(', ')}`);
  return out;
}

function reshape(node: JsonSchema): JsonSchema {
  const union = node.oneOf ?? node.anyOf;
  if (union) return reshape(mergeDiscriminatedUnion(node, union));

  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === '$schema') continue;
    // Unknown fields are pruned by the API server; `false` is not allowed in a structural schema.
    if (key === 'additionalProperties' && value === false) continue;
    out[key] = value;
  }
  // zod spells date-times as a long pattern; the API server has the date-time format built in.
  if (out.format === 'date-time') delete out.pattern;
  // A pattern failure from the API server only repeats the regular expression. A CEL rule with
  // the same expression can say what to fix instead, in the words zod uses too.
  const message = out[PATTERN_MESSAGE];
  delete out[PATTERN_MESSAGE];
  if (typeof message === 'string' && out.pattern) {
    if (out.pattern.includes("'"))
      throw new Error(`pattern ${out.pattern} cannot be written as a CEL raw string`);
    out['x-kubernetes-validations'] = [
      { rule: `self.matches(r'${out.pattern}')`, message },
      ...(out['x-kubernetes-validations'] ?? []),
    ];
    delete out.pattern;
  }
  // zod's .int() adds the safe-integer range; int64 needs no such bound.
  if (out.minimum === Number.MIN_SAFE_INTEGER) delete out.minimum;
  if (out.maximum === Number.MAX_SAFE_INTEGER) delete out.maximum;
  if (out.properties) {
    out.properties = Object.fromEntries(Object.entries(out.properties).map(([k, v]) => [k, reshape(v)]));
  }
  if (out.items) out.items = reshape(out.items);
  if (typeof out.additionalProperties === 'object')
    out.additionalProperties = reshape(out.additionalProperties);
  return out;
}

/**
 * A structural schema cannot say "one of these shapes", so a union discriminated by `type`
 * becomes one object holding every variant's fields, plus CEL rules that require the fields of
 * the chosen variant and forbid the others.
 */
const PATTERN_MESSAGE = 'x-pattern-message';

/** The message of a string schema's regex check, when it has exactly one with a message. */
function patternMessage(schema: unknown): string | undefined {
  const checks = (schema as { _zod?: { def?: { checks?: { _zod: { def: Record<string, unknown> } }[] } } })
    ._zod?.def?.checks;
  const regexChecks = (checks ?? []).map((c) => c._zod.def).filter((d) => d.format === 'regex');
  if (regexChecks.length !== 1) return undefined;
  const error = regexChecks[0]?.error;
  const message = typeof error === 'function' ? (error as (issue: object) => unknown)({}) : error;
  return typeof message === 'string' ? message : undefined;
}

function mergeDiscriminatedUnion(node: JsonSchema, variants: JsonSchema[]): JsonSchema {
  const names: string[] = [];
  const typeDocs: string[] = [];
  const properties: Record<string, JsonSchema> = {};
  const owners = new Map<string, string[]>();
  const rules: CelRule[] = [];
  for (const variant of variants) {
    const discriminant = variant.properties?.type;
    const name = discriminant?.enum?.[0];
    if (variant.type !== 'object' || typeof name !== 'string' || discriminant?.enum?.length !== 1) {
      throw new Error('only unions of objects discriminated by a `type` literal can become a CRD schema');
    }
    names.push(name);
    typeDocs.push(`${name}: ${discriminant.description ?? variant.description ?? ''}`.trim());
    for (const [key, value] of Object.entries(variant.properties ?? {})) {
      if (key === 'type') continue;
      properties[key] = value;
      owners.set(key, [...(owners.get(key) ?? []), name]);
      if (variant.required?.includes(key)) {
        rules.push({
          rule: `self.type != '${name}' || has(self.${key})`,
          message: `${key} is required when type is ${name}`,
          fieldPath: `.${key}`,
        });
      }
    }
  }
  for (const [key, allowed] of owners) {
    const list = allowed.map((n) => `'${n}'`).join(', ');
    rules.push({
      rule: `!has(self.${key}) || self.type in [${list}]`,
      message: `${key} may only be set when type is ${allowed.join(' or ')}`,
      fieldPath: `.${key}`,
    });
  }
  const { oneOf: _o, anyOf: _a, ...rest } = node;
  return {
    ...rest,
    type: 'object',
    required: ['type'],
    properties: {
      type: { type: 'string', enum: names, description: typeDocs.join('; ') },
      ...properties,
    },
    'x-kubernetes-validations': [...rules, ...(node['x-kubernetes-validations'] ?? [])],
  };
}

function findMissingDescriptions(node: JsonSchema, path: string, missing: string[]): void {
  if (!node.description) missing.push(path);
  for (const [key, child] of Object.entries(node.properties ?? {}))
    findMissingDescriptions(child, `${path}.${key}`, missing);
  if (node.items) findMissingDescriptions(node.items, `${path}[]`, missing);
}

/** A complete apiextensions.k8s.io/v1 CustomResourceDefinition for one kind. */
export function customResourceDefinition(def: KindDefinition): Record<string, unknown> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${def.plural}.${def.group}` },
    spec: {
      group: def.group,
      scope: 'Namespaced',
      names: {
        kind: def.kind,
        listKind: `${def.kind}List`,
        plural: def.plural,
        singular: def.singular,
        shortNames: def.shortNames,
        categories: def.categories,
      },
      versions: [
        {
          name: def.version,
          served: true,
          storage: true,
          ...(def.status ? { subresources: { status: {} } } : {}),
          additionalPrinterColumns: [
            ...def.printerColumns,
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: def.description,
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string', description: 'APIVersion of this object.' },
                kind: { type: 'string', description: 'Kind of this object.' },
                metadata: { type: 'object' },
                spec: structuralSchema(def.spec, 'spec'),
                ...(def.status ? { status: structuralSchema(def.status, 'status') } : {}),
              },
            },
          },
        },
      ],
    },
  };
}
