/**
 * The image's build stage installs only the bundler, not the ~1,000 dev packages, yet every
 * package it installs must be the one the repository's lock file pins: `npm install rolldown@x`
 * would resolve rolldown's own dependencies afresh (`@rolldown/pluginutils: ^1.0.0` takes
 * whatever 1.x is newest the day the image is built). This writes a package.json and a
 * package-lock.json holding rolldown and exactly its dependencies as the full lock has them, with
 * their integrity hashes, for `npm ci`.
 *
 *   node bundler-lock.ts <package-lock.json> <out dir>
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

interface LockEntry {
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  dev?: boolean;
  devOptional?: boolean;
  [key: string]: unknown;
}
interface Lock {
  lockfileVersion: number;
  packages: Record<string, LockEntry>;
}

const ROOT = 'rolldown';

/** Where npm finds `name` from the package installed at `from`: the nearest node_modules up. */
function locate(packages: Lock['packages'], from: string, name: string): string | undefined {
  let dir = from;
  for (;;) {
    const at = `${dir ? `${dir}/` : ''}node_modules/${name}`;
    if (packages[at]) return at;
    if (!dir) return undefined;
    const up = dir.lastIndexOf('/node_modules/');
    dir = up === -1 ? '' : dir.slice(0, up);
  }
}

export function bundlerLock(lock: Lock): { manifest: object; lock: object } {
  if (lock.lockfileVersion < 2) throw new Error(`lockfileVersion ${lock.lockfileVersion}: 2 or 3 needed`);
  const rootAt = `node_modules/${ROOT}`;
  const version = lock.packages[rootAt]?.version;
  if (!version) throw new Error(`${ROOT} is not in the lock file`);
  const kept: Record<string, LockEntry> = {};
  const pending = [rootAt];
  while (pending.length > 0) {
    const at = pending.pop() as string;
    if (kept[at]) continue;
    const entry = lock.packages[at] as LockEntry;
    // Installed as a dependency of this manifest, not a dev one: npm ci would leave out a `dev`
    // entry under NODE_ENV=production.
    const { dev: _dev, devOptional: _devOptional, ...rest } = entry;
    kept[at] = rest;
    const optionalPeers = Object.entries(entry.peerDependenciesMeta ?? {})
      .filter(([, m]) => m.optional)
      .map(([n]) => n);
    const names = [
      ...Object.keys(entry.dependencies ?? {}),
      ...Object.keys(entry.optionalDependencies ?? {}),
      ...Object.keys(entry.peerDependencies ?? {}).filter((n) => !optionalPeers.includes(n)),
    ];
    for (const name of names) {
      const found = locate(lock.packages, at, name);
      // An optional dependency the lock has no entry for is one npm did not resolve at all.
      if (found) pending.push(found);
      else if (!entry.optionalDependencies?.[name])
        throw new Error(`${at} needs ${name}, which the lock file does not have`);
    }
  }
  // ESM, as the repository's own: the build script beside it is run from this directory.
  const manifest = {
    name: 'failover-operator-bundler',
    private: true,
    type: 'module',
    dependencies: { [ROOT]: version },
  };
  return {
    manifest,
    lock: {
      name: manifest.name,
      lockfileVersion: 3,
      requires: true,
      packages: { '': { name: manifest.name, dependencies: manifest.dependencies }, ...kept },
    },
  };
}

if (import.meta.main) {
  const [lockPath, out] = process.argv.slice(2);
  if (!lockPath || !out) throw new Error('usage: node bundler-lock.ts <package-lock.json> <out dir>');
  const { manifest, lock } = bundlerLock(JSON.parse(readFileSync(lockPath, 'utf8')) as Lock);
  writeFileSync(join(out, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  writeFileSync(join(out, 'package-lock.json'), `${JSON.stringify(lock, null, 2)}\n`);
}
