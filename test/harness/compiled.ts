/**
 * The operator built the way the image's build stage builds it (hack/build-operator.ts: one
 * bundled module), laid out as in the image: `operator/src/main.js` beside a package.json. It goes
 * under `.local/` in the repository so Node.js resolves the packages left outside the bundle from
 * the repository's node_modules, as the image resolves them from /app/node_modules.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
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
