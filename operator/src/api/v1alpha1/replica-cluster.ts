/**
 * ReplicaCluster: one PostgreSQL endpoint in one region, how to reach it, how its provider
 * identifies it, and the DNS value clients should use when it is the primary.
 */
import { z } from 'zod';
import { withRules } from '../cel.ts';
import {
  awsRegion,
  conditions,
  credentialsSecretRef,
  discardedWal,
  hostOrAddress,
  httpUrl,
  mapOf,
  resourceObject,
  secretKeyRef,
  shortName,
  timestamp,
} from './common.ts';

const awsCredentials = secretKeyRef(
  'Secret key holding AWS credentials as a JSON object {accessKeyId, secretAccessKey, sessionToken?}. Omit to use the pod identity (IRSA, instance profile).',
).optional();

const awsEndpoint = httpUrl(
  'AWS API endpoint to use instead of the public one (VPC endpoints, testing).',
).optional();

export const selfManagedProvider = z
  .strictObject({
    type: z.literal('SelfManaged').describe('PostgreSQL the team runs itself, with streaming replication.'),
  })
  .describe('Self-managed PostgreSQL: promotion with pg_promote(), fencing through SQL.');

export const awsRdsProvider = z
  .strictObject({
    type: z.literal('AwsRds').describe('An Amazon RDS for PostgreSQL instance or cross-region read replica.'),
    awsRds: z
      .object({
        region: awsRegion('AWS region of this instance.'),
        dbInstanceIdentifier: z
          .string()
          .min(1)
          .max(63)
          .regex(/^[a-zA-Z]([a-zA-Z0-9]|-[a-zA-Z0-9])*$/, 'must be an RDS DB instance identifier')
          .describe('The RDS DBInstanceIdentifier.'),
        credentialsSecretRef: awsCredentials,
        endpointUrl: awsEndpoint,
      })
      .describe('How to find the RDS instance.'),
  })
  .describe('Amazon RDS: promotion with PromoteReadReplica.');

export const auroraGlobalProvider = z
  .strictObject({
    type: z.literal('AuroraGlobal').describe('A member cluster of an Aurora global database.'),
    auroraGlobal: z
      .object({
        region: awsRegion('AWS region of this member cluster.'),
        globalClusterIdentifier: z
          .string()
          .min(1)
          .max(63)
          .regex(/^[a-zA-Z][a-zA-Z0-9-]*$/, 'must be an Aurora global cluster identifier')
          .describe('The Aurora GlobalClusterIdentifier.'),
        dbClusterIdentifier: z
          .string()
          .min(1)
          .max(63)
          .regex(/^[a-zA-Z][a-zA-Z0-9-]*$/, 'must be a DB cluster identifier')
          .describe('The DBClusterIdentifier of this member.'),
        credentialsSecretRef: awsCredentials,
        endpointUrl: awsEndpoint,
      })
      .describe('How to find the Aurora member cluster.'),
  })
  .describe('Aurora global database: switchover or failover of the global cluster.');

export const digitalOceanProvider = z
  .strictObject({
    type: z.literal('DigitalOcean').describe('A DigitalOcean managed PostgreSQL cluster or read-only node.'),
    digitalOcean: z
      .object({
        databaseId: z
          .string()
          .regex(
            /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
            'must be a database cluster UUID',
          )
          .describe('UUID of the managed database cluster (the primary cluster, for a replica too).'),
        replicaName: z
          .string()
          .min(1)
          .max(63)
          .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a read-only node name')
          .optional()
          .describe('Name of the read-only node when this cluster is a replica; omit for the primary.'),
        tokenSecretRef: secretKeyRef('Secret key holding a DigitalOcean API token with database scope.'),
        apiUrl: httpUrl('DigitalOcean API base URL to use instead of the public one (testing).').optional(),
      })
      .describe('How to find the DigitalOcean database.'),
  })
  .describe('DigitalOcean managed PostgreSQL: promotion of a read-only node.');

export const databaseProvider = z
  .discriminatedUnion('type', [
    selfManagedProvider,
    awsRdsProvider,
    auroraGlobalProvider,
    digitalOceanProvider,
  ])
  .describe('Which kind of database this is; type selects the block of identifiers that must be set.');

export type DatabaseProvider = z.infer<typeof databaseProvider>;

