/**
 * The example stack files are valid configuration: each Pulumi.<stack>.yaml, read the way the
 * Pulumi CLI hands it to the program (scalars as strings, lists and objects as JSON), passes the
 * stack's own checks once the secrets it leaves out are set. And each Pulumi.yaml names the
 * project whose config namespace the program reads.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { load } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { AWS_PROJECT, readAwsStackConfig } from '../aws/config.ts';
import { DIGITALOCEAN_PROJECT, readDigitalOceanStackConfig } from '../digitalocean/config.ts';
import { mapConfigSource } from './stack-config.ts';

const infra = fileURLToPath(new URL('..', import.meta.url));

/** Config values as the Pulumi CLI passes them to a program. */
function asPulumiPassesThem(config: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(config).map(([key, value]) => [
      key,
      typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value),
    ]),
  );
}

const projects: {
  dir: string;
  project: string;
  secrets: Record<string, string>;
  read: (source: ReturnType<typeof mapConfigSource>) => { primaryRegion: string; standbyRegion: string };
}[] = [
  {
    dir: 'aws',
    project: AWS_PROJECT,
    // Set with --secret by the person who creates the stack.
    secrets: {
      [`${AWS_PROJECT}:masterPassword`]: 'x'.repeat(20),
      [`${AWS_PROJECT}:operatorDbPassword`]: 'y'.repeat(24),
    },
    read: readAwsStackConfig,
  },
  { dir: 'digitalocean', project: DIGITALOCEAN_PROJECT, secrets: {}, read: readDigitalOceanStackConfig },
];

describe.each(projects)('infra/$dir', ({ dir, project, secrets, read }) => {
  it('has a Pulumi.yaml for the project the program reads its config from, run by Node itself', () => {
    const manifest = load(readFileSync(join(infra, dir, 'Pulumi.yaml'), 'utf8')) as Record<string, unknown>;
    expect(manifest).toMatchObject({
      name: project,
      main: 'index.ts',
      runtime: { name: 'nodejs', options: { typescript: false } },
    });
  });

  const stackFiles = readdirSync(join(infra, dir)).filter((f) => /^Pulumi\.[a-z0-9-]+\.yaml$/.test(f));

  it('has example stacks', () => {
    expect(stackFiles.sort()).toEqual(['Pulumi.production.yaml', 'Pulumi.staging.yaml']);
  });

  it.each(stackFiles)('%s is a valid configuration once its secrets are set', (file) => {
    const { config } = load(readFileSync(join(infra, dir, file), 'utf8')) as {
      config: Record<string, unknown>;
    };
    const values = { ...asPulumiPassesThem(config), ...secrets };
    const parsed = read(mapConfigSource(values, Object.keys(secrets)));
    expect(parsed.primaryRegion).not.toBe(parsed.standbyRegion);
  });
});
