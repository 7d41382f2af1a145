/**
 * The harness itself: independent control planes, an API server that goes away and comes back,
 * clear failures, and nothing left running or on disk afterwards.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, PatchStrategy, setHeaderOptions, type V1ConfigMap, Watch } from '@kubernetes/client-node';
import { afterAll, describe, expect, it } from 'vitest';
import { ControlPlane } from '../harness/control-plane.ts';
import { HarnessError, isAlive } from '../harness/processes.ts';
import { waitFor } from '../harness/wait.ts';

const started: ControlPlane[] = [];
afterAll(async () => {
  await Promise.all(started.map((cp) => cp.stop()));
});

describe('two control planes', () => {
  it('are independent regions: an object in one is not in the other', async () => {
    const [a, b] = await Promise.all([
      ControlPlane.start({ name: 'region-a' }),
      ControlPlane.start({ name: 'region-b' }),
    ]);
    started.push(a, b);
    expect(a.server).not.toBe(b.server);
    const coreA = a.kubeConfig().makeApiClient(CoreV1Api);
    const coreB = b.kubeConfig().makeApiClient(CoreV1Api);
    await coreA.createNamespacedConfigMap({
      namespace: 'default',
      body: { metadata: { name: 'only-in-a' } },
    });
    await expect(
      coreB.readNamespacedConfigMap({ namespace: 'default', name: 'only-in-a' }),
    ).rejects.toMatchObject({
      code: 404,
    });
    expect((await a.get('/version')).body).toContain('"gitVersion": "v1.33');
  });
});

describe('an API server outage', () => {
  it('is survived by a watch that resumes from its last resourceVersion', async () => {
    const cp = await ControlPlane.start({ name: 'outage' });
    started.push(cp);
    const kc = cp.kubeConfig();
    const core = kc.makeApiClient(CoreV1Api);
    const created = await core.createNamespacedConfigMap({
      namespace: 'default',
      body: { metadata: { name: 'tracked' }, data: { n: '0' } },
    });

    const values: string[] = [];
    let lastResourceVersion = created.metadata?.resourceVersion ?? '';
    let ended = false;
    let expired = false;
    const watchFrom = (rv: string) =>
      new Watch(kc).watch(
        '/api/v1/namespaces/default/configmaps',
        { resourceVersion: rv, fieldSelector: 'metadata.name=tracked' },
        (type, obj: V1ConfigMap & { code?: number }) => {
          // A restarted API server may no longer hold our resourceVersion in its watch cache.
          if (type === 'ERROR') {
            expired = obj.code === 410;
            return;
          }
          values.push(obj.data?.n ?? '');
          lastResourceVersion = obj.metadata?.resourceVersion ?? lastResourceVersion;
        },
        () => {
          ended = true;
        },
      );

    let watch = await watchFrom(lastResourceVersion);
    const bump = (n: string) =>
      core.patchNamespacedConfigMap(
        { namespace: 'default', name: 'tracked', body: { data: { n } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    await bump('1');
    await waitFor(() => values.includes('1'), { description: 'the first change through the watch' });

    await cp.stopApiServer();
    await waitFor(() => ended, { description: 'the watch to notice the API server is gone' });
    await cp.startApiServer();

    // Resume from the last resourceVersion; if the new API server answers 410 Gone, do what an
    // informer does: read the current state and watch on from there. Either way nothing is lost.
    ended = false;
    watch = await watchFrom(lastResourceVersion);
    const recoverIfExpired = async () => {
      if (!expired) return;
      expired = false;
      ended = false;
      const current = await core.readNamespacedConfigMap({ namespace: 'default', name: 'tracked' });
      values.push(current.data?.n ?? '');
      watch = await watchFrom(current.metadata?.resourceVersion ?? '');
    };
    try {
      await bump('2');
      await waitFor(
        async () => {
          await recoverIfExpired();
          return values.includes('2');
        },
        { description: 'a change after the restart' },
      );
      // Nothing was missed: every value arrives in order (a relist may repeat the last one).
      expect([...new Set(values)]).toEqual(['1', '2']);
    } finally {
      watch.abort();
    }
  });
});

describe('bad input', () => {
  it('a port already taken fails with the step and a clear message', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const err = await ControlPlane.start({ name: 'taken', ports: { apiserver: port } }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(HarnessError);
      expect((err as HarnessError).step).toBe('start kube-apiserver (taken)');
      expect((err as Error).message).toContain(`port ${port} on 127.0.0.1 is already in use`);
    } finally {
      blocker.close();
    }
  });

  it('a control plane that never becomes ready fails with its log path and leaves nothing running', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'failover-never-ready-'));
    try {
      const err = await ControlPlane.start({ name: 'slow', dir, readyTimeoutMs: 1 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HarnessError);
      expect((err as HarnessError).step).toMatch(/^start (etcd|kube-apiserver) \(slow\)$/);
      expect((err as Error).message).toContain('never became ready');
      expect((err as HarnessError).logPath).toMatch(/\/(etcd|kube-apiserver)\.log$/);
      expect(existsSync((err as HarnessError).logPath ?? '')).toBe(true);
      const { stdout } = await promisify(execFile)('ps', ['-eo', 'args']);
      expect(stdout).not.toContain(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a failed Go build names the step and its log', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'failover-bad-build-'));
    try {
      const result = await promisify(execFile)('bash', ['test/harness/build-control-plane.sh'], {
        env: { ...process.env, FAILOVER_CACHE_DIR: cache, ETCD_VERSION: 'v3.5.999-does-not-exist' },
      }).catch((e: { code: number; stderr: string }) => e);
      expect((result as { code: number }).code).not.toBe(0);
      expect(result.stderr).toContain('FAILED at step: resolve etcd modules');
      expect(result.stderr).toMatch(/log: .*build\.log/);
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });
});

describe('cleanup', () => {
  it('stop() ends every process and removes the temp directory', async () => {
    const cp = await ControlPlane.start({ name: 'tidy' });
    const pids = await processesUnder(cp.dir);
    expect(pids.length).toBe(2);
    await cp.stop();
    expect(pids.filter(isAlive)).toEqual([]);
    expect(existsSync(cp.dir)).toBe(false);
  });

  it('a harness process killed with SIGKILL takes its etcd and kube-apiserver with it', async () => {
    // A child Node process starts a control plane and is then killed without any chance to clean up.
    const script = `
      import { ControlPlane } from './test/harness/control-plane.ts';
      const cp = await ControlPlane.start({ name: 'orphan' });
      console.log(cp.dir);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    const dir = await waitFor(() => out.trim() || undefined, {
      description: 'the child to start a control plane',
      timeoutMs: 150_000,
    });
    const pids = await processesUnder(dir);
    expect(pids.length).toBe(2);
    child.kill('SIGKILL');
    await waitFor(() => pids.every((p) => !isAlive(p)), {
      description: 'the orphaned servers to die with their parent',
    });
    rmSync(dir, { recursive: true, force: true });
  });
});

/** PIDs of the etcd and kube-apiserver processes whose arguments mention `dir`. */
async function processesUnder(dir: string): Promise<number[]> {
  const { stdout } = await promisify(execFile)('ps', ['-eo', 'pid=,comm=,args=']);
  return stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter(
      ([, comm], i, rows) =>
        (comm === 'etcd' || comm === 'kube-apiserver') && rows[i]?.join(' ').includes(dir),
    )
    .map(([pid]) => Number(pid));
}