export const connection = z
  .object({
    host: hostOrAddress('Host name or address the operator and observers connect to.'),
    port: z.number().int().min(1).max(65535).default(5432).describe('TCP port.'),
    database: z.string().min(1).max(63).default('postgres').describe('Database to connect to.'),
    sslMode: z
      .enum(['disable', 'require', 'verify-ca', 'verify-full'])
      .default('require')
      .describe('TLS mode, as libpq sslmode.'),
    credentialsSecretRef: credentialsSecretRef(
      'Secret with the username and password of a role allowed to read replication status and call pg_promote().',
    ),
  })
  .describe('How to connect to the database with SQL.');

export const appEndpoint = z
  .object({
    name: shortName('A name for this endpoint, unique within the cluster.'),
    url: httpUrl('URL probed with GET; any 2xx or 3xx answer counts as healthy.'),
  })
  .describe(
    'An application endpoint in this region, checked with the database by the operator and every observer; a policy can require it healthy before failing over to this region.',
  );

export const replicaClusterSpec = withRules(
  z
    .object({
      region: shortName('Region this cluster runs in, such as us-east-1 or ams3. Immutable.'),
      provider: withRules(databaseProvider, [
        {
          rule: 'self.type == oldSelf.type',
          message: 'provider.type is immutable; create a new ReplicaCluster instead',
          fieldPath: '.type',
        },
      ]),
      connection,
      dnsTarget: hostOrAddress(
        'The value the policy DNS record points at when this cluster is primary: an address for A/AAAA records, a hostname for CNAME.',
      ),
      appEndpoints: mapOf(appEndpoint, 'name', 8)
        .optional()
        .describe('Application endpoints in this region to probe alongside the database.'),
    })
    .describe('Desired state of a ReplicaCluster.'),
  [{ rule: 'self.region == oldSelf.region', message: 'region is immutable', fieldPath: '.region' }],
);

export const clusterRole = z.enum(['Primary', 'Standby', 'Fenced', 'Unknown']);
export const clusterHealth = z.enum(['Healthy', 'Degraded', 'Unreachable', 'Unknown']);

const lsnText = (description: string) =>
  z
    .string()
    .max(32)
    .regex(/^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/, 'must be an LSN such as 0/3000148')
    .describe(description);

/**
 * What the database agent (`--mode=agent`, beside a self-managed PostgreSQL) reports: the server
 * as it sees it from the data directory, what a rejoin would discard, and the local step it was
 * asked to carry out. Written by the agent only, through the status subresource.
 */
