import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadKubeConfig } from './api.ts';

/** A kubeconfig file of one cluster, user and context, all named after `name` unless told. */
const kubeconfig = (o: { name: string; user?: string; current?: boolean }) => `apiVersion: v1
kind: Config
clusters:
- name: ${o.name}
  cluster: { server: https://${o.name}.example.test:6443 }
users:
- name: ${o.user ?? o.name}
  user: { token: token-${o.name} }
contexts:
- name: ${o.name}
  context: { cluster: ${o.name}, user: ${o.user ?? o.name}, namespace: ns-${o.name} }
${o.current === false ? '' : `current-context: ${o.name}\n`}`;

describe('KUBECONFIG with several files, merged as kubectl merges them', () => {
  let dir = '';
  const saved = process.env.KUBECONFIG;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kubeconfig-'));
  });
  afterEach(async () => {
    if (saved === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = saved;
    await rm(dir, { recursive: true, force: true });
  });
  const files = async (...contents: string[]) => {
    const paths = await Promise.all(
      contents.map(async (c, i) => {
        const p = join(dir, `config-${i}`);
        await writeFile(p, c);
        return p;
      }),
    );
    process.env.KUBECONFIG = paths.join(delimiter);
    return paths;
  };

  it('the first file that sets current-context sets it (prod before staging acts on prod)', async () => {
    await files(kubeconfig({ name: 'prod' }), kubeconfig({ name: 'staging' }));
    const kc = loadKubeConfig({});
    expect(kc.getCurrentContext()).toBe('prod');
    expect(kc.getCurrentCluster()?.server).toBe('https://prod.example.test:6443');
    expect(kc.contexts.map((c) => c.name)).toEqual(['prod', 'staging']);
    // --context still picks any of them.
    expect(loadKubeConfig({ context: 'staging' }).getCurrentCluster()?.name).toBe('staging');
  });

  it('a file without current-context does not end the search; a name in two files is the first one', async () => {
    await files(
      kubeconfig({ name: 'a', user: 'admin', current: false }),
      kubeconfig({ name: 'b', user: 'admin' }),
    );
    const kc = loadKubeConfig({});
    expect(kc.getCurrentContext()).toBe('b');
    expect(kc.users).toHaveLength(1);
    expect(kc.getCurrentUser()?.token).toBe('token-a');
  });

  it('a file that does not exist is skipped', async () => {
    const [only] = await files(kubeconfig({ name: 'prod' }));
    process.env.KUBECONFIG = [join(dir, 'missing'), only].join(delimiter);
    expect(loadKubeConfig({}).getCurrentContext()).toBe('prod');
  });
});
