/**
 * The operator binary at first run, against the real API server: `--help`, and each setup mistake
 * a person makes first says so in one line that names the fix, no stack trace: a kubeconfig that
 * is not there or credentials the API server refuses stop it at once; a service account without
 * RBAC is logged once, and waited out (a Role applied later fixes it).
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../harness/chart-tools.ts';
import { mintServiceAccountToken } from '../harness/control-plane.ts';
import { waitFor } from '../harness/wait.ts';
import { sharedKubeConfig, sharedKubeconfigFile } from './shared-control-plane.ts';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'first-run-'));
});
const saNamespace = `first-run-${process.pid}`;
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await sharedKubeConfig()
    .makeApiClient(CoreV1Api)
    .deleteNamespace({ name: saNamespace })
    .catch(() => undefined);
});

function operator(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(repoRoot, 'operator', 'src', 'main.ts'), '--http-address=127.0.0.1:0', ...args],
      { timeout: 60_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

const kubeconfigFor = (name: string, token: string) =>
  sharedKubeconfigFile(join(dir, `${name}.kubeconfig`), name, token);

/** One line on stderr, no stack trace. */
const oneLine = (stderr: string) => {
  expect(stderr.trim().split('\n')).toHaveLength(1);
  expect(stderr).not.toMatch(/\n\s+at /);
};

describe('the operator binary at first run', () => {
  it('--help lists the flags with their variables and defaults', async () => {
    const r = await operator(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/--namespace {2}FAILOVER_NAMESPACE/);
    expect(r.stdout).toMatch(
      /--lease-duration-seconds {2}FAILOVER_LEASE_DURATION_SECONDS {2}\(default: 15\)/,
    );
  });

  it('a kubeconfig that is not there: exit 2 and one line', async () => {
    const r = await operator([`--kubeconfig=${join(dir, 'missing.kubeconfig')}`]);
    expect(r.code).toBe(2);
    oneLine(r.stderr);
    expect(r.stderr).toMatch(/cannot load the kubeconfig \(.*missing.kubeconfig\): ENOENT/);
  });

  it('credentials the API server refuses: exit 1 and one line', async () => {
    const r = await operator([
      `--kubeconfig=${kubeconfigFor('nobody', 'not-a-token')}`,
      '--leader-elect=false',
    ]);
    expect(r.code).toBe(1);
    oneLine(r.stderr);
    expect(r.stderr).toMatch(/refuses the credentials \(401 Unauthorized\)/);
  });

  it('a service account without RBAC: one log line naming the resource and the fix, and it waits', async () => {
    const token = await mintServiceAccountToken(sharedKubeConfig(), saNamespace, 'no-rbac');
    // Not fatal: a Role applied after the Deployment fixes it, and the informers pick up from there.
    const proc = spawn(
      process.execPath,
      [
        join(repoRoot, 'operator', 'src', 'main.ts'),
        '--http-address=127.0.0.1:0',
        `--kubeconfig=${kubeconfigFor('no-rbac', token)}`,
        '--leader-elect=false',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
    });
    try {
      const line = await waitFor(() => out.split('\n').find((l) => l.includes('RBAC refuses to list')), {
        description: 'the RBAC line in the log',
        timeoutMs: 60_000,
      });
      expect(JSON.parse(line)).toMatchObject({
        level: 'error',
        msg: expect.stringMatching(
          /^RBAC refuses to list failoverpolicies.regionfailover.io in all namespaces: .*; grant it \(the Helm chart's ClusterRole does/,
        ),
      });
      expect(proc.exitCode).toBeNull();
    } finally {
      proc.kill('SIGKILL');
    }
  });
});
