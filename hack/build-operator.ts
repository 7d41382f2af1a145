/**
 * `make build`, and the image's build stage: the operator as one JavaScript module,
 * `<out>/operator/src/main.js`, bundled from operator/src/main.ts with the packages it loads at
 * start (types stripped, only the code reachable from main kept, whitespace and comments gone,
 * names kept so stack traces still read).
 *
 * Against one compiled module per source file loaded by Node.js one by one (~480 modules: undici,
 * zod, pg, pino and ours), an idle operator starts with ~6 MiB less RSS and ~0.25 s less CPU
 * (figures in docs/architecture.md). What it loads late stays outside the bundle and comes from
 * node_modules as before: the AWS SDK (aws-sdk.ts `require`s it when a policy names AWS) and
 * client-node (kube-access.ts imports it for a kubeconfig its own reader does not take).
 *
 *   node hack/build-operator.ts [out [sources]]   (defaults: dist/build, this repository)
 *
 * The main module stays at operator/src/main.js, so config.ts's `../../package.json` and the
 * `require`s resolve from the same places as before: a package.json and node_modules beside
 * operator/ (in the image, /app).
 */
import { join, resolve } from 'node:path';
import { build } from 'rolldown';

export const OPERATOR_EXTERNALS: (string | RegExp)[] = [
  /^@aws-sdk\//,
  '@kubernetes/client-node',
  // pg's optional native binding, which the operator never asks for.
  'pg-native',
];

/** Bundles `<sources>/operator/src/main.ts` into `<out>/operator/src/main.js`; returns that path. */
export async function buildOperator(
  out: string,
  sources = resolve(import.meta.dirname, '..'),
): Promise<string> {
  const dir = join(out, 'operator', 'src');
  await build({
    input: join(sources, 'operator', 'src', 'main.ts'),
    platform: 'node',
    external: OPERATOR_EXTERNALS,
    // Any warning stops the build (an import it could not resolve would fail only at run time).
    onLog(level, log, handler) {
      if (level === 'warn') throw new Error(`rolldown: ${log.message}`);
      handler(level, log);
    },
    output: {
      dir,
      format: 'esm',
      // Names stay: a stack trace in a log says which function failed. Mangling them would save
      // another ~1.5 MiB, not worth an unreadable trace on the worst day.
      minify: { compress: true, mangle: false, codegen: { removeWhitespace: true } },
      // V8 keeps a module's source for as long as it runs, one byte a character if all of it is
      // Latin-1, two otherwise: one `×` in a description held the whole 2.2 MB twice over.
      charset: 'ascii',
      // Nor in a comment (license headers included: the image keeps each package, its license
      // with it, in node_modules).
      comments: false,
    },
  });
  return join(dir, 'main.js');
}

if (import.meta.main) {
  const [out = 'dist/build', sources] = process.argv.slice(2);
  const entry = await buildOperator(resolve(out), ...(sources ? [resolve(sources)] : []));
  process.stdout.write(`${entry}\n`);
}
