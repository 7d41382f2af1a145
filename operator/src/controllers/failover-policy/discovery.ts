/**
 * Discovery: who is primary, at which epoch, learned from the world and never assumed from spec.
 *
 * `spec.primary` only says which cluster was primary when the policy was first created. After a
 * failover, a policy recreated from Git, restored by Velero or moved to another namespace starts
 * with an empty status; taking `spec.primary` then would fence the database that is really the
 * primary. The epoch is kept where it survives: in every database's heartbeat row (a standby
 * replays its primary's) and in the ownership TXT record beside the DNS record. The writable
 * database at the highest epoch is the primary; DNS breaks ties and names a primary that is
 * unreachable (or fenced) right now. A fenced database's epoch counts for nothing: it says an
 * operation began, not that it promoted anyone. Epoch 0 everywhere means no failover ever happened: `spec.primary` is
 * then still the truth.
 */
import { afterDnsCheck, type DnsCheck, dnsCheckDue } from './dns-check.ts';
import type { ClusterFacts, DecideInput, DnsFacts } from './facts.ts';
import { policyClusters, writable } from './facts.ts';
import { promotes } from './operation.ts';

export type Discovery =
  | { kind: 'Found'; primary: string; epoch: number; message: string }
  | { kind: 'Unknown'; reason: 'Waiting' | 'Ambiguous' | 'NoPrimary'; message: string };

const unknown = (reason: 'Waiting' | 'Ambiguous' | 'NoPrimary', message: string): Discovery => ({
  kind: 'Unknown',
  reason,
  message,
});

/** The highest epoch status knows of: the recorded one, or the one an operation is establishing. */
export function heldEpoch(input: Pick<DecideInput, 'status'>): number {
  const { status } = input;
  return Math.max(status.epoch ?? 0, status.currentOperation?.epoch ?? 0);
}

/**
 * The epoch a database vouches for: the one it was primary at, or a standby's primary's. A fence
 * mark (`fencedEpoch`) says only that an operation began, not that anything was promoted at that
 * epoch (a switchover may have stopped between fencing and promoting), so it does not count.
 */
export function establishedEpoch(f: ClusterFacts | undefined): number | undefined {
  return f?.reachable ? f.heartbeatEpoch : undefined;
}

/** Takes writes and is not marked as superseded (an EpochOnly fence leaves it writable). */
const unmarkedWriter = (f: ClusterFacts | undefined) => writable(f) && f?.fencedEpoch === undefined;

/** Clusters (and DNS) holding an epoch newer than status knows: someone promoted without us. */
export function newerEpochs(input: DecideInput): string[] {
  const held = heldEpoch(input);
  const op = input.status.currentOperation;
  const found = policyClusters(input.spec).flatMap((n) => {
    const e = establishedEpoch(input.clusters[n]);
    if (e !== undefined && e > held) return [`${n}'s heartbeat holds epoch ${e}`];
    // The epoch a promotion in flight is establishing, already held by another writer: someone
    // else promoted at it (after a lost status), and this operation would reuse it. Not for a
    // Fence or a Reprotect: they run at the current epoch, and a writer there is what a Fence is for.
    if (
      op &&
      promotes(op.kind) &&
      n !== op.to &&
      e !== undefined &&
      e >= op.epoch &&
      unmarkedWriter(input.clusters[n])
    )
      return [`${n} takes writes at epoch ${e}, the epoch ${op.id} is establishing`];
    return [];
  });
  const dns = input.dns;
  if (dns && !dns.error && dns.owner === input.dnsOwner && (dns.epoch ?? 0) > held)
    found.push(`the DNS ownership record holds epoch ${dns.epoch}`);
  return found;
}

/** Whether observe should read the DNS record for discovery in this reconcile. */
export function discoveryNeedsDns(input: DecideInput): boolean {
  return input.status.activePrimary === undefined || newerEpochs(input).length > 0;
}

