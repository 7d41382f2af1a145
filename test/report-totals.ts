/**
 * Prints the totals of a vitest JSON report on a line of their own, "N passed, N failed", so a
 * run that executed no test cannot be mistaken for a green one.
 */
import { existsSync, readFileSync } from 'node:fs';

const path = process.argv[2] ?? '.local/test-results.json';
if (!existsSync(path)) {
  process.stdout.write(`0 passed, 1 failed\n`);
  process.stderr.write(`no test report at ${path}: the test runner did not finish\n`);
  process.exit(1);
}
const report = JSON.parse(readFileSync(path, 'utf8')) as {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
  numTotalTests: number;
  testResults?: { name: string; status: string; message?: string; assertionResults?: { status: string }[] }[];
};
// A file whose set-up failed (a beforeAll, an import) fails no test but runs none of its own:
// each counts as one failure, or the totals would call a red run green.
const brokenFiles = (report.testResults ?? []).filter(
  (f) => f.status === 'failed' && !(f.assertionResults ?? []).some((a) => a.status === 'failed'),
);
for (const f of brokenFiles) process.stderr.write(`failed before its tests: ${f.name}: ${f.message ?? ''}\n`);
const failed = report.numFailedTests + brokenFiles.length;
const skipped = report.numPendingTests + report.numTodoTests;
process.stdout.write(
  `${report.numPassedTests} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`,
);
process.exit(failed === 0 && report.numPassedTests > 0 ? 0 : 1);
