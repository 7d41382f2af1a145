import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Files under `.local/` that `make up` writes and `make down` removes. */
export const localPaths = {
  dir: join(repo, '.local'),
  envSh: join(repo, '.local', 'env.sh'),
  pid: join(repo, '.local', 'env.pid'),
  log: join(repo, '.local', 'env.log'),
  ready: join(repo, '.local', 'env.ready'),
};
