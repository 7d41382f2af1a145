/**
 * `make generate`: writes crds/*.yaml from the zod schemas. The files are committed; a test fails
 * when they drift from the source.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump } from 'js-yaml';
import { customResourceDefinition, type KindDefinition } from './crd.ts';
import { kinds } from './v1alpha1/index.ts';

// A document marker first: `helm show crds` and `cat crds/*.yaml` concatenate the files as they
// are, and kubectl must still read one CRD per document.
export const CRD_HEADER = '---\n# Generated from operator/src/api by `make generate`. Do not edit.\n';

export function crdFileName(def: KindDefinition): string {
  return `${def.group}_${def.plural}.yaml`;
}

export function renderCrd(def: KindDefinition): string {
  return CRD_HEADER + dump(customResourceDefinition(def), { lineWidth: -1, noRefs: true });
}

if (import.meta.main) {
  const dir = process.argv[2] ?? 'crds';
  mkdirSync(dir, { recursive: true });
  for (const def of kinds) {
    writeFileSync(join(dir, crdFileName(def)), renderCrd(def));
    process.stdout.write(`wrote ${join(dir, crdFileName(def))}\n`);
  }
}
