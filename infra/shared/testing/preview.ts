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
  /** For a database: its provider name (RDS identifier, DigitalOcean name). */
  database?: string;
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
const databaseOf = (r: RecordedResource) => {
  if (!HOLDS_DATA.has(r.type)) return {};
  const name = r.inputs.identifier ?? r.inputs.clusterIdentifier ?? r.inputs.name;
  return typeof name === 'string' ? { database: name } : {};
};

export function preview(before: RecordedResource[], after: RecordedResource[]): PlannedChange[] {
  const old = new Map(before.map((r) => [key(r), r]));
  const next = new Map(after.map((r) => [key(r), r]));
  const changes: PlannedChange[] = [];
  for (const [k, r] of next) {
    const was = old.get(k);
    const at = { type: r.type, name: r.name, ...databaseOf(r) };
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
    changes.push({ kind, type: r.type, name: r.name, ...databaseOf(r) });
  }
  return changes;
}

/**
 * The changes that would harm a database or lose track of one: any change to one but an import or
 * (un)protecting, and forgetting one, unless a person retired it or it is a DigitalOcean node
 * forgotten as the cluster it became (same name) is imported.
 */
export function harmful(changes: PlannedChange[], retired: string[] = []): PlannedChange[] {
  const imported = new Set(changes.filter((c) => c.kind === 'import').map((c) => c.database));
  return changes.filter((c) => {
    if (!HOLDS_DATA.has(c.type) || c.kind === 'import' || c.kind === 'unprotect' || c.kind === 'protect')
      return false;
    if (c.kind !== 'forget') return true;
    const becameCluster =
      c.type === 'digitalocean:index/databaseReplica:DatabaseReplica' && imported.has(c.database);
    return !becameCluster && !retired.includes(c.database ?? '');
  });
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