/**
 * Whether discovery may keep a read between reconciles: while status names no primary, or a
 * newer epoch is in the world with no operation in flight (one in flight stops on a fresh read).
 */
export function discoveryMayKeep(input: DecideInput): boolean {
  if (input.status.activePrimary === undefined) return true;
  return !input.status.currentOperation && newerEpochs(input).length > 0;
}

/**
 * A read of the DNS record kept while a policy discovers its primary: status names none, or a
 * newer epoch is in the world with nothing in flight (two writers there leave discovery unsettled
 * until a person acts). A read that left discovery unsettled (a database out of sight, writers
 * the record does not tell apart) settles nothing at the next probe either, unless a database
 * changed or someone changed the record. Read again every probe, 2,000 policies whose databases
 * are all out of reach read 400 records a second; Route 53 allows 5 a second per account. So it
 * is scheduled as the check between operations is (afterDnsCheck): a read that answered is read
 * again in five minutes, one that failed (the provider throttling, say) after a second, backing
 * off to five minutes.
 */
export interface DiscoveryRead extends DnsCheck {
  dns: DnsFacts;
  /** Which record was read, and from where: a read of another (the provider changed) is not reused. */
  record: string;
}

/** The record, and where it is read from (a changed provider, credentials or server: read anew). */
const recordOf = (spec: DecideInput['spec']) =>
  `${spec.dns.type} ${spec.dns.name} ${spec.dns.zone} ${JSON.stringify(spec.dns.provider)}`;

/**
 * Whether discovery reads the record in this reconcile, whether that read may wait for the read
 * budget, and the kept read discovery uses when it does not read (none when that could settle
 * discovery). No read before every database is probed: discovery waits for them whatever the
 * record says (a restart does not read thousands of records in its first second). The kept read
 * is reused until it is due, and only while discovery with it stays unsettled: a database that
 * changes so that the kept read would name a primary brings a fresh read at once, and a primary
 * is only ever found on a fresh read. Only a kept read's re-read may wait: the first read and one
 * that would settle discovery do not (a policy without a primary cannot fail over).
 */
export function discoveryDns(
  input: DecideInput,
  kept: DiscoveryRead | undefined,
): { read: boolean; canWait: boolean; kept?: DnsFacts } {
  if (unprobedOf(input).length) return { read: false, canWait: true };
  if (!kept || kept.record !== recordOf(input.spec)) return { read: true, canWait: false };
  if (discoverPrimary({ ...input, dns: kept.dns }).kind !== 'Unknown') return { read: true, canWait: false };
  return { read: dnsCheckDue(kept, input.now), canWait: true, kept: { ...kept.dns, kept: true } };
}

/** What to keep after a fresh read that left discovery unsettled: the read, and when it is due. */
export function afterDiscoveryRead(
  kept: DiscoveryRead | undefined,
  input: DecideInput & { dns: DnsFacts },
  random: () => number,
): DiscoveryRead {
  const record = recordOf(input.spec);
  const last = kept?.record === record ? kept : undefined;
  const answered = input.dns.error === undefined;
  return { ...afterDnsCheck(last, answered, input.now, random), dns: input.dns, record };
}

const unprobedOf = (input: DecideInput) =>
  policyClusters(input.spec).filter((n) => input.clusters[n]?.unprobed);

function clusterWithTarget(input: DecideInput, value: string): string | undefined {
  const v = value.toLowerCase();
  return policyClusters(input.spec).find((n) => input.dnsTargets?.[n]?.toLowerCase() === v);
}

/**
 * Without the DNS record (not read yet, or the provider failing) only the plainest world is
 * settled: every database reachable, and exactly one writer at the newest epoch any holds. Then no
 * database out of sight can hold a newer one; a writer at an older epoch was superseded by the
 * promotion that made the newer one (an old primary back unfenced), so it is a stray to fence, not
 * a reason to leave both writing for as long as the DNS provider fails.
 */
