import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bundlerLock } from './bundler-lock.ts';

type Packages = Record<string, Record<string, unknown>>;
const repoLock = JSON.parse(
  readFileSync(resolve(import.meta.dirname, '..', '..', 'package-lock.json'), 'utf8'),
);

describe('bundlerLock', () => {
  it("keeps rolldown and each of its dependencies exactly as the repository's lock has them", () => {
    const { manifest, lock } = bundlerLock(repoLock) as {
      manifest: { dependencies: Record<string, string> };
      lock: { packages: Packages };
    };
    const full = repoLock.packages as Packages;
    const rolldown = full['node_modules/rolldown'] as { version: string };
    expect(manifest.dependencies).toEqual({ rolldown: rolldown.version });
    expect(lock.packages['']).toMatchObject({ dependencies: { rolldown: rolldown.version } });
    const kept = Object.keys(lock.packages).filter((k) => k !== '');
    // Its range-pinned dependency and this machine's native binding among them.
    expect(kept).toEqual(
      expect.arrayContaining([
        'node_modules/rolldown',
        'node_modules/@rolldown/pluginutils',
        'node_modules/@oxc-project/types',
        'node_modules/@rolldown/binding-linux-x64-gnu',
      ]),
    );
    // Nothing beyond rolldown's own tree (the dev dependencies number in the hundreds).
    expect(kept.length).toBeLessThan(40);
    for (const at of kept) {
      const { dev: _dev, devOptional: _devOptional, ...want } = full[at] as Record<string, unknown>;
      expect(lock.packages[at], at).toEqual(want);
      expect(want.integrity ?? want.link, at).toBeTruthy();
    }
  });

  it('finds a nested copy before a hoisted one, as npm does', () => {
    const { lock } = bundlerLock({
      lockfileVersion: 3,
      packages: {
        'node_modules/rolldown': { version: '1.0.0', dependencies: { a: '^2.0.0' } },
        'node_modules/rolldown/node_modules/a': { version: '2.1.0', integrity: 'x' },
        'node_modules/a': { version: '1.0.0', integrity: 'y' },
      },
    }) as { lock: { packages: Packages } };
    expect(Object.keys(lock.packages).sort()).toEqual([
      '',
      'node_modules/rolldown',
      'node_modules/rolldown/node_modules/a',
    ]);
  });

  it('refuses a lock missing a required dependency, and skips an optional one npm never resolved', () => {
    expect(() =>
      bundlerLock({
        lockfileVersion: 3,
        packages: { 'node_modules/rolldown': { version: '1.0.0', dependencies: { gone: '1' } } },
      }),
    ).toThrow(/needs gone/);
    const { lock } = bundlerLock({
      lockfileVersion: 3,
      packages: { 'node_modules/rolldown': { version: '1.0.0', optionalDependencies: { elsewhere: '1' } } },
    }) as { lock: { packages: Packages } };
    expect(Object.keys(lock.packages)).toEqual(['', 'node_modules/rolldown']);
  });
});
