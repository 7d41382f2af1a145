/**
 * The long-lived process behind `make up`: it owns every server of the local environment (they
 * die with it), writes `.local/env.sh` once all are ready, and tears everything down on SIGTERM.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { installSignalCleanup } from '../harness/processes.ts';
import { envScript, startLocalEnvironment } from './environment.ts';
import { localPaths } from './paths.ts';

const log = (line: string) => process.stdout.write(`[${new Date().toISOString()}] ${line}\n`);
const removeFiles = () => {
  for (const f of [localPaths.envSh, localPaths.pid, localPaths.ready]) rmSync(f, { force: true });
};

try {
  const env = await startLocalEnvironment(log);
  installSignalCleanup(async () => {
    log('stopping the local environment');
    await env.stop();
    removeFiles();
  });
  writeFileSync(localPaths.envSh, envScript(env));
  writeFileSync(localPaths.ready, `${process.pid}\n`);
  log('ready');
  // Stay alive: the servers are children of this process.
  setInterval(() => undefined, 1 << 30);
} catch (err) {
  log(`failed: ${(err as Error).message}`);
  removeFiles();
  process.exit(1);
}
