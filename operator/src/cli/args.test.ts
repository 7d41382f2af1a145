import { describe, expect, it } from 'vitest';
import { type FlagSpec, flagSet, flagString, parseArgs, UsageError } from './args.ts';

const specs: FlagSpec[] = [
  { name: 'all-namespaces', short: 'A', boolean: true },
  { name: 'watch', short: 'w', boolean: true },
  { name: 'namespace', short: 'n' },
  { name: 'output', short: 'o' },
];

describe('flags as kubectl (pflag) takes them', () => {
  it('grouped shorthand booleans, and a value flag last in the group', () => {
    const aw = parseArgs(['status', '-Aw'], specs);
    expect(flagSet(aw, 'all-namespaces')).toBe(true);
    expect(flagSet(aw, 'watch')).toBe(true);
    expect(aw.positionals).toEqual(['status']);
    const ao = parseArgs(['-Ao', 'json'], specs);
    expect(flagSet(ao, 'all-namespaces')).toBe(true);
    expect(flagString(ao, 'output')).toBe('json');
    expect(flagString(parseArgs(['-Aojson'], specs), 'output')).toBe('json');
  });

  it('a shorthand value joined, with = or without', () => {
    expect(flagString(parseArgs(['-nprod'], specs), 'namespace')).toBe('prod');
    expect(flagString(parseArgs(['-n=prod'], specs), 'namespace')).toBe('prod');
    expect(flagSet(parseArgs(['-A=false'], specs), 'all-namespaces')).toBe(false);
  });

  it('an unknown shorthand in a group is refused', () => {
    expect(() => parseArgs(['-Ax'], specs)).toThrow(UsageError);
  });
});
