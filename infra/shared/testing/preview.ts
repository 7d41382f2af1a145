/**
 * What `pulumi up` would do between two runs of a program, from what the mocks recorded: the
 * engine's own rules for a stack whose state is the first run's. A resource only in the second
 * run is created (or imported, with an import id); one only in the first is deleted (forgotten
 * with retainOnDelete; refused while protected); one in both is updated when an input it does not
 * ignore changed. (Whether a provider would replace rather than update is the provider's call:
 * for anything that holds data, any change at all is reported, and the tests allow none.)
 */
import { isDeepStrictEqual } from 'node:util';
import type { RecordedResource } from './pulumi-mocks.ts';

export type ChangeKind =
  | 'create'
  | 'import'
  | 'update'
  | 'forget'
  | 'delete'
  | 'refused'
  | 'unprotect'
  | 'protect';

export interface PlannedChange {
  kind: ChangeKind;
  type: string;
  name: string;
  /** For an update: the inputs that changed. */
  fields?: string[];
}

/** Resource types that hold a database's data. */
export const HOLDS_DATA = new Set([
  'aws:rds/instance:Instance',
  'aws:rds/cluster:Cluster',
  'aws:rds/clusterInstance:ClusterInstance',
  'aws:rds/globalCluster:GlobalCluster',
  'digitalocean:index/databaseCluster:DatabaseCluster',
  'digitalocean:index/databaseReplica:DatabaseReplica',
]);

const key = (r: RecordedResource) => `${r.type}::${r.name}`;

export function preview(before: RecordedResource[], after: RecordedResource[]): PlannedChange[] {
  const old = new Map(before.map((r) => [key(r), r]));
  const next = new Map(after.map((r) => [key(r), r]));
  const changes: PlannedChange[] = [];
  for (const [k, r] of next) {
    const was = old.get(k);
    const at = { type: r.type, name: r.name };
    if (!was) {
      changes.push({ kind: r.options.importId ? 'import' : 'create', ...at });
      continue;
    }
    const ignored = new Set(r.options.ignoreChanges);
    const fields = [...new Set([...Object.keys(was.inputs), ...Object.keys(r.inputs)])].filter(
      (f) => !ignored.has(f) && !isDeepStrictEqual(was.inputs[f], r.inputs[f]),
    );
    if (fields.length) changes.push({ kind: 'update', ...at, fields: fields.sort() });
    if (was.options.protect !== r.options.protect)
      changes.push({ kind: r.options.protect ? 'protect' : 'unprotect', ...at });
  }
  for (const [k, r] of old) {
    if (next.has(k)) continue;
    const kind = r.options.protect ? 'refused' : r.options.retainOnDelete ? 'forget' : 'delete';
    changes.push({ kind, type: r.type, name: r.name });
  }
  return changes;
}

/** The changes that would harm a database: any change to one, except importing, forgetting or (un)protecting. */
export function harmful(changes: PlannedChange[]): PlannedChange[] {
  return changes.filter(
    (c) => HOLDS_DATA.has(c.type) && !['import', 'forget', 'unprotect', 'protect'].includes(c.kind),
  );
}

/** One line for a table: "import Instance payments-us-east-1-e1; update Policy (policy)". */
export function describeChanges(changes: PlannedChange[]): string {
  if (!changes.length) return 'no change';
  return changes
    .map(
      (c) => `${c.kind} ${c.type.split(':').pop()} ${c.name}${c.fields ? ` (${c.fields.join(', ')})` : ''}`,
    )
    .join('; ');
}
