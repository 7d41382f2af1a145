/**
 * `make cluster-up` / `make cluster-down`: the single-node cluster of local-cluster.ts, kept
 * running in the background with the operator's image already in its containerd, for trying the
 * chart by hand:
 *
 *   make cluster-up
 *   export KUBECONFIG=.local/cluster/kubeconfig
 *   helm install failover charts/failover-operator -n failover-system --create-namespace \
 *     --set image.repository=localhost/failover-operator,image.tag=dev,image.pullPolicy=Never
 *   make cluster-down
 *
 * `up` starts `serve` detached and waits for it to be ready; `down` stops it, and `serve`
 * removes everything the cluster made when it stops.
 */
import { execFile, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { LocalCluster } from '../harness/local-cluster.ts';
import { installSignalCleanup, isAlive } from '../harness/processes.ts';
import { waitFor } from '../harness/wait.ts';

const repo = resolve(import.meta.dirname, '..', '..');
const dir = join(repo, '.local', 'cluster');
const paths = {
  pid: join(dir, 'pid'),
  ready: join(dir, 'ready'),
  log: join(dir, 'cluster.log'),
  kubeconfig: join(dir, 'kubeconfig'),
};
const IMAGE = process.env.IMAGE ?? 'localhost/failover-operator:dev';
const say = (line: string) => process.stdout.write(`${line}\n`);

async function serve(): Promise<void> {
  let cluster: LocalCluster | undefined;
  const stop = async () => {
    await cluster?.stop();
    for (const f of [paths.ready, paths.pid, paths.kubeconfig]) rmSync(f, { force: true });
  };
  installSignalCleanup(stop);
  cluster = await LocalCluster.start({ log: (l) => say(`[cluster] ${l}`) });
  try {
    say(`[cluster] make image: ${IMAGE}`);
    await promisify(execFile)('bash', [join(repo, 'hack', 'image', 'build.sh')], {
      cwd: repo,
      env: { ...process.env, IMAGE, ENGINE: LocalCluster.imageEngine },
      maxBuffer: 64 << 20,
    });
    await cluster.importImage(IMAGE);
  } catch (err) {
    say(`[cluster] ${(err as Error).message}`);
    await stop();
    process.exit(1);
  }
  copyFileSync(cluster.kubeconfigPath, paths.kubeconfig);
  writeFileSync(paths.ready, `${new Date().toISOString()}\n`);
  say(`[cluster] ready: export KUBECONFIG=${paths.kubeconfig}; ${IMAGE} is in the node's containerd`);
  await new Promise(() => {});
}

async function up(): Promise<void> {
  mkdirSync(dir, { recursive: true });
  if (existsSync(paths.pid) && isAlive(Number(readFileSync(paths.pid, 'utf8')))) {
    say(`The local cluster is already up: export KUBECONFIG=${paths.kubeconfig}`);
    return;
  }
  rmSync(paths.ready, { force: true });
  const out = openSync(paths.log, 'w');
  const child = spawn(process.execPath, [import.meta.filename, 'serve'], {
    detached: true,
    stdio: ['ignore', out, out],
  });
  child.unref();
  writeFileSync(paths.pid, `${child.pid}\n`);
  say(`Starting the local cluster (log: ${paths.log}); a cold first run builds the node binaries ...`);
  try {
    await waitFor(
      () => {
        if (existsSync(paths.ready)) return true;
        if (child.pid === undefined || !isAlive(child.pid)) throw new Error('the cluster process exited');
        return false;
      },
      { description: 'the local cluster', timeoutMs: 45 * 60_000, intervalMs: 500 },
    );
  } catch (err) {
    process.stderr.write(
      `make cluster-up failed: ${(err as Error).message}\n${readFileSync(paths.log, 'utf8')}\n`,
    );
    if (child.pid && isAlive(child.pid)) process.kill(child.pid, 'SIGTERM');
    process.exit(1);
  }
  say(
    `${readFileSync(paths.log, 'utf8')}\nUp. export KUBECONFIG=${paths.kubeconfig}\nStop it with: make cluster-down`,
  );
}

async function down(): Promise<void> {
  if (!existsSync(paths.pid)) {
    say('The local cluster is not running.');
    return;
  }
  const pid = Number(readFileSync(paths.pid, 'utf8'));
  if (isAlive(pid)) {
    process.kill(pid, 'SIGTERM');
    await waitFor(() => !isAlive(pid), {
      description: `the cluster (pid ${pid}) to stop`,
      timeoutMs: 120_000,
    }).catch(() => process.kill(pid, 'SIGKILL'));
  }
  // Whatever a killed run left: containers, mounts, rules, the bridge.
  LocalCluster.sweep();
  for (const f of [paths.ready, paths.pid, paths.kubeconfig]) rmSync(f, { force: true });
  say('The local cluster is down.');
}

const command = process.argv[2];
if (command === 'serve') await serve();
else if (command === 'up') await up();
else if (command === 'down') await down();
else {
  process.stderr.write('usage: cluster.ts up|down|serve\n');
  process.exit(2);
}
