/**
 * `make demo`: brings the local environment up, shows it working with kubectl, and tears it down.
 * Later issues grow this into the regional failover demonstration.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { installSignalCleanup } from '../harness/processes.ts';
import { startLocalEnvironment } from './environment.ts';

const run = promisify(execFile);
const t0 = Date.now();
const say = (line: string) =>
  process.stdout.write(`[demo +${((Date.now() - t0) / 1000).toFixed(1)}s] ${line}\n`);

const env = await startLocalEnvironment(say);
installSignalCleanup(() => env.stop());
const kubectl = async (...args: string[]) => {
  say(`$ kubectl ${args.join(' ')}`);
  const { stdout } = await run('kubectl', args, { env: { ...process.env, ...env.exports } });
  process.stdout.write(`${stdout.trimEnd().replace(/^/gm, '    ')}\n`);
};

try {
  await kubectl('version');
  await kubectl('create', 'namespace', 'failover-demo');
  await kubectl(
    '-n',
    'failover-demo',
    'create',
    'configmap',
    'regions',
    '--from-literal=primary=region-a',
    '--from-literal=standby=region-b',
  );
  await kubectl('-n', 'failover-demo', 'get', 'configmap', 'regions', '-o', 'jsonpath={.data}{"\\n"}');
  await kubectl('auth', 'can-i', 'create', 'leases.coordination.k8s.io', '-n', 'failover-demo');
  say('the control plane works; stopping everything the demo started');
} finally {
  await env.stop();
}
say('done: nothing left running');