function withoutDns(input: DecideInput, names: string[]): Discovery {
  const { clusters, dns } = input;
  const why = dns?.error
    ? `the DNS record cannot be read (${dns.error.reason}): ${dns.error.message}`
    : 'waiting for a read of the DNS record';
  if (!names.every((n) => clusters[n]?.reachable))
    return unknown('Waiting', `${why}; not every database is reachable`);
  const epochOf = (n: string) => establishedEpoch(clusters[n]) ?? 0;
  const top = Math.max(...names.map(epochOf));
  const writers = names.filter((n) => unmarkedWriter(clusters[n]));
  const atTop = writers.filter((n) => epochOf(n) === top);
  const [only] = atTop;
  if (atTop.length !== 1 || !only) return unknown('Waiting', why);
  const older = writers.filter((n) => n !== only);
  const others = older.length
    ? `${older.join(', ')} also accept${older.length === 1 ? 's' : ''} writes at an older epoch`
    : `it is the only database that accepts writes`;
  return {
    kind: 'Found',
    primary: only,
    epoch: top,
    message: `${only} accepts writes at epoch ${top}, the newest any database holds; ${others}; every database is reachable (${why})`,
  };
}

/** Who is primary according to the world. Pure; never guesses. */
export function discoverPrimary(input: DecideInput): Discovery {
  const { spec, clusters, dns } = input;
  const names = policyClusters(spec);
  const unprobed = unprobedOf(input);
  if (unprobed.length) return unknown('Waiting', `waiting for the first probe of ${unprobed.join(', ')}`);
  if (!dns || dns.error) return withoutDns(input, names);
  const ours = dns.owner !== undefined && dns.owner === input.dnsOwner;
  const dnsEpoch = ours ? (dns.epoch ?? 0) : undefined;
  const dnsPrimary = ours && dns.value !== undefined ? clusterWithTarget(input, dns.value) : undefined;
  const epochOf = (n: string) => establishedEpoch(clusters[n]) ?? 0;
  const top = Math.max(dnsEpoch ?? 0, ...names.map(epochOf));
  const atTop = names.filter((n) => unmarkedWriter(clusters[n]) && epochOf(n) === top);
  const [only] = atTop;
  if (atTop.length === 1 && only)
    return { kind: 'Found', primary: only, epoch: top, message: `${only} accepts writes at epoch ${top}` };
  if (atTop.length > 1) {
    if (dnsPrimary && atTop.includes(dnsPrimary) && dnsEpoch === top)
      return {
        kind: 'Found',
        primary: dnsPrimary,
        epoch: top,
        message: `${atTop.join(' and ')} accept writes at epoch ${top}; the DNS record names ${dnsPrimary}`,
      };
    return unknown(
      'Ambiguous',
      `${atTop.join(' and ')} all accept writes at epoch ${top} and DNS does not settle it: fence all but the real primary by hand (see docs/runbooks)`,
    );
  }
  if (dnsPrimary && dnsEpoch === top) {
    // Only when every other database is in sight: one out of sight may have been promoted at a
    // newer epoch that never reached DNS (a lost status between promoting and re-pointing).
    const outOfSight = names.filter((n) => n !== dnsPrimary && !clusters[n]?.reachable);
    if (outOfSight.length)
      return unknown(
        'Waiting',
        `the DNS record names ${dnsPrimary} at epoch ${top}, but ${outOfSight.join(', ')} cannot be reached and may hold a newer epoch`,
      );
    return {
      kind: 'Found',
      primary: dnsPrimary,
      epoch: top,
      message: `the DNS record names ${dnsPrimary} at epoch ${top}; no database takes writes at that epoch now`,
    };
  }
  if (top === 0 && dnsEpoch === undefined)
    return {
      kind: 'Found',
      primary: spec.primary,
      epoch: 0,
      message: `no failover has happened (epoch 0 everywhere, no DNS record of ours): ${spec.primary} from spec`,
    };
  return unknown(
    'NoPrimary',
    `epoch ${top} is the newest in the world, but no database accepts writes at it and the DNS record names none`,
  );
}
