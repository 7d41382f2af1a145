/**
 * The README's local-environment walkthrough, run as written: the commands of its code block,
 * one after the other in one bash, after sourcing the env.sh `make up` writes, against a fresh
 * local environment (its own control plane and two regions). A command the README gives that
 * fails, or a name it uses that the environment lacks, fails this test.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../harness/chart-tools.ts';
import { envScript, type LocalEnvironment, startLocalEnvironment } from '../local-env/environment.ts';

let env: LocalEnvironment | undefined;
const dir = mkdtempSync(join(tmpdir(), 'readme-'));
afterAll(async () => {
  await env?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** The shell commands of the README's "Local environment" block, without `make up|down` and comments. */
function walkthrough(): string[] {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Local environment'));
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
  return block
    .split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter((l) => l && !/^make (up|down)$/.test(l));
}

describe("the README's local environment walkthrough", () => {
  it('runs as written: env.sh sets the namespace and puts the plugin on PATH', {
    timeout: 300_000,
  }, async () => {
    const commands = walkthrough();
    expect(commands[0]).toBe('source .local/env.sh');
    expect(commands.length).toBeGreaterThan(3);
    env = await startLocalEnvironment(() => undefined);
    // As `make up` leaves it once its log says ready, and a person reads the README on.
    await env.stack.waitUntilHealthy();
    writeFileSync(join(dir, 'env.sh'), envScript(env));
    // A user's shell: the machine's PATH, the repository as the working directory.
    // A --dry-run exits 1 when the operator would refuse (documented): it ran, and said why.
    const line = (c: string) =>
      c === 'source .local/env.sh'
        ? `source '${join(dir, 'env.sh')}'`
        : `echo "+ ${c}"; ${c}${c.includes('--dry-run') ? ' || [ $? -eq 1 ]' : ''}`;
    const script = ['set -euo pipefail', ...commands.map(line)].join('\n');
    const run = await new Promise<{ code: number; out: string }>((resolve) =>
      execFile(
        'bash',
        ['-c', script],
        {
          cwd: repoRoot,
          timeout: 120_000,
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? dir },
        },
        (err, stdout, stderr) =>
          resolve({
            code: err ? (typeof err.code === 'number' ? err.code : 1) : 0,
            out: `${stdout}${stderr}`,
          }),
      ),
    );
    expect(run.code, run.out).toBe(0);
    // What the walkthrough shows: the policy and its clusters, in the namespace it never named.
    expect(run.out).toMatch(/failoverpolicy\.regionfailover\.io\/orders|orders\s/);
    expect(run.out).toMatch(/region-a/);
    expect(run.out).toMatch(/region-b/);
    expect(run.out).not.toMatch(/No resources found/);
  });
});
