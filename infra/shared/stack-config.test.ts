/** Reading stack configuration: how stored strings become values, and how problems are named. */
import * as pulumi from '@pulumi/pulumi';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  configJson,
  configText,
  mapConfigSource,
  pulumiConfigSource,
  readStackConfig,
  StackConfigError,
} from './stack-config.ts';

const spec = {
  namespace: 'demo',
  schema: z.object({
    region: configText(z.enum(['ams3', 'nyc3'])),
    replicas: configJson(z.number().int().min(1)).default(1),
    multiAz: configJson(z.boolean()).default(false),
    sources: configJson(z.array(z.object({ type: z.string(), value: z.string() }))).default([]),
    token: configText(z.string().min(4)).optional(),
  }),
  secretKeys: ['token'],
  examples: { region: 'ams3' },
};

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof StackConfigError) return error.problems.map((p) => `${p.key}: ${p.message}`);
    throw error;
  }
  throw new Error('expected a StackConfigError');
}

describe('readStackConfig', () => {
  it('reads strings as they are and numbers, booleans, lists and objects as JSON', () => {
    const config = readStackConfig(
      spec,
      mapConfigSource({
        'demo:region': 'nyc3',
        'demo:replicas': '2',
        'demo:multiAz': 'true',
        'demo:sources': '[{"type":"k8s","value":"abc"}]',
        'other:key': 'ignored: another namespace',
      }),
    );
    expect(config).toEqual({
      region: 'nyc3',
      replicas: 2,
      multiAz: true,
      sources: [{ type: 'k8s', value: 'abc' }],
    });
  });

  it('fills in defaults for keys that are not set', () => {
    expect(readStackConfig(spec, mapConfigSource({ 'demo:region': 'ams3' }))).toEqual({
      region: 'ams3',
      replicas: 1,
      multiAz: false,
      sources: [],
    });
  });

  it('names every problem under its key, with paths inside structured values', () => {
    expect(
      problemsOf(() =>
        readStackConfig(
          spec,
          mapConfigSource({ 'demo:replicas': '0', 'demo:sources': '[{"type":"k8s"}]', 'demo:regoin': 'x' }),
        ),
      ),
    ).toEqual([
      'demo:regoin: is not a setting of this stack; did you mean demo:region? Remove it with: pulumi config rm demo:regoin',
      'demo:region: is required. Set it with: pulumi config set demo:region ams3',
      'demo:replicas: Too small: expected number to be >=1',
      'demo:sources[0].value: Invalid input: expected string, received undefined',
    ]);
  });

  it('refuses a secret kept in plain text, without repeating its value', () => {
    const problems = problemsOf(() =>
      readStackConfig(spec, mapConfigSource({ 'demo:region': 'ams3', 'demo:token': 'hunter2-hunter2' })),
    );
    expect(problems).toEqual([
      'demo:token: is stored in plain text in the stack file; set it again with: pulumi config set --secret demo:token <value>',
    ]);
    expect(problems.join()).not.toContain('hunter2');
    expect(
      readStackConfig(
        spec,
        mapConfigSource({ 'demo:region': 'ams3', 'demo:token': 'hunter2' }, ['demo:token']),
      ).token,
    ).toBe('hunter2');
  });

  it('reads the Pulumi runtime configuration, secrets included', () => {
    pulumi.runtime.setAllConfig({ 'demo:region': 'ams3', 'demo:token': 'abcdef' }, ['demo:token']);
    const source = pulumiConfigSource();
    expect(source.keys().sort()).toEqual(['demo:region', 'demo:token']);
    expect(source.isSecret('demo:token')).toBe(true);
    expect(source.isSecret('demo:region')).toBe(false);
    expect(readStackConfig(spec, source).token).toBe('abcdef');
  });
});
