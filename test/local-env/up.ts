/** `make up`: starts the supervisor in the background and waits until it is ready or has failed. */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive } from '../harness/processes.ts';
import { waitFor } from '../harness/wait.ts';
import { localPaths } from './paths.ts';

mkdirSync(localPaths.dir, { recursive: true });
if (existsSync(localPaths.pid) && isAlive(Number(readFileSync(localPaths.pid, 'utf8')))) {
  process.stdout.write(`The local environment is already up. source ${localPaths.envSh}\n`);
  process.exit(0);
}
rmSync(localPaths.ready, { force: true });
const out = openSync(localPaths.log, 'w');
const child = spawn(process.execPath, [join(import.meta.dirname, 'supervisor.ts')], {
  detached: true,
  stdio: ['ignore', out, out],
});
child.unref();
writeFileSync(localPaths.pid, `${child.pid}\n`);
process.stdout.write(`Starting the local environment (log: ${localPaths.log}) ...\n`);

try {
  await waitFor(
    () => {
      if (existsSync(localPaths.ready)) return true;
      if (child.pid === undefined || !isAlive(child.pid)) throw new Error('the supervisor exited');
      return false;
    },
    { description: 'the local environment', timeoutMs: 180_000, intervalMs: 300 },
  );
} catch (err) {
  process.stderr.write(
    `make up failed: ${(err as Error).message}\n${readFileSync(localPaths.log, 'utf8')}\n`,
  );
  if (child.pid && isAlive(child.pid)) process.kill(child.pid, 'SIGTERM');
  rmSync(localPaths.pid, { force: true });
  process.exit(1);
}
process.stdout.write(
  `${readFileSync(localPaths.log, 'utf8')}\nUp. Use it with:\n  source ${localPaths.envSh}\n  kubectl get namespaces\nStop it with: make down\n`,
);
