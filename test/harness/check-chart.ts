/**
 * `make chart-check`: the real helm lints and renders the chart with every scenario of
 * chart-tools.ts, and kubeconform validates each rendering (CRDs included), the examples and the
 * kind suite's manifests against schemas made offline. Exits non-zero, naming the scenario and
 * resource, on any failure.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chartScenarios, kubeconform, lintChart, renderChartRaw, repoRoot } from './chart-tools.ts';

const say = (line: string) => process.stdout.write(`[chart-check] ${line}\n`);
let failed = 0;

const files: { name: string; content: string }[] = [];
for (const scenario of chartScenarios) {
  const lint = await lintChart(scenario.values);
  if (lint.code !== 0) {
    failed++;
    say(`FAIL helm lint (${scenario.name}):\n${lint.stdout}${lint.stderr}`);
  }
  const rendered = await renderChartRaw({ values: scenario.values, includeCrds: true });
  if (rendered.code !== 0) {
    failed++;
    say(`FAIL helm template (${scenario.name}): ${rendered.stderr.trim()}`);
    continue;
  }
  files.push({ name: `chart (${scenario.name})`, content: rendered.stdout });
}
// The examples, and the manifests of the kind suite (which cannot run here: this is the check they get).
for (const folder of ['examples', 'test/e2e/manifests']) {
  for (const f of readdirSync(join(repoRoot, folder)).filter((n) => n.endsWith('.yaml'))) {
    files.push({ name: `${folder}/${f}`, content: readFileSync(join(repoRoot, folder, f), 'utf8') });
  }
}

const result = await kubeconform(files, say);
const bySource = new Map<string, { valid: number; problems: string[] }>();
for (const r of result.resources) {
  const entry = bySource.get(r.filename) ?? { valid: 0, problems: [] };
  if (r.status === 'statusValid') entry.valid++;
  else entry.problems.push(`${r.kind}/${r.name}: ${r.status.replace(/^status/, '')} ${r.msg}`);
  bySource.set(r.filename, entry);
}
for (const f of files) {
  const entry = bySource.get(f.name) ?? { valid: 0, problems: ['no resources validated'] };
  if (entry.problems.length) {
    failed++;
    say(`FAIL ${f.name}: ${entry.valid} valid\n  ${entry.problems.join('\n  ')}`);
  } else {
    say(`ok   ${f.name}: ${entry.valid} resources valid`);
  }
}
if (!result.ok && failed === 0) {
  failed++;
  say(`FAIL kubeconform: ${result.raw.slice(0, 2000)}`);
}
const { valid, invalid, errors, skipped } = result.summary;
say(
  `helm lint and template: ${chartScenarios.length} value sets; kubeconform: ${valid} valid, ${invalid} invalid, ${errors} errors, ${skipped} skipped`,
);
process.exit(failed ? 1 : 0);
