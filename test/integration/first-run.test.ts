/**
 * The operator binary at first run, against the real API server: `--help`, and each setup mistake
 * a person makes first (a kubeconfig that is not there, credentials the API server refuses, a
 * service account without RBAC) stops it at once with one line that names the fix — no stack
 * trace, no informer retrying for ever.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { repoRoot } from '../harness/chart-tools.ts';
import { mintServiceAccountToken } from '../harness/control-plane.ts';
import { sharedKubeConfig } from './shared-control-plane.ts';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'first-run-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function operator(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(repoRoot, 'operator', 'src', 'main.ts'), '--http-address=127.0.0.1:0', ...args],
      { timeout: 30_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

function kubeconfigFor(name: string, token: string): string {
  const cp = inject('controlPlane');
  const path = join(dir, `${name}.kubeconfig`);
  writeFileSync(
    path,
    [
      'apiVersion: v1',
      'kind: Config',
      `clusters: [{name: shared, cluster: {server: "${cp.server}", certificate-authority: "${cp.caPath}"}}]`,
      `users: [{name: ${name}, user: {token: "${token}"}}]`,
      `contexts: [{name: shared, context: {cluster: shared, user: ${name}}}]`,
      'current-context: shared',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  return path;
}

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

  it('a service account without RBAC: exit 1, naming the resource and the fix', async () => {
    const token = await mintServiceAccountToken(sharedKubeConfig(), `first-run-${process.pid}`, 'no-rbac');
    const r = await operator([`--kubeconfig=${kubeconfigFor('no-rbac', token)}`, '--leader-elect=false']);
    expect(r.code).toBe(1);
    oneLine(r.stderr);
    expect(r.stderr).toMatch(
      /RBAC refuses to list failoverpolicies.regionfailover.io in all namespaces: .*; grant it \(the Helm chart's ClusterRole does/,
    );
  });
});
