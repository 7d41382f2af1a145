/**
 * The image runs the operator bundled into one JavaScript module (Dockerfile build stage,
 * hack/build-operator.ts), not the TypeScript the other tests run. These tests build it the same
 * way and run that output through the main job: it imports nothing but Node's own modules and the
 * packages left outside the bundle on purpose, and the bundled operator and observers fail a
 * killed primary over to the standby, DNS included.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPERATOR_EXTERNALS } from '../../hack/build-operator.ts';
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

describe('the bundled operator (what the image runs)', () => {
  it('is one module that loads only Node.js built-ins and the packages left out of the bundle', async () => {
    const out = join(compiled?.dir ?? '', 'operator', 'src');
    expect(filesUnder(out)).toEqual(['main.js']);
    const code = readFileSync(join(out, 'main.js'), 'utf8');
    // Static imports, dynamic imports and require calls with a literal name: what it loads.
    const loaded = new Set(
      [
        ...code.matchAll(
          /(?<![\w$])(?:from|import\s*\(|(?:__)?require\s*\(|load\s*\()\s*(["'`])([^"'`]+)\1/g,
        ),
      ].map((m) => m[2] as string),
    );
    // (A minified template's text can look like a call with a string: only names shaped like a package count.)
    const packageName = /^(@[\w.-]+\/)?[\w.-]+(\/[\w.-]+)*$/;
    const outside = [...loaded].filter(
      (name) =>
        packageName.test(name) &&
        !isBuiltin(name) &&
        !OPERATOR_EXTERNALS.some((e) => (typeof e === 'string' ? e === name : e.test(name))),
    );
    expect(outside).toEqual([]);
    // Each left out resolves from where the image puts node_modules (pg-native: pg asks for it only when told to).
    const resolveFrom = createRequire(compiled?.entry ?? '');
    for (const name of [...loaded].filter((n) => packageName.test(n) && !isBuiltin(n) && n !== 'pg-native'))
      expect(() => resolveFrom.resolve(name), name).not.toThrow();
    // ASCII only: V8 holds a source with one character past Latin-1 at two bytes a character.
    expect(Buffer.byteLength(code)).toBe(code.length);
    // The late loads are still there (and resolve from node_modules): the AWS SDK and client-node.
    expect([...loaded]).toEqual(
      expect.arrayContaining(['@aws-sdk/client-route-53', '@kubernetes/client-node']),
    );
    expect(code).not.toMatch(/(from\s*|import\s*\()\s*["'`][^"'`]+\.ts["'`]/);
    const { stdout } = await promisify(execFile)(process.execPath, [compiled?.entry ?? '', '--version']);
    const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string };
    expect(stdout).toContain(pkg.version);
  });

  it('fails a killed primary over to the standby, DNS included, with the bundled operator and observers', async () => {
    stack = await stackStarter('compiled')({ entry: compiled?.entry ?? '' });
    await stack.waitUntilHealthy();
    await stack.pair.killPrimary();
    const report = await stack.waitForPolicy((st) => st.history?.[0], 'a finished failover');
    expect(report).toMatchObject({ kind: 'Failover', from: 'region-a', to: 'region-b', result: 'Succeeded' });
    expect(await stack.dnsAnswer()).toEqual([STANDBY_ADDRESS]);
    expect(await stack.writablePrimaries()).toEqual(['standby']);
    // The processes ran the bundle: their command lines name its main module.
    expect(stack.operator?.commandLine()).toContain(compiled?.entry);
  });
});
