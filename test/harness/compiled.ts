/**
 * The operator built the way the image's build stage builds it (hack/build-operator.ts: one
 * bundled module), laid out as in the image: `operator/src/main.js` beside a package.json. It goes
 * under `.local/` in the repository so Node.js resolves the packages left outside the bundle from
 * the repository's node_modules, as the image resolves them from /app/node_modules.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildOperator } from '../../hack/build-operator.ts';

const repo = resolve(import.meta.dirname, '..', '..');

export interface CompiledOperator {
  dir: string;
  /** The main module: `<dir>/operator/src/main.js`. */
  entry: string;
  remove(): void;
}

/**
 * `sources`: a directory holding a copy of the repository's operator/ and package.json (a
 * benchmark's older commit, say); the working tree by default.
 */
export async function compileOperator(sources = repo): Promise<CompiledOperator> {
  mkdirSync(join(repo, '.local'), { recursive: true });
  const dir = mkdtempSync(join(repo, '.local', 'compiled-'));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  try {
    const entry = await buildOperator(dir, sources);
    copyFileSync(join(sources, 'package.json'), join(dir, 'package.json'));
    return { dir, entry, remove };
  } catch (err) {
    remove();
    throw new Error(`hack/build-operator.ts failed on ${sources}: ${(err as Error).message}`);
  }
}

/**
 * A commit's operator/ and package.json, copied once into `.local/bench/operator-<sha>` (inside
 * the repository, so its node_modules resolve; config.ts reads ../../package.json), for
 * compileOperator: a benchmark's "before". Returns the directory and the full commit name.
 */
export function sourcesAt(ref: string): { dir: string; sha: string } {
  const sha = execFileSync('git', ['rev-parse', '--verify', `${ref}^{commit}`], {
    cwd: repo,
    encoding: 'utf8',
  }).trim();
  const dir = join(repo, '.local', 'bench', `operator-${sha.slice(0, 12)}`);
  const files = ['operator', 'package.json'];
  const present = execFileSync('git', ['ls-tree', '--name-only', sha, ...files], {
    cwd: repo,
    encoding: 'utf8',
  })
    .split('\n')
    .filter(Boolean);
  // A copy that lacks one of them (an interrupted one): made again.
  if (!present.every((f) => existsSync(join(dir, f)))) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const archive = execFileSync('git', ['archive', sha, ...present], { cwd: repo, maxBuffer: 1 << 30 });
    execFileSync('tar', ['-x', '-C', dir], { input: archive });
  }
  return { dir, sha };
}
