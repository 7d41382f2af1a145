/** `make down`: stops the supervisor, which stops every server it started. */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { isAlive } from '../harness/processes.ts';
import { waitFor } from '../harness/wait.ts';
import { localPaths } from './paths.ts';

if (!existsSync(localPaths.pid)) {
  process.stdout.write('The local environment is not running.\n');
  process.exit(0);
}
const pid = Number(readFileSync(localPaths.pid, 'utf8'));
if (isAlive(pid)) {
  process.kill(pid, 'SIGTERM');
  await waitFor(() => !isAlive(pid), {
    description: `the supervisor (pid ${pid}) to stop`,
    timeoutMs: 60_000,
  }).catch(() => process.kill(pid, 'SIGKILL'));
}
for (const f of [localPaths.envSh, localPaths.pid, localPaths.ready]) rmSync(f, { force: true });
process.stdout.write('The local environment is down.\n');