export const agentReport = z
  .object({
    name: z.string().min(1).max(253).describe('The agent (host or pod name).'),
    reportedAt: timestamp('When the agent last reported; an old time means the agent is gone.'),
    dataDirectory: z.string().max(1024).describe('The data directory it manages.'),
    systemIdentifier: z
      .string()
      .max(32)
      .optional()
      .describe('The database system identifier from pg_control; every member of one cluster shares it.'),
    server: z
      .enum(['Primary', 'Standby', 'Stopped', 'Unknown'])
      .describe('The local server: running as a primary, running in recovery, or stopped.'),
    timeline: z.number().int().min(0).optional().describe('The local timeline.'),
    walEnd: lsnText('Where the local WAL ends (a running primary: its insert position).').optional(),
    rewindable: z
      .boolean()
      .optional()
      .describe('Whether pg_rewind can work on this data directory (wal_log_hints or data checksums).'),
    problem: z
      .object({
        reason: z
          .string()
          .max(64)
          .describe('A CamelCase reason: WrongDataDirectory, PermissionDenied, ForeignCluster, ...'),
        message: z.string().max(1024).describe('What is wrong and what to fix.'),
      })
      .optional()
      .describe('Why the agent refuses to act on this database, while it does.'),
    divergence: z
      .object({
        primary: z.string().max(253).describe('The ReplicaCluster it was compared with: the active primary.'),
        assessedAt: timestamp('When it was compared.'),
        relation: z
          .enum(['Following', 'Behind', 'Diverged', 'Unrelated'])
          .describe(
            "Following: already a standby of the primary. Behind: its WAL is a prefix of the primary's, a restart as a standby suffices. Diverged: it wrote WAL the primary never received; a rewind discards it. Unrelated: another history (or system identifier); only a re-clone helps.",
          ),
        forkLsn: lsnText("Where the primary's history left this database's timeline.").optional(),
        localTimeline: z.number().int().min(0).optional().describe('The timeline the local WAL ends on.'),
        localEndLsn: lsnText('Where the local WAL ends.').optional(),
        divergedBytes: z
          .number()
          .int()
          .min(0)
          .describe('WAL bytes written here after the fork: what a rewind would discard.'),
        divergedTransactions: z
          .number()
          .int()
          .min(0)
          .optional()
          .describe(
            'Transactions committed in that range, counted with pg_waldump; absent when it cannot be told.',
          ),
        message: z.string().max(1024).optional().describe('The comparison in words.'),
      })
      .optional()
      .describe('This former primary compared with the active primary: what a rejoin would discard.'),
    task: z
      .object({
        operationId: z.string().min(1).max(128).describe('The operation that asked for it.'),
        action: z
          .enum(['Demote', 'Rejoin'])
          .describe('Demote: a planned switchover. Rejoin: after a failover.'),
        phase: z.enum(['Running', 'Succeeded', 'Failed']).describe('Where it stands.'),
        method: z
          .enum(['Restart', 'Rewind', 'Reclone'])
          .optional()
          .describe('How the server became a standby: a restart, pg_rewind, or a fresh pg_basebackup.'),
        stoppedLsn: lsnText(
          'Demote: the shutdown checkpoint, the last WAL the old primary wrote.',
        ).optional(),
        prepared: z
          .boolean()
          .optional()
          .describe(
            'Rejoin: the data directory was rewound or re-cloned; only the restart as a standby is left.',
          ),
        keptDataDirectory: z
          .string()
          .max(1024)
          .optional()
          .describe('Re-clone: where the old data directory was moved (never deleted).'),
        discarded: discardedWal(
          'Rejoin: what the rewind or re-clone discards, measured with the server stopped.',
        ).optional(),
        message: z.string().max(1024).optional().describe('What it did, or why it failed.'),
        startedAt: timestamp('When it started.'),
        finishedAt: timestamp('When it succeeded or failed.').optional(),
      })
      .optional()
      .describe('The last local step the operator asked of this agent.'),
    drillCopy: z
      .object({
        drillId: z.string().min(1).max(128).describe('The isolated drill the copy is for.'),
        phase: z
          .enum(['Copying', 'Serving', 'Removed', 'Failed'])
          .describe(
            'Copying: pg_basebackup from the local standby, then start and promote. Serving: promoted, accepting writes on the spare port. Removed: its server stopped and its directory deleted. Failed: see message (what was made is still removed).',
          ),
        port: z.number().int().min(1).max(65535).describe('The spare port the copy listens on.'),
        directory: z.string().max(1024).describe('Where the copy is (beside the data directory).'),
        copyBytes: z.number().int().min(0).optional().describe('The size of the copy.'),
        copySeconds: z.number().min(0).optional().describe('How long pg_basebackup took.'),
        copiedAt: timestamp('When pg_basebackup finished.').optional(),
        promotionSeconds: z
          .number()
          .min(0)
          .optional()
          .describe('From pg_promote() until the copy accepted writes.'),
        newestHeartbeatAt: timestamp(
          "The newest heartbeat row in the copy (the primary's written_at): how fresh the standby's data was.",
        ).optional(),
        message: z.string().max(1024).optional().describe('What it did, or why it failed.'),
        startedAt: timestamp('When the copy started.'),
        finishedAt: timestamp('When it was removed, or failed.').optional(),
      })
      .optional()
      .describe(
        "An isolated drill's throwaway copy of this standby (spec.drills.mode: Isolated on the policy), while it exists and after.",
      ),
    peerAddress: z
      .string()
      .max(261)
      .optional()
      .describe(
        'host:port where the other agents of the policy ask this one whether its database was promoted (--peer-address).',
      ),
    lease: z
      .object({
        state: z
          .enum(['Holding', 'Failsafe', 'SelfFenced', 'Released'])
          .describe(
            "Holding: renews the primary Lease. Failsafe: cannot renew it, but every standby agent vouched that none of them was promoted, so the primary goes on. SelfFenced: could do neither before the Lease expired (or the operator replaces it), and fenced its own database. Released: no longer the primary's agent.",
          ),
        epoch: z.number().int().min(0).describe('The epoch it holds (or held) the Lease at.'),
        confirmedAt: timestamp('The last renewal or vouching round that succeeded.').optional(),
        fencedAt: timestamp('SelfFenced: when it fenced its database.').optional(),
        fenceSeconds: z
          .number()
          .min(0)
          .optional()
          .describe('SelfFenced: from the last confirmation until the database refused writes.'),
        operationId: z
          .string()
          .max(128)
          .optional()
          .describe('SelfFenced because an operation replaces this primary: its id.'),
        fenceOwed: z
          .boolean()
          .optional()
          .describe(
            'SelfFenced while its database was not running: it takes no writes, so it counts as fenced, and it is fenced the moment it runs (a restarted agent too).',
          ),
        message: z.string().max(1024).optional().describe('Why, in words.'),
      })
      .optional()
      .describe('The primary Lease, as the agent beside the primary keeps it.'),
    vouch: z
      .object({
        primary: z.string().max(253).describe('The primary it answers for.'),
        epoch: z.number().int().min(0).describe("The primary's epoch."),
        withholding: z
          .boolean()
          .describe(
            "True: it tells the primary's agent it can no longer vouch (the primary is suspected, or an operation replaces it), so that agent fences once its Lease runs out.",
          ),
        since: timestamp('When it started withholding (or vouching), continuously since.'),
        operationId: z
          .string()
          .max(128)
          .optional()
          .describe(
            'The operation replacing the primary that it has seen; it never vouches for that primary again.',
          ),
        reason: z.string().max(512).optional().describe('Why it withholds.'),
      })
      .optional()
      .describe(
        "A standby agent's answer to the primary's agent, as the operator must know it before promoting.",
      ),
  })
  .describe('The database agent beside this cluster, when one runs.');

