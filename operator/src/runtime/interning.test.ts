import { describe, expect, it } from 'vitest';
import { internStrings, StringTable } from './interning.ts';

/** Two equal strings that are different objects, as two JSON.parse calls give. */
const fresh = (s: string) => JSON.parse(JSON.stringify(s)) as string;

describe('internStrings', () => {
  it('gives equal short strings of two parsed objects one table entry, at any depth, keys untouched', () => {
    const table = new StringTable();
    const text =
      '{"kind":"ReplicaCluster","status":{"conditions":[{"reason":"Unreachable"}],"tags":["a","b"]}}';
    const a = JSON.parse(text);
    const b = JSON.parse(text);
    internStrings(a, table);
    internStrings(b, table);
    expect(b).toEqual(a);
    expect(Object.keys(b.status)).toEqual(['conditions', 'tags']);
    // kind, Unreachable, a, b: one entry each however many objects hold them.
    expect(table.size).toBe(4);
    expect(table.intern(fresh('Unreachable'))).toBe(a.status.conditions[0].reason);
  });

  it('leaves long strings alone, and keeps strings in use canonical when a generation turns', () => {
    const table = new StringTable(2);
    const long = 'x'.repeat(200);
    const o = { long, a: 'a', b: 'b', n: 1, nothing: null };
    internStrings(o, table);
    expect(o).toEqual({ long, a: 'a', b: 'b', n: 1, nothing: null });
    expect(table.size).toBe(2);
    table.intern('c'); // a and b become the previous generation
    expect(table.size).toBe(3);
    table.intern(fresh('a')); // found there: moves to the current one
    table.intern('d'); // turns again: b, never used since, is dropped
    expect(table.size).toBe(3);
  });
});

describe('internStrings on frozen parts', () => {
  it('skips them, as parses share them read-only', () => {
    const table = new StringTable();
    const shared = Object.freeze({ reason: 'Unreachable' });
    const o = { spec: shared, status: { reason: 'Unreachable' } };
    expect(() => internStrings(o, table)).not.toThrow();
    expect(table.size).toBe(1);
  });
});
