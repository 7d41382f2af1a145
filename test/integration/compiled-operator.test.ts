/**
 * The image runs the operator compiled to JavaScript (Dockerfile build stage, tsconfig.build.json),
 * not the TypeScript the other tests run. These tests compile it the same way and run that output
 * through the main job: every module is there and nothing imports a `.ts` file, and the compiled
 * operator and observers fail a killed primary over to the standby, DNS included.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CompiledOperator, compileOperator } from '../harness/compiled.ts';
import { type FailoverStack, STANDBY_ADDRESS } from '../harness/failover-stack.ts';
import { stackStarter } from './failover-fixtures.ts';

const repo = join(import.meta.dirname, '..', '..');
let compiled: CompiledOperator | undefined;
let stack: FailoverStack | undefined;

beforeAll(async () => {
  compiled = await compileOperator();
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  compiled?.remove();
});

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)));
}

describe('the compiled operator (what the image runs)', () => {
  it('has a JavaScript module for every source module, and none of them imports a .ts file', async () => {
    const out = join(compiled?.dir ?? '', 'operator', 'src');
    const sources = filesUnder(join(repo, 'operator', 'src'))
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.endsWith('.fixtures.ts'))
      .map((f) => f.replace(/\.ts$/, '.js'))
      .sort();
    expect(filesUnder(out).sort()).toEqual(sources);
    const importsTs = sources.filter((f) =>
      /(from\s+|import\s*\()\s*['"][^'"]+\.ts['"]/.test(readFileSync(join(out, f), 'utf8')),
    );
    expect(importsTs).toEqual([]);
    const { stdout } = await promisify(execFile)(process.execPath, [compiled?.entry ?? '', '--version']);
    const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string };
    expect(stdout).toContain(pkg.version);
  });

  it('fails a killed primary over to the standby, DNS included, with the compiled operator and observers', async () => {
    stack = await stackStarter('compiled')({ entry: compiled?.entry ?? '' });
    await stack.waitUntilHealthy();
    await stack.pair.killPrimary();
    const report = await stack.waitForPolicy((st) => st.history?.[0], 'a finished failover');
    expect(report).toMatchObject({ kind: 'Failover', from: 'region-a', to: 'region-b', result: 'Succeeded' });
    expect(await stack.dnsAnswer()).toEqual([STANDBY_ADDRESS]);
    expect(await stack.writablePrimaries()).toEqual(['standby']);
    // The processes ran the compiled modules: their command lines name the compiled main.
    expect(stack.operator?.commandLine()).toContain(compiled?.entry);
  });
});
