/**
 * The operator compiled to JavaScript the way the image's build stage does it (tsconfig.build.json),
 * laid out as in the image: `operator/src/*.js` beside a package.json. It goes under `.local/` in
 * the repository so Node.js resolves the packages from the repository's node_modules, as the
 * image resolves them from /app/node_modules.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const repo = resolve(import.meta.dirname, '..', '..');

export interface CompiledOperator {
  dir: string;
  /** The main module: `<dir>/operator/src/main.js`. */
  entry: string;
  remove(): void;
}

/**
 * `sources`: a directory holding a copy of the repository's operator/, package.json and tsconfig
 * files (a benchmark's older commit, say); the working tree by default.
 */
export async function compileOperator(sources = repo): Promise<CompiledOperator> {
  mkdirSync(join(repo, '.local'), { recursive: true });
  const dir = mkdtempSync(join(repo, '.local', 'compiled-'));
  await promisify(execFile)(
    join(repo, 'node_modules', '.bin', 'tsc'),
    ['-p', join(sources, 'tsconfig.build.json'), '--outDir', dir],
    { cwd: sources },
  ).catch((err: Error & { stdout?: string; stderr?: string }) => {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(
      `tsc -p tsconfig.build.json failed: ${err.message}\n${err.stdout ?? ''}${err.stderr ?? ''}`,
    );
  });
  copyFileSync(join(sources, 'package.json'), join(dir, 'package.json'));
  return {
    dir,
    entry: join(dir, 'operator', 'src', 'main.js'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
