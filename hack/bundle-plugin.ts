/**
 * `make plugin`: the kubectl plugin as one executable file, dist/kubectl-failover, that needs only
 * Node.js 22 or newer (no repository, no npm install), and a krew manifest for it
 * (dist/krew/failover.yaml, with the archive's sha256).
 *
 *   kubectl krew install --manifest=dist/krew/failover.yaml --archive=dist/kubectl-failover.tar.gz
 *
 * PLUGIN_RELEASE_URL names where the archive is published (the manifest's uri).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'rolldown';

const root = join(import.meta.dirname, '..');
const dist = process.env.PLUGIN_OUT_DIR ?? join(root, 'dist');
const out = join(dist, 'kubectl-failover');
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };

// Checked before anything else runs: the bundled HTTP client needs Node.js 22.
const banner = [
  '#!/usr/bin/env node',
  `// kubectl failover ${version}: one file, built by make plugin from operator/src/cli. Needs Node.js >= 22.`,
  "if (Number(process.versions.node.split('.')[0]) < 22) { process.stderr.write('kubectl-failover needs Node.js 22 or newer; this is ' + process.version + '\\n'); process.exit(1); }",
].join('\n');

mkdirSync(join(dist, 'krew'), { recursive: true });
await build({
  input: join(root, 'operator/src/cli/kubectl-failover.ts'),
  platform: 'node',
  logLevel: 'warn',
  output: { file: out, format: 'esm', banner, minify: true, codeSplitting: false },
  // The version, fixed at build time: the bundle has no package.json beside it.
  transform: { define: { 'process.env.KUBECTL_FAILOVER_VERSION': JSON.stringify(version) } },
});
// kubectl (1.26+) completes `kubectl failover` through this, found beside it on PATH.
const completer = join(dist, 'kubectl_complete-failover');
writeFileSync(completer, readFileSync(join(root, 'bin', 'kubectl_complete-failover'), 'utf8'));
chmodSync(completer, 0o755);
chmodSync(out, 0o755);

// The krew archive: the executable and the license it is under.
writeFileSync(join(dist, 'LICENSE'), readFileSync(join(root, 'LICENSE'), 'utf8'));
const archive = join(dist, 'kubectl-failover.tar.gz');
execFileSync('tar', [
  '-czf',
  archive,
  '-C',
  dist,
  'kubectl-failover',
  'kubectl_complete-failover',
  'LICENSE',
]);
const sha256 = createHash('sha256').update(readFileSync(archive)).digest('hex');
// Published: where the release keeps the archive. Locally, krew takes it with --archive.
const uri = process.env.PLUGIN_RELEASE_URL ?? `file://${archive}`;
const platform = (os: string, arch: string) =>
  [
    '  - selector:',
    `      matchLabels: { os: ${os}, arch: ${arch} }`,
    `    uri: ${uri}`,
    `    sha256: ${sha256}`,
    '    bin: kubectl-failover',
    '    files:',
    '      - { from: kubectl-failover, to: . }',
    '      - { from: kubectl_complete-failover, to: . }',
    '      - { from: LICENSE, to: . }',
  ].join('\n');
writeFileSync(
  join(dist, 'krew', 'failover.yaml'),
  [
    'apiVersion: krew.googlecontainertools.github.com/v1alpha2',
    'kind: Plugin',
    'metadata:',
    '  name: failover',
    'spec:',
    `  version: v${version}`,
    '  shortDescription: See and steer regional database failover (failover-operator)',
    '  description: |',
    '    Shows FailoverPolicies (primary, standbys, lag, phase, epoch, drills) and records',
    '    switchover, failover, reprotect, drill and pause requests for the failover-operator.',
    '    A single JavaScript file: it needs Node.js 22 or newer on PATH.',
    '  caveats: |',
    '    Needs Node.js 22 or newer as `node` on PATH.',
    '  platforms:',
    ...['linux', 'darwin'].flatMap((os) => ['amd64', 'arm64'].map((arch) => platform(os, arch))),
    '',
  ].join('\n'),
);
process.stdout.write(
  `${out} (${(readFileSync(out).length / 1024).toFixed(0)} KiB), ${archive}, dist/krew/failover.yaml\n`,
);