export type AgentReport = z.infer<typeof agentReport>;

export const replicaClusterStatus = z
  .object({
    observedGeneration: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('The .metadata.generation last acted on.'),
    role: clusterRole
      .optional()
      .describe('Observed role: Primary, Standby, Fenced (read-only by the operator) or Unknown.'),
    health: clusterHealth
      .optional()
      .describe('Observed health of the database and its application endpoints.'),
    replicationLagBytes: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('For a standby: WAL bytes received by the primary but not yet replayed here.'),
    replicationLagSeconds: z
      .number()
      .min(0)
      .optional()
      .describe('For a standby: age of the newest primary heartbeat replayed here.'),
    timeline: z.number().int().min(0).optional().describe('PostgreSQL timeline ID.'),
    lsn: z
      .string()
      .max(32)
      .optional()
      .describe('Current WAL position: write LSN on a primary, replay LSN on a standby.'),
    lastObservedTime: timestamp(
      'When the probe this status reports was taken. Status is written when what it says changes; a Healthy cluster that stays the same is not rewritten, one that is not Healthy every 5 minutes.',
    ).optional(),
    lastReachableTime: timestamp('When a probe last reached the database.').optional(),
    databaseId: z
      .string()
      .max(253)
      .optional()
      .describe(
        "The provider API's id of a database the spec does not name exactly: the UUID of the DigitalOcean cluster a read-only node was promoted into. For infrastructure code to adopt it (kubectl failover export --pulumi).",
      ),
    lagObservedTime: timestamp(
      'When the replication lag above was last measured with the primary reachable.',
    ).optional(),
    consecutiveProbeFailures: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('Probes in a row that could not reach the database; reset by one success.'),
    epoch: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('Failover epoch in the heartbeat row this database holds: the epoch it was primary at.'),
    fencedEpoch: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('While this database is fenced or marked: the epoch of the operation that did it.'),
    appEndpoints: z
      .array(
        z
          .object({
            name: shortName('The endpoint name from spec.appEndpoints.'),
            healthy: z.boolean().describe('Whether the last GET answered 2xx or 3xx in time.'),
            statusCode: z
              .number()
              .int()
              .min(100)
              .max(599)
              .optional()
              .describe('The HTTP status of the answer.'),
            reason: z
              .string()
              .max(64)
              .optional()
              .describe('Why it is unhealthy: HttpStatus, Timeout, Unreachable, TlsFailed.'),
          })
          .describe('The last check of one application endpoint.'),
      )
      .max(8)
      .optional()
      .describe('The last check of each application endpoint in spec.appEndpoints, by the operator.'),
    agent: agentReport.optional(),
    conditions: conditions.optional(),
  })
  .describe('Observed state of a ReplicaCluster, written by the operator (agent: by the database agent).');

export const replicaCluster = resourceObject('ReplicaCluster', replicaClusterSpec, replicaClusterStatus);

export type ReplicaClusterSpec = z.infer<typeof replicaClusterSpec>;
export type ReplicaClusterStatus = z.infer<typeof replicaClusterStatus>;
export type ReplicaCluster = z.infer<typeof replicaCluster>;
