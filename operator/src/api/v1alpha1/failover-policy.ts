/**
 * FailoverPolicy: binds a primary and its standbys to a DNS record and says when and how the
 * operator may move the record: detection, the RPO budget, fencing, drills and manual requests.
 */
import { z } from 'zod';
import { withRules } from '../cel.ts';
import {
  awsRegion,
  conditions,
  discardedWal,
  dnsName,
  httpUrl,
  objectName,
  resourceObject,
  secretKeyRef,
  setOf,
  shortName,
  timestamp,
} from './common.ts';
import { CRON_PATTERN } from './cron.ts';

const route53Provider = z
  .strictObject({
    type: z.literal('Route53').describe('Amazon Route 53.'),
    route53: z
      .object({
        hostedZoneId: z
          .string()
          .min(1)
          .max(32)
          .regex(/^[A-Z0-9]+$/, 'must be a Route 53 hosted zone ID, like Z0123456789ABCDEFGHIJ')
          .describe('ID of the hosted zone that holds the record.'),
        region: awsRegion('Region for the Route 53 API client.').default('us-east-1'),
        credentialsSecretRef: secretKeyRef(
          'Secret key holding AWS credentials as JSON {accessKeyId, secretAccessKey, sessionToken?}. Omit to use the pod identity.',
        ).optional(),
        endpointUrl: httpUrl('Route 53 API endpoint to use instead of the public one (testing).').optional(),
      })
      .describe('Route 53 settings.'),
  })
  .describe('Route 53: changes are compare-and-swap (a DELETE of the old value and a CREATE in one batch).');

const digitalOceanDns = z
  .strictObject({
    type: z.literal('DigitalOcean').describe('DigitalOcean DNS.'),
    digitalOcean: z
      .object({
        tokenSecretRef: secretKeyRef('Secret key holding a DigitalOcean API token with domain scope.'),
        apiUrl: httpUrl('DigitalOcean API base URL to use instead of the public one (testing).').optional(),
      })
      .describe('DigitalOcean DNS settings.'),
  })
  .describe('DigitalOcean domains: the record is re-read and checked before each change.');

const nameserver = z
  .string()
  .min(1)
  .max(260)
  .regex(/^[a-z0-9.:-]+(:[0-9]{1,5})?$/, 'must be host or host:port')
  .describe('A name server as host or host:port (port 53 when omitted).');

const rfc2136Provider = z
  .strictObject({
    type: z
      .literal('RFC2136')
      .describe('Any DNS server that accepts RFC 2136 dynamic updates (BIND, Knot, PowerDNS).'),
    rfc2136: z
      .object({
        server: nameserver.describe('The primary name server that accepts updates, as host or host:port.'),
        tsig: z
          .object({
            keyName: z
              .string()
              .min(1)
              .max(253)
              .regex(
                /^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$/,
                'must be a TSIG key name such as failover-key or key.example.com',
              )
              .describe('Name of the TSIG key, as configured on the server.'),
            algorithm: z
              .enum(['hmac-sha256', 'hmac-sha384', 'hmac-sha512'])
              .default('hmac-sha256')
              .describe('TSIG algorithm.'),
            secretRef: secretKeyRef('Secret key holding the base64 TSIG secret.'),
          })
          .describe('TSIG key that signs every update.'),
      })
      .describe('RFC 2136 settings.'),
  })
  .describe(
    'RFC 2136 dynamic update with TSIG: changes carry a prerequisite that the old value is still there.',
  );

export const dnsProvider = z
  .discriminatedUnion('type', [route53Provider, digitalOceanDns, rfc2136Provider])
  .describe('The DNS provider that holds the record; type selects the block of settings that must be set.');

export type DnsProvider = z.infer<typeof dnsProvider>;

export const dnsRecord = withRules(
  z
    .object({
      provider: dnsProvider,
      zone: dnsName('The DNS zone that holds the record, such as example.com. Immutable.'),
      name: dnsName('The record clients resolve, inside the zone, such as db.example.com. Immutable.'),
      type: z.enum(['A', 'AAAA', 'CNAME']).default('CNAME').describe('Record type. Immutable.'),
      ttlSeconds: z
        .number()
        .int()
        .min(5)
        .max(3600)
        .default(30)
        .describe('TTL of the record; clients may keep the old answer this long after a failover.'),
      ownerId: z
        .string()
        .min(1)
        .max(200)
        .regex(/^[A-Za-z0-9._/-]+$/, 'must be letters, digits and . _ / -')
        .optional()
        .describe(
          'Owner written into the ownership TXT record beside the record. The operator never changes a record whose owner differs. Default: <namespace>/<name> of this policy.',
        ),
      authoritativeNameservers: z
        .array(nameserver)
        .max(8)
        .optional()
        .describe('Servers asked to verify a change. Default: the zone NS records.'),
    })
    .describe('The DNS record that points clients at the primary.'),
  [
    {
      rule: "self.name == self.zone || self.name.endsWith('.' + self.zone)",
      message: 'dns.name must be inside dns.zone, e.g. name db.example.com in zone example.com',
      fieldPath: '.name',
    },
    { rule: 'self.zone == oldSelf.zone', message: 'dns.zone is immutable', fieldPath: '.zone' },
    { rule: 'self.name == oldSelf.name', message: 'dns.name is immutable', fieldPath: '.name' },
    { rule: 'self.type == oldSelf.type', message: 'dns.type is immutable', fieldPath: '.type' },
  ],
);

export const detection = z
  .object({
    probeIntervalSeconds: z
      .number()
      .int()
      .min(1)
      .max(300)
      .default(5)
      .describe('How often each observer probes.'),
    failureThreshold: z
      .number()
      .int()
      .min(1)
      .max(100)
      .default(3)
      .describe('Consecutive failed probes before an observer reports the primary down.'),
    quorum: z
      .number()
      .int()
      .min(1)
      .max(9)
      .default(2)
      .describe(
        'Distinct observers that must agree the primary is down. One observer losing sight is not an outage.',
      ),
    observationMaxAgeSeconds: z
      .number()
      .int()
      .min(1)
      .max(3600)
      .optional()
      .describe(
        'Observations older than this are ignored. Default: three probe intervals plus five seconds.',
      ),
  })
  .describe('How a primary outage is detected.');

export const rpoBudget = z
  .object({
    maxLagSeconds: z
      .number()
      .int()
      .min(0)
      .max(86400)
      .default(30)
      .describe('Largest standby lag, in seconds, that an automatic promotion may lose.'),
    maxLagBytes: z
      .number()
      .int()
      .min(0)
      .max(1099511627776)
      .default(16777216)
      .describe('Largest standby lag, in WAL bytes, that an automatic promotion may lose.'),
  })
  .describe('The RPO budget: the most data an automatic failover may lose.');

export const promotion = z
  .object({
    mode: z
      .enum(['Automatic', 'Manual'])
      .default('Automatic')
      .describe(
        'Automatic: fail over on a confirmed outage within the RPO budget. Manual: only on a request.',
      ),
    rpo: rpoBudget.prefault({}),
    cooldownSeconds: z
      .number()
      .int()
      .min(0)
      .max(2592000)
      .default(3600)
      .describe('No automatic failover within this long after the last one.'),
    holdDownSeconds: z
      .number()
      .int()
      .min(0)
      .max(3600)
      .default(0)
      .describe(
        'How long the quorum must keep agreeing the primary is down before an automatic failover starts.',
      ),
    requireHealthyAppEndpoints: z
      .boolean()
      .default(false)
      .describe(
        'An automatic failover only promotes a standby whose application endpoints (ReplicaCluster spec.appEndpoints) all answer healthy to the operator. Standbys without endpoints are not held back.',
      ),
    fencing: z
      .enum(['ReadOnly', 'Shutdown', 'EpochOnly'])
      .default('ReadOnly')
      .describe(
        'How the old primary is fenced when reachable: ReadOnly (refuse writes, end sessions), Shutdown (stop accepting connections), EpochOnly (only publish the new epoch).',
      ),
  })
  .describe('When and how a standby may be promoted.');

export const reprotect = z
  .object({
    mode: z
      .enum(['Automatic', 'RequireRequest', 'Manual'])
      .default('RequireRequest')
      .describe(
        'When a former primary that came back is made a standby of the active primary. RequireRequest: at once when that discards nothing, else on a request (kind: Reprotect, allowDataLoss: true). Automatic: at once, recording what it discards. Manual: only on a request.',
      ),
    allowReclone: z
      .boolean()
      .default(false)
      .describe(
        'When pg_rewind cannot rejoin a self-managed former primary (no wal_log_hints or checksums, missing WAL, another history), copy it afresh with pg_basebackup. The old data directory is moved aside, never deleted.',
      ),
    failback: z
      .enum(['Manual', 'Automatic'])
      .default('Manual')
      .describe(
        'Automatic: switch back to spec.primary (zero loss) when it is a caught-up standby and no operation (the reprotect that made it one included) has ended for failbackAfterSeconds. Manual: only on a request.',
      ),
    failbackAfterSeconds: z
      .number()
      .int()
      .min(60)
      .max(2592000)
      .default(3600)
      .describe(
        'With failback: Automatic, the hold-down: how long after the last operation ended (usually the reprotect that made spec.primary a standby) a failback may start.',
      ),
  })
  .describe('Bringing a former primary back as a standby (reprotect), and switching back to it (failback).');

export const drillMode = z.enum(['RoundTrip', 'Isolated']);

export const drills = z
  .object({
    schedule: z
      .string()
      .max(128)
      .regex(new RegExp(CRON_PATTERN), 'must be a five-field cron expression such as "0 3 * * 1", or @weekly')
      .default('0 3 * * 1')
      .describe(
        'Cron schedule of the drill (minute hour day-of-month month day-of-week). Weekly by default.',
      ),
    timeZone: z
      .string()
      .max(64)
      .regex(
        /^(UTC|[A-Za-z][A-Za-z_-]*(\/[A-Za-z0-9_+-]+){1,2})$/,
        'must be an IANA time zone such as Europe/Amsterdam',
      )
      .default('UTC')
      .describe('IANA time zone the schedule is read in.'),
    holdSeconds: z
      .number()
      .int()
      .min(0)
      .max(86400)
      .default(300)
      .describe('How long the drill stays on the standby region before failing back.'),
    maxDurationSeconds: z
      .number()
      .int()
      .min(60)
      .max(86400)
      .default(1800)
      .describe(
        'A drill still running after this long is stopped: a switchover to the standby that has not fenced and caught up yet rolls back; one past that point completes and is switched back at once. The way back is never stopped; a drill that cannot come home within 10 minutes more is filed Failed.',
      ),
    abortIfLagSecondsAbove: z
      .number()
      .int()
      .min(0)
      .max(86400)
      .default(5)
      .describe(
        'A drill does not start while the standby lags more than this, and rolls back (nothing moved) when the standby takes longer than this (at least 1 s) to catch up with the fenced primary.',
      ),
    suspend: z.boolean().default(false).describe('Skip scheduled drills while true.'),
    mode: drillMode
      .default('RoundTrip')
      .describe(
        'RoundTrip: a switchover to the standby, a hold, and a switchover back; clients follow it. Isolated: nothing moves; a throwaway copy of the standby is promoted beside it and written to through a drill record (spec.drills.isolated), proving the standby can become a primary without touching production. Isolated needs the database agent beside a self-managed standby, or an RDS standby (the provider makes a promoted read replica); Aurora global and DigitalOcean standbys cannot be copied.',
      ),
    isolated: z
      .object({
        port: z
          .number()
          .int()
          .min(1)
          .max(65535)
          .default(5433)
          .describe(
            "The spare port on the standby's host the drill copy listens on; the operator's canary connects to it through the drill record, so it must be reachable like the standby's own port.",
          ),
        recordName: dnsName(
          "The drill record pointed at the standby's dnsTarget while the copy serves, in spec.dns.zone; drill.<spec.dns.name> when unset (a name with an underscore, such as _drill.<name>, is refused for A records by BIND's default check-names). Created and deleted by each isolated drill, with its own _failover. ownership TXT record.",
        ).optional(),
        minCanaryWrites: z
          .number()
          .int()
          .min(1)
          .max(10000)
          .default(20)
          .describe('Canary rows the copy must acknowledge through the drill record for the drill to pass.'),
      })
      .prefault({})
      .describe('Isolated drills: where the throwaway copy listens and the record that points at it.'),
    ttlSeconds: z
      .number()
      .int()
      .min(1)
      .max(86400)
      .default(5)
      .describe(
        "The DNS record's TTL during a drill, when lower than spec.dns.ttlSeconds: set before the switchover, which then waits spec.dns.ttlSeconds for resolvers to drop the answers they cached with the old TTL, and put back when the drill ends. The report's clientTtlSeconds says which TTL clients could hold. (DigitalOcean refuses TTLs under 30 s: the drill then goes on with the record's own.)",
      ),
    canary: z
      .object({
        intervalMilliseconds: z
          .number()
          .int()
          .min(20)
          .max(10000)
          .default(100)
          .describe('How often the canary writer inserts a row through the DNS name.'),
        retentionDays: z
          .number()
          .int()
          .min(1)
          .max(365)
          .default(7)
          .describe('Canary rows older than this are deleted by the writer.'),
      })
      .prefault({})
      .describe(
        "During a drill the operator writes numbered canary rows through the policy's DNS name (resolved at its authoritative servers, with spec.primary's connection and credentials) into regionfailover.canary, as a client would; RTO and RPO are measured from what it saw.",
      ),
  })
  .describe('Scheduled failover drills: a switchover to the standby and back, measuring RTO and RPO.');

/** What keeps a cut-off old primary from taking writes beside a promoted standby. */
export const splitBrainProtection = z.enum(['Lease', 'DirectFence', 'EpochOnly']);

export const primaryLease = withRules(
  z
    .object({
      enabled: z
        .boolean()
        .default(true)
        .describe(
          'The database agent beside the primary holds a Lease it must keep renewing, and fences its own database before the Lease can expire when it can neither renew it nor hear from every standby agent that none was promoted. Only where agents run (self-managed PostgreSQL).',
        ),
      durationSeconds: z
        .number()
        .min(1)
        .max(300)
        .optional()
        .describe(
          'How long a renewal holds. Default: (failureThreshold − 1) × probeIntervalSeconds less the safety margin (the whole detection window where that is under 3 s), so waiting for the Lease adds nothing to a failover: standbys stop vouching at the first failed probes.',
        ),
      renewIntervalSeconds: z
        .number()
        .min(0.2)
        .max(60)
        .optional()
        .describe(
          'How often the agent renews. Default: a sixth of the default duration plus margin, at most 2 s.',
        ),
      safetyMarginSeconds: z
        .number()
        .min(0.2)
        .max(60)
        .optional()
        .describe(
          'The agent fences this long before its Lease expires, and the operator promotes this long after: clock-rate drift and a slow fence are absorbed by both. Default: the renew interval. Never below it.',
        ),
      allowLongerThanDetection: z
        .boolean()
        .default(false)
        .describe(
          'Accept a Lease longer than the detection window: a failover of a cut-off primary then waits for it, and the wait counts in RTO.',
        ),
    })
    .describe(
      "Split-brain protection across regions: the primary keeps a Lease, and fences itself when it loses it (Patroni's leader lock with failsafe mode).",
    ),
  [
    {
      rule: '!has(self.safetyMarginSeconds) || !has(self.renewIntervalSeconds) || self.safetyMarginSeconds >= self.renewIntervalSeconds',
      message:
        'safetyMarginSeconds is below renewIntervalSeconds: a renewal in flight could outlive the margin; make the margin at least the renew interval',
      fieldPath: '.safetyMarginSeconds',
    },
    {
      rule: '!has(self.durationSeconds) || !has(self.renewIntervalSeconds) || self.durationSeconds >= 2.0 * self.renewIntervalSeconds + (has(self.safetyMarginSeconds) ? self.safetyMarginSeconds : self.renewIntervalSeconds)',
      message:
        'durationSeconds leaves less than two renewals before the agent must fence (duration ≥ 2 × renewIntervalSeconds + safetyMarginSeconds): one slow request would fence a healthy primary',
      fieldPath: '.durationSeconds',
    },
  ],
);

export const canaryMode = z.enum(['DuringDrills', 'Always']);

export const canarySettings = z
  .object({
    mode: canaryMode
      .default('DuringDrills')
      .describe(
        "DuringDrills: the canary writer runs only while a drill does (spec.drills.canary). Always: it also runs continuously while this operator leads, inserting one small row every intervalMilliseconds into regionfailover.canary on the production primary through the DNS name (a constant write load, and rows kept retentionDays), so that a real failover or switchover is measured from the client's side: history[].client and lostWrites.",
      ),
    intervalMilliseconds: z
      .number()
      .int()
      .min(100)
      .max(60000)
      .default(1000)
      .describe(
        "How often the continuous writer (mode Always) inserts a row: the resolution of a real operation's client-side RTO. Drills keep their own writer at spec.drills.canary.intervalMilliseconds.",
      ),
    retentionDays: z
      .number()
      .int()
      .min(1)
      .max(365)
      .default(7)
      .describe(
        "Canary rows older than this are deleted by the continuous writer (any writer's: the shorter of this and spec.drills.canary.retentionDays wins).",
      ),
  })
  .describe(
    "The canary writer outside drills: numbered rows through the policy's DNS name (resolved at its authoritative servers, with spec.primary's connection and credentials), as a client would write.",
  );

export const promotionRequest = withRules(
  z
    .object({
      id: shortName('Unique id of this request; each id is acted on once. Use a new id for a new request.'),
      target: objectName('The ReplicaCluster to promote.'),
      kind: z
        .enum(['Switchover', 'Failover', 'Reprotect'])
        .default('Switchover')
        .describe(
          'Switchover: planned, waits for zero lag, loses nothing. Failover: unplanned, for a primary that is gone. Reprotect: make target, a former primary, a standby of the active primary.',
        ),
      allowDataLoss: z
        .boolean()
        .default(false)
        .describe(
          'For a Failover: promote even if the standby lags beyond the RPO budget. For a Reprotect: discard what the former primary wrote after the fork (shown in its ReplicaCluster status.agent.divergence).',
        ),
      maxLagSeconds: z
        .number()
        .int()
        .min(0)
        .max(86400)
        .optional()
        .describe('For a Failover: the most lag, in seconds, this request accepts. Default: the RPO budget.'),
      reason: z.string().max(1024).optional().describe('Why; recorded in status and the Event.'),
      requestedBy: z.string().max(253).optional().describe('Who asked; recorded in status and the Event.'),
    })
    .describe('A request from a person to promote a cluster now.'),
  [
    {
      rule: "self.kind != 'Switchover' || !self.allowDataLoss",
      message: 'a Switchover never loses data: remove allowDataLoss, or use kind: Failover',
      fieldPath: '.allowDataLoss',
    },
    {
      rule: "self.kind == 'Failover' || !has(self.maxLagSeconds)",
      message: 'maxLagSeconds applies to kind: Failover only; a Switchover waits for zero lag',
      fieldPath: '.maxLagSeconds',
    },
  ],
);

export const drillRequest = z
  .object({
    id: shortName('Unique id of this request; each id is acted on once. Use a new id for a new request.'),
    action: z
      .enum(['Run', 'Cancel'])
      .default('Run')
      .describe(
        'Run: start a drill now (as a scheduled one would, if nothing is wrong). Cancel: stop the drill in progress and come back.',
      ),
    reason: z.string().max(1024).optional().describe('Why; recorded in the drill report and the Event.'),
    requestedBy: z.string().max(253).optional().describe('Who asked; recorded in the drill report.'),
    mode: drillMode.optional().describe('Run: the kind of drill; spec.drills.mode when unset.'),
  })
  .describe('A request from a person to run a drill now, or to cancel the one in progress.');

export const reportRetention = z
  .object({
    keep: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(200)
      .describe(
        'How many FailoverReport objects of this policy are kept; the oldest go first (a year of weekly drills, each with its two switchovers, is 156).',
      ),
    maxAgeDays: z
      .number()
      .int()
      .min(1)
      .max(3650)
      .default(400)
      .describe('FailoverReport objects older than this many days are deleted.'),
  })
  .describe(
    'How long the incident records (FailoverReport objects, one per operation, drill or refused request) are kept.',
  );

export const slo = z
  .object({
    availabilityTarget: z
      .number()
      .min(90)
      .max(99.9999)
      .describe(
        'The availability promised, in percent per calendar month (e.g. 99.95): status.availability and the burn-rate alerts measure against it.',
      ),
  })
  .describe('The service level the database behind the DNS name is held to.');

export const failoverPolicySpec = withRules(
  z
    .object({
      primary: objectName('The ReplicaCluster that is primary when the policy is created.'),
      standbys: setOf(objectName('A standby ReplicaCluster.'), 5)
        .min(1)
        .describe('Standby ReplicaClusters in order of preference for promotion.'),
      dns: dnsRecord,
      detection: detection.prefault({}),
      promotion: promotion.prefault({}),
      drills: drills.optional(),
      canary: canarySettings.optional(),
      reports: reportRetention.prefault({}),
      slo: slo.optional(),
      reprotect: reprotect.prefault({}),
      primaryLease: primaryLease.prefault({}),
      promotionRequest: promotionRequest.optional(),
      drillRequest: drillRequest.optional(),
      paused: z
        .boolean()
        .default(false)
        .describe(
          "Maintenance mode: no automatic action starts (failover, DNS repair, reprotect, failback, drills) while probing and reporting go on; an automatic operation that has changed nothing yet stands down (a drill still starting ends), one under way finishes. Safety is not paused: a stray primary is still fenced, and the agents' split-brain guard keeps running. A person's promotionRequest still runs.",
        ),
      pauseReason: z
        .string()
        .max(1024)
        .optional()
        .describe('Why the policy is paused: shown in the Paused condition and the Event.'),
    })
    .describe('Desired behaviour of a FailoverPolicy.'),
  [
    {
      rule: '!self.standbys.exists(s, s == self.primary)',
      message: 'standbys must not include the primary',
      fieldPath: '.standbys',
    },
    {
      rule: '!has(self.promotionRequest) || self.promotionRequest.target == self.primary || self.promotionRequest.target in self.standbys',
      message: 'promotionRequest.target must be the primary or one of the standbys',
      fieldPath: '.promotionRequest.target',
    },
    {
      rule: "!has(self.promotionRequest) || self.promotionRequest.kind != 'Failover' || self.promotionRequest.allowDataLoss || !has(self.promotionRequest.maxLagSeconds) || self.promotionRequest.maxLagSeconds <= self.promotion.rpo.maxLagSeconds",
      message:
        'promotionRequest.maxLagSeconds exceeds the RPO budget (promotion.rpo.maxLagSeconds): set allowDataLoss: true to accept losing that much data',
      fieldPath: '.promotionRequest.allowDataLoss',
    },
    {
      rule: '!has(self.promotionRequest) || !has(oldSelf.promotionRequest) || self.promotionRequest.id != oldSelf.promotionRequest.id || self.promotionRequest == oldSelf.promotionRequest',
      message: 'a promotion request cannot be changed once made: give the new request a new id',
      fieldPath: '.promotionRequest',
    },
    {
      rule: '!has(self.drillRequest) || !has(oldSelf.drillRequest) || self.drillRequest.id != oldSelf.drillRequest.id || self.drillRequest == oldSelf.drillRequest',
      message: 'a drill request cannot be changed once made: give the new request a new id',
      fieldPath: '.drillRequest',
    },
    {
      rule: '!has(self.primaryLease) || !has(self.primaryLease.durationSeconds) || self.primaryLease.allowLongerThanDetection || self.primaryLease.durationSeconds <= double(self.detection.probeIntervalSeconds * self.detection.failureThreshold)',
      message:
        'primaryLease.durationSeconds is longer than the detection window (detection.probeIntervalSeconds × failureThreshold): a failover of a cut-off primary would wait for it; shorten it, or set primaryLease.allowLongerThanDetection: true to accept that',
      fieldPath: '.primaryLease.durationSeconds',
    },
    {
      rule: '!has(self.drillRequest) || has(self.drills)',
      message: 'a drill request needs spec.drills (its limits: abortIfLagSecondsAbove, maxDurationSeconds)',
      fieldPath: '.drillRequest',
    },
  ],
);

export const policyPhase = z.enum([
  'Pending',
  'Paused',
  'Healthy',
  'Degraded',
  'FailingOver',
  'SwitchingOver',
  'Drilling',
  'Reprotecting',
  'Blocked',
]);

export const operationKind = z.enum(['Failover', 'Switchover', 'Fence', 'Reprotect']);
export const operationTrigger = z.enum(['Automatic', 'Manual', 'Drill']);
const stepDuration = (step: string) =>
  z.number().min(0).optional().describe(`Seconds spent in ${step}, retries and backoff included.`);

/** How long each step of an operation took: promotion, catch-up and fencing time for reports. */
export const stepSeconds = z
  .object({
    fencing: stepDuration('Fencing (the old primary made read-only, or marked)'),
    catchingUp: stepDuration('CatchingUp (the target replaying up to the fenced primary)'),
    demoting: stepDuration("Demoting (the old primary's clean stop, by its agent)"),
    promoting: stepDuration('Promoting (until the target accepted writes)'),
    repointingDns: stepDuration('RepointingDns (until the provider accepted the change)'),
    verifyingDns: stepDuration('VerifyingDns (until every authoritative server answered)'),
    rejoining: stepDuration('Rejoining (the agent or the provider making a standby)'),
    rollingBack: stepDuration('RollingBack (the fence undone)'),
  })
  .describe('How long each step took, for the steps the operation went through.');

export const operationStep = z.enum([
  'Detected',
  'Fencing',
  'CatchingUp',
  'Demoting',
  'Promoting',
  'Rejoining',
  'RepointingDns',
  'VerifyingDns',
  'RollingBack',
  'Completed',
  'Aborted',
]);

/**
 * A database a managed provider made in a former primary's place (a new RDS read replica, a new
 * DigitalOcean read-only node): the operator never edits a spec, so a person, their Git or their
 * Pulumi stack points the ReplicaCluster at it. Kept in history for `kubectl failover export`.
 */
export const databaseReplacement = z
  .object({
    cluster: z.string().max(253).describe('The ReplicaCluster to point at the new database.'),
    provider: z
      .object({
        type: z.enum(['AwsRds', 'DigitalOcean']).describe('spec.provider.type.'),
        awsRds: z
          .object({
            region: z.string().max(32).describe('The region.'),
            dbInstanceIdentifier: z.string().max(63).describe('The new read replica.'),
          })
          .optional()
          .describe('The identifiers to set in spec.provider.awsRds.'),
        digitalOcean: z
          .object({
            databaseId: z.string().max(64).describe('The cluster it is a read-only node of.'),
            replicaName: z.string().max(63).optional().describe('The new read-only node.'),
          })
          .optional()
          .describe('The identifiers to set in spec.provider.digitalOcean.'),
      })
      .describe('The identifiers spec.provider must name now; credentials and endpoints stay as they are.'),
    host: z.string().max(253).describe('The spec.connection.host it must name now.'),
    port: z
      .number()
      .int()
      .min(1)
      .max(65535)
      .optional()
      .describe('The spec.connection.port, when it changes.'),
    superseded: z
      .string()
      .max(253)
      .describe('The database it replaces: left for a person to delete, never deleted by the operator.'),
  })
  .describe('A replacement database made by a reprotect, for the ReplicaCluster to name.');

export const timelineEntry = z
  .object({
    at: timestamp('When it happened.'),
    event: z
      .string()
      .max(64)
      .describe(
        'What happened, one CamelCase word: ObserverLostPrimary, QuorumLostPrimary, Started, a step entered (Fencing, CatchingUp, Promoting, RepointingDns, VerifyingDns, Rejoining, RollingBack), StepFailed, DnsChanged, DnsVerified, LastWriteOnOldPrimary, FirstWriteOnNewPrimary, Completed, Aborted.',
      ),
    detail: z.string().max(512).optional().describe('Who saw it, or why, in words.'),
  })
  .describe('One moment of an operation, for its incident record.');

/** The most moments an operation's timeline keeps: the first ones and the last ones. */
export const TIMELINE_LENGTH = 40;

export const timeline = z
  .array(timelineEntry)
  .max(TIMELINE_LENGTH)
  .describe(
    'What happened when: each observer losing the primary, the quorum, each step, DNS, the canary. In status for the three newest operations (the status page shows them); the FailoverReport holds every one.',
  );

export const operation = z
  .object({
    id: z.string().min(1).max(128).describe('Unique id of the operation; side effects are keyed by it.'),
    kind: operationKind.describe(
      'Failover (unplanned), Switchover (planned, zero data loss), Fence (a database that accepts writes but is not the primary), or Reprotect (a former primary made a standby of the active primary).',
    ),
    trigger: operationTrigger.describe('What started it: an outage, a person, or a drill.'),
    from: z
      .string()
      .max(253)
      .describe(
        'The ReplicaCluster that was primary (for Fence: the database being fenced; for Reprotect: the former primary being rejoined).',
      ),
    to: z
      .string()
      .max(253)
      .describe(
        'The ReplicaCluster being promoted (for Fence and Reprotect: the active primary, unchanged).',
      ),
    epoch: z
      .number()
      .int()
      .min(0)
      .describe(
        'The epoch the promotion establishes (for Fence: the current epoch, recorded in the fenced database).',
      ),
    step: operationStep.describe('The step reached; written before the step side effect.'),
    startedAt: timestamp('When the operation started.'),
    stepStartedAt: timestamp('When the current step started.'),
    requestId: z.string().max(63).optional().describe('The promotionRequest id, for a manual operation.'),
    requestedBy: z.string().max(253).optional().describe('Who asked, for a manual operation.'),
    timeline: timeline.optional(),
    attempts: z.number().int().min(0).optional().describe('Failed attempts of the current step.'),
    retryAfter: timestamp(
      'After a failed attempt: the step is not run again before this time (exponential backoff).',
    ).optional(),
    lastError: z
      .string()
      .max(1024)
      .optional()
      .describe('The last error of the current step, if it is retrying.'),
    reason: z
      .string()
      .max(1024)
      .optional()
      .describe("Why it started: the person's reason for a manual one, the verdict for an automatic one."),
    message: z
      .string()
      .max(1024)
      .optional()
      .describe(
        'What happened last: what the current step waits for, why it went back a step, or why it ended.',
      ),
    allowDataLoss: z.boolean().optional().describe('A manual failover that may exceed the RPO budget.'),
    primaryLostAt: timestamp(
      'For a failover: when observers first lost the primary; RTO counts from here.',
    ).optional(),
    fencedLsn: z
      .string()
      .max(32)
      .optional()
      .describe(
        'For a switchover: the old primary WAL position once fenced; the target must replay up to it.',
      ),
    strays: z
      .array(z.string().max(253).describe('A ReplicaCluster name.'))
      .max(6)
      .optional()
      .describe(
        'Other databases found taking writes before the promotion; the Fencing step fences them with the old primary.',
      ),
    fenceDetail: z
      .string()
      .max(1024)
      .optional()
      .describe('What fencing did (or why the old primary was only marked).'),
    demoted: z
      .boolean()
      .optional()
      .describe(
        'For a switchover: the old primary has a database agent, which stops it cleanly once the target has its last WAL and restarts it as a standby (no rewind).',
      ),
    stoppedLsn: z
      .string()
      .max(32)
      .optional()
      .describe(
        'For a demoting switchover: the old primary shutdown checkpoint; the target must replay past it.',
      ),
    discarded: discardedWal(
      'For a Reprotect: what rejoining discards from the former primary, as assessed before it started, then as its agent measured it with the server stopped (an automatic reprotect under reprotect.mode Automatic discards what commits in between too).',
    ).optional(),
    dnsTtlSeconds: z
      .number()
      .int()
      .min(1)
      .max(86400)
      .optional()
      .describe(
        "For a drill's switchovers: the TTL the record is re-pointed with (the drill's lowered one).",
      ),
    maxCatchUpSeconds: z
      .number()
      .int()
      .min(1)
      .max(86400)
      .optional()
      .describe(
        "For a drill's switchover to the standby: roll back (nothing moved) when the standby has not caught up with the fenced primary within this long.",
      ),
    estimatedLossBytes: z.number().int().min(0).optional().describe('Standby lag in bytes when promoted.'),
    estimatedLossSeconds: z.number().min(0).optional().describe('Standby lag in seconds when promoted.'),
    dnsChangedAt: timestamp('When the DNS change was accepted by the provider.').optional(),
    stepSeconds: stepSeconds.optional(),
    protection: splitBrainProtection
      .optional()
      .describe(
        'For a failover: what kept the old primary from taking writes once cut off, when the operation started (Lease: its agent fences it before its Lease expires; the promotion waits for that).',
      ),
    markedOnly: z
      .boolean()
      .optional()
      .describe(
        'For a failover: the old primary could not be reached to fence it; it was only marked by the epoch.',
      ),
    leaseWaitFrom: timestamp(
      'For a failover of a primary that could not be fenced directly: when the promotion began waiting for its Lease to expire.',
    ).optional(),
    replacement: databaseReplacement
      .optional()
      .describe(
        'For a Reprotect of a managed database: the new database the ReplicaCluster must name (RepointNeeded).',
      ),
    waitedForLeaseSeconds: z
      .number()
      .min(0)
      .optional()
      .describe(
        "For a failover: how long the promotion waited for the old primary's Lease to expire (and the standby agents to stop vouching for it); counted in RTO.",
      ),
  })
  .describe('A failover or switchover in progress.');

export const drillMeasure = z
  .object({
    operationId: z.string().max(128).describe('The switchover this leg was.'),
    measuredBy: z
      .enum(['Canary', 'Operator'])
      .describe(
        "Canary: from the canary writer's acknowledged rows, as a client saw it. Operator: the canary could not tell (it restarted with the operator mid-leg, or wrote nothing), so the figures are the operator's own.",
      ),
    rtoSeconds: z
      .number()
      .min(0)
      .optional()
      .describe(
        'Canary: from the last canary write the old primary acknowledged to the first the new one acknowledged, both through the DNS name. Operator: the switchover start until the authoritative DNS servers answered the new primary.',
      ),
    rpoTransactions: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe(
        'Canary rows the old primary acknowledged that the new one does not have (0 for a switchover that worked).',
      ),
    acknowledged: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe(
        'Canary rows the old primary acknowledged in its last run before the switch: what rpoTransactions is out of.',
      ),
    writesStoppedAt: timestamp('The last canary write the old primary acknowledged.').optional(),
    writesResumedAt: timestamp('The first canary write the new primary acknowledged.').optional(),
    message: z.string().max(512).optional().describe('Why the canary could not measure, when it could not.'),
  })
  .describe("One leg of a drill, measured from the client's side.");

export const operationReport = z
  .object({
    id: z.string().min(1).max(128).describe('Operation id.'),
    kind: operationKind.describe('Failover, Switchover, Fence or Reprotect.'),
    trigger: operationTrigger.describe('Automatic, Manual or Drill.'),
    from: z.string().max(253).describe('The former primary.'),
    to: z.string().max(253).describe('The promoted cluster.'),
    epoch: z.number().int().min(0).describe('Epoch after the operation.'),
    result: z.enum(['Succeeded', 'Aborted', 'Failed']).describe('How it ended.'),
    startedAt: timestamp('Start time.'),
    completedAt: timestamp('End time.'),
    rtoSeconds: z
      .number()
      .min(0)
      .optional()
      .describe(
        'Seconds from when the primary was last seen alive (a failover) or the operation started (a switchover) until the authoritative DNS servers answered the new primary.',
      ),
    rpoSeconds: z
      .number()
      .min(0)
      .optional()
      .describe(
        'The promoted standby lag in seconds, last measured before the promotion (0 for a switchover).',
      ),
    rpoBytes: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('WAL bytes the promoted standby had not replayed, last measured before the promotion.'),
    lostWrites: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe(
        "Canary writes committed before the switch but missing after: for a drill, its legs' rows; for a failover or switchover, client.rpoTransactions when the continuous canary (spec.canary.mode Always) measured it.",
      ),
    discardedBytes: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('For a Reprotect: WAL bytes of the former primary discarded by the rewind or re-clone.'),
    discardedTransactions: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('For a Reprotect: transactions committed in the discarded range, where that could be told.'),
    dnsVerifySeconds: z
      .number()
      .min(0)
      .optional()
      .describe('Time until the authoritative servers answered the new value.'),
    stepSeconds: stepSeconds.optional(),
    replacement: databaseReplacement
      .optional()
      .describe(
        'For a Reprotect of a managed database: the new database the ReplicaCluster must name (RepointNeeded).',
      ),
    waitedForLeaseSeconds: z
      .number()
      .min(0)
      .optional()
      .describe("How long the promotion waited for the old primary's Lease to expire; counted in RTO."),
    protection: splitBrainProtection
      .optional()
      .describe('For a failover: what kept the old primary from taking writes once cut off.'),
    reason: z.string().max(1024).optional().describe('Why it started.'),
    message: z.string().max(1024).optional().describe('How it ended, when that needs saying.'),
    requestId: z.string().max(63).optional().describe('The promotionRequest id, for a manual operation.'),
    requestedBy: z.string().max(253).optional().describe('Who asked, for a manual operation.'),
    timeline: timeline.optional(),
    reported: z
      .boolean()
      .optional()
      .describe(
        'A FailoverReport object holds this record and its timeline (dropped from status past the three newest).',
      ),
    client: drillMeasure
      .optional()
      .describe(
        "A failover or switchover not made by a drill, measured from the client's side by the continuous canary writer (spec.canary.mode Always), with the same fields as a drill leg: rtoSeconds from the last canary write the old primary acknowledged to the first the new one acknowledged, rpoTransactions the acknowledged rows the new primary lacks. Filled in up to 30 s after the operation completed (the canary's first write on the new primary); measuredBy Operator with a message when the canary could not tell. Absent when no continuous canary runs.",
      ),
  })
  .describe('The report of a finished operation.');

/** What an isolated drill measured; the same fields in status while it runs and in its report. */
const isolatedDrillMeasures = {
  copySeconds: z
    .number()
    .min(0)
    .optional()
    .describe('How long pg_basebackup took to copy the standby (the agent reports it).'),
  copyBytes: z.number().int().min(0).optional().describe('The size of the copy.'),
  promotionSeconds: z
    .number()
    .min(0)
    .optional()
    .describe('From asking the started copy to promote until it accepted writes.'),
  freshnessSeconds: z
    .number()
    .min(0)
    .optional()
    .describe(
      "How old the newest heartbeat in the copy was when the copy was taken: the data a promotion of the standby would have started from, as old as the standby's lag.",
    ),
  dnsVerifySeconds: z
    .number()
    .min(0)
    .optional()
    .describe('From writing the drill record until the authoritative servers answered it.'),
  canaryWrites: z
    .number()
    .int()
    .min(0)
    .optional()
    .describe('Canary rows the copy acknowledged through the drill record.'),
};

export const isolatedDrillState = z
  .object({
    recordName: z.string().max(253).describe('The drill record.'),
    port: z.number().int().min(1).max(65535).describe('The port the copy listens on.'),
    value: z
      .string()
      .max(253)
      .optional()
      .describe("The drill record's value: the standby's dnsTarget, or the provider's copy's endpoint."),
    copiedBy: z
      .enum(['Agent', 'Provider'])
      .optional()
      .describe(
        "Agent: the database agent beside the standby copies it (self-managed). Provider: the provider's API makes the copy (an RDS read replica of the standby, promoted).",
      ),
    copyReadyAt: timestamp('When the agent reported the copy promoted and serving.').optional(),
    pointedAt: timestamp('When the drill record was written.').optional(),
    verifiedAt: timestamp('When the authoritative servers answered the drill record.').optional(),
    writingSince: timestamp('When the canary started writing through the drill record.').optional(),
    removedAt: timestamp('When the drill record was deleted (or found absent).').optional(),
    cleaningSince: timestamp('When the agent (or the provider) was left to remove the copy.').optional(),
    copyRemovedAt: timestamp(
      "Provider copies: when the provider's API no longer listed the copy.",
    ).optional(),
    problem: z
      .string()
      .max(512)
      .optional()
      .describe('Why the last change of the drill record failed, while it is tried again.'),
    retryAt: timestamp(
      "When the DNS provider asked to be left alone until (a throttling answer's Retry-After): the drill record is not changed again before then.",
    ).optional(),
    verdict: z
      .object({
        result: z
          .enum(['Succeeded', 'Aborted', 'Failed', 'Cancelled', 'Interrupted'])
          .describe('The result the report will carry.'),
        reason: z.string().max(1024).describe('Why, in words.'),
      })
      .optional()
      .describe('How the drill will be filed, decided before the record and the copy are removed.'),
    ...isolatedDrillMeasures,
  })
  .describe('An isolated drill in progress.');

export const isolatedDrillReport = z
  .object({
    cluster: z.string().max(253).describe('The standby that was copied.'),
    recordName: z.string().max(253).describe('The drill record.'),
    durationSeconds: z.number().min(0).describe('From the start until the copy and the record were removed.'),
    cleanedUp: z
      .boolean()
      .describe(
        'Whether the agent reported the copy (its server and directory) removed, and the record deleted.',
      ),
    ...isolatedDrillMeasures,
  })
  .describe('What an isolated drill proved; nothing in production moved.');

export const drillState = z
  .object({
    id: z.string().min(1).max(128).describe('Unique id of the drill.'),
    from: z.string().max(253).describe('The primary the drill started from, and returns to.'),
    to: z.string().max(253).describe('The standby the drill switches over to.'),
    startedAt: timestamp('When the drill started.'),
    mode: drillMode.optional().describe('The kind of drill; RoundTrip when unset.'),
    leg: z
      .enum(['Starting', 'Out', 'Holding', 'Back', 'Copying', 'Pointing', 'Writing', 'Removing', 'Cleaning'])
      .describe(
        'RoundTrip: Starting: the canary writer is writing through the DNS name, nothing moved yet; Out: switching over to the standby; Holding: serving from it; Back: switching back. Isolated: Copying: the agent beside the standby copies it and promotes the copy on the spare port; Pointing: the drill record is set to the standby and verified at the authoritative servers; Writing: the canary writes to the copy through the drill record; Removing: the drill record is deleted; Cleaning: the agent stops and deletes the copy.',
      ),
    outboundOperationId: z
      .string()
      .max(128)
      .optional()
      .describe('The id of the switchover to the standby, once started.'),
    backOperationId: z.string().max(128).optional().describe('The id of the switchover back, once started.'),
    returnAfter: timestamp('When the drill starts switching back.').optional(),
    requestId: z.string().max(63).optional().describe('The drillRequest that started it, if one did.'),
    stop: z
      .object({
        result: z.enum(['Cancelled', 'Aborted', 'Interrupted']).describe('How the drill will be filed.'),
        reason: z.string().max(1024).describe('Why it stopped early.'),
        at: timestamp('When it was stopped.'),
      })
      .optional()
      .describe('An early end, decided: what is left of the drill only brings the primary home.'),
    ttl: z
      .object({
        lowered: z.number().int().min(1).describe('The TTL wanted during the drill.'),
        was: z.number().int().min(0).describe('The record TTL before (spec.dns.ttlSeconds).'),
        loweredAt: timestamp('When the authoritative servers were seen serving the lowered TTL.').optional(),
        skipped: z
          .string()
          .max(512)
          .optional()
          .describe('Why the TTL was not lowered (the provider refused it, or it took too long).'),
      })
      .optional()
      .describe("The record's TTL during the drill."),
    out: drillMeasure.optional().describe('The switchover to the standby, measured.'),
    back: drillMeasure.optional().describe('The switchover back, measured.'),
    isolated: isolatedDrillState.optional().describe('An isolated drill: its copy and drill record.'),
  })
  .describe(
    'A drill in progress: a switchover to the standby, a hold, and a switchover back; or an isolated copy.',
  );

export const drillReport = operationReport
  .extend({
    result: z
      .enum(['Succeeded', 'Aborted', 'Failed', 'Cancelled', 'Interrupted'])
      .describe(
        'Succeeded: out and back, and no canary row lost on the legs the canary measured (out/back.measuredBy). Aborted: not started, or stopped before the primary moved (the standby lagged, maxDurationSeconds). Failed: could not come back, or lost canary rows. Cancelled: by a drillRequest. Interrupted: a real failover took over.',
      ),
    requestId: z.string().max(63).optional().describe('The drillRequest that started it, if one did.'),
    out: drillMeasure.optional().describe('The switchover to the standby, measured.'),
    back: drillMeasure.optional().describe('The switchover back, measured.'),
    mode: drillMode.optional().describe('The kind of drill; RoundTrip when unset.'),
    isolated: isolatedDrillReport.optional().describe('An isolated drill: what the copy proved.'),
    clientTtlSeconds: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe(
        'The longest a resolver could have cached the old answer during the switch: the lowered TTL when it had been served for the old TTL before the switchover, else the record TTL.',
      ),
  })
  .describe(
    "The report of a finished drill; rtoSeconds and lostWrites are the client side's (the canary's) when out.measuredBy is Canary.",
  );

const downtime = (what: string) =>
  z.number().min(0).describe(`Seconds the database behind the DNS name was down in this ${what}.`);

export const availabilityLedger = z
  .object({
    trackedSince: timestamp('When the operator began keeping this ledger: no downtime is known before it.'),
    downSince: timestamp(
      'The outage in progress: when a quorum of observers agreed the primary is down (it lasts until the DNS name answers a primary that takes writes).',
    ).optional(),
    months: z
      .array(
        z
          .object({
            month: z
              .string()
              .regex(/^\d{4}-\d{2}$/)
              .describe('The calendar month, UTC: 2026-12.'),
            downSeconds: downtime('month'),
            outages: z.number().int().min(0).describe('Outages that began in this month.'),
          })
          .describe('One calendar month.'),
      )
      .max(13)
      .optional()
      .describe('Downtime per calendar month, newest first (13 months: this one and the year before).'),
    days: z
      .array(
        z
          .object({
            day: z
              .string()
              .regex(/^\d{4}-\d{2}-\d{2}$/)
              .describe('The day, UTC: 2026-12-02.'),
            downSeconds: downtime('day'),
          })
          .describe('One day with downtime.'),
      )
      .max(90)
      .optional()
      .describe('Downtime per day over the last 90 days, newest first; days without downtime are left out.'),
    outages: z
      .array(
        z
          .object({
            start: timestamp('When a quorum of observers agreed the primary was down.'),
            end: timestamp('When the DNS name answered a primary that takes writes again.'),
            seconds: z.number().min(0).describe('How long it lasted.'),
            operationId: z.string().max(128).optional().describe('The failover that ended it, if one did.'),
          })
          .describe('One outage.'),
      )
      .max(20)
      .optional()
      .describe('The last outages, newest first.'),
  })
  .describe(
    'Availability as uptime SLAs count it: an interval counts as down only while a quorum of observers agree the primary is down, and, after a failover, until DNS answers the new primary.',
  );

export const failoverPolicyStatus = z
  .object({
    observedGeneration: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('The .metadata.generation last acted on.'),
    phase: policyPhase.optional().describe('Summary for people; the code decides from the fields below.'),
    activePrimary: z.string().max(253).optional().describe('The ReplicaCluster that is primary now.'),
    epoch: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('The failover epoch: increases by exactly one per promotion, never decreases.'),
    standbyLagSeconds: z
      .number()
      .min(0)
      .optional()
      .describe('Lag of the preferred healthy standby, in seconds.'),
    topology: z
      .array(
        z
          .object({
            cluster: z.string().max(253).describe('The ReplicaCluster.'),
            role: z
              .enum(['Primary', 'Standby', 'FormerPrimary', 'Unknown'])
              .describe(
                'Primary: the active primary. Standby: replicating from it. FormerPrimary: not a standby of the primary (to reprotect). Unknown: not observed.',
              ),
            ready: z
              .boolean()
              .describe('The primary takes writes; a standby replicates and could be promoted.'),
            lagSeconds: z.number().int().min(0).optional().describe('A standby lag, in whole seconds.'),
            agent: z.boolean().optional().describe('A database agent reports for it.'),
            protection: splitBrainProtection
              .optional()
              .describe(
                'What would keep it from taking writes once cut off as a primary: Lease (its agent fences it when it loses its Lease), DirectFence (the operator fences it when it can reach it), EpochOnly (only the epoch marks it).',
              ),
            message: z.string().max(512).optional().describe('Why it is not ready, when it is not.'),
          })
          .describe('One member of the policy as the operator sees it.'),
      )
      .max(6)
      .optional()
      .describe('Every member of the policy: the primary and each standby, with role, lag and readiness.'),
    currentOperation: operation.optional(),
    lastHandledRequestId: z.string().max(63).optional().describe('The last promotionRequest id acted on.'),
    lastHandledDrillRequestId: z.string().max(63).optional().describe('The last drillRequest id acted on.'),
    lastRequest: z
      .object({
        id: z.string().max(63).describe('The request id.'),
        outcome: z.enum(['Accepted', 'Rejected', 'Succeeded', 'Aborted']).describe('What became of it.'),
        reason: z.string().max(64).describe('A CamelCase reason.'),
        message: z.string().max(1024).describe('What happened, or why it was refused.'),
        time: timestamp('When the outcome was recorded.'),
        reported: z.boolean().optional().describe('A refusal: a FailoverReport object records it.'),
      })
      .optional()
      .describe('The outcome of the last promotion request.'),
    lastDrillRequest: z
      .object({
        id: z.string().max(63).describe('The request id.'),
        action: z.enum(['Run', 'Cancel']).describe('What was asked.'),
        outcome: z.enum(['Accepted', 'Rejected']).describe('Whether it was acted on.'),
        message: z.string().max(1024).describe('What happened, or why it was refused.'),
        time: timestamp('When the outcome was recorded.'),
        reported: z.boolean().optional().describe('A refusal: a FailoverReport object records it.'),
      })
      .optional()
      .describe('The outcome of the last drill request.'),
    primaryDownSince: timestamp(
      'When a quorum of observers first agreed the active primary is down; cleared when the quorum no longer agrees (kept while an operator just restarted counts its own failures again and nobody has reached the primary). The hold-down counts from here.',
    ).optional(),
    primaryLoss: z
      .object({
        primary: z.string().max(253).describe('The primary that was lost (status.activePrimary then).'),
        epoch: z
          .number()
          .int()
          .min(0)
          .describe('The epoch then: the record holds only while both are unchanged.'),
        lastSeenAt: timestamp('When an observer that lost the primary last reached it.').optional(),
        standbyLag: z
          .array(
            z
              .object({
                cluster: z.string().max(253).describe('The standby.'),
                bytes: z.number().min(0).describe('How many bytes of WAL it lacked.'),
                seconds: z.number().min(0).optional().describe('How old its newest replayed write was.'),
                measuredAt: timestamp('When that was measured.'),
                lsn: z
                  .string()
                  .max(32)
                  .optional()
                  .describe(
                    'Its replay position then: the lag is used only while it has replayed at least this far on the same timeline.',
                  ),
                receiveLsn: z
                  .string()
                  .max(32)
                  .optional()
                  .describe('How far it had received then: it must have received nothing since.'),
                timeline: z.number().int().min(0).optional().describe('Its timeline then.'),
              })
              .describe("A standby's lag as last measured against the primary."),
          )
          .max(6)
          .describe('Each standby with a measured lag (at most every cluster of the policy).'),
      })
      .optional()
      .describe(
        'What was known when a quorum first found the active primary down, kept and cleared with primaryDownSince: when it was last reached, and each standby lag then. An operator restarted during the outage cannot measure lag against a lost primary; it judges the RPO budget by these.',
      ),
    lastFailoverTime: timestamp(
      'When the last failover (automatic or requested) promoted a standby; the cool-down counts from here. Switchovers and drills do not count.',
    ).optional(),
    history: z
      .array(operationReport)
      .max(20)
      .optional()
      .describe('Finished failovers and switchovers, newest first (at most 20).'),
    drills: z
      .array(drillReport)
      .max(10)
      .optional()
      .describe('Finished drills with measured RTO and RPO, newest first (at most 10).'),
    nextDrillTime: timestamp('When the next scheduled drill starts.').optional(),
    pausedSince: timestamp(
      'When the operator first saw spec.paused set; cleared when it is unset. The alert on a long pause counts from here.',
    ).optional(),
    drill: drillState.optional(),
    availability: availabilityLedger.optional(),
    conditions: conditions.optional(),
  })
  .describe('Observed state of a FailoverPolicy, written by the operator.');

export const failoverPolicy = resourceObject('FailoverPolicy', failoverPolicySpec, failoverPolicyStatus);

export type FailoverPolicySpec = z.infer<typeof failoverPolicySpec>;
export type FailoverPolicyStatus = z.infer<typeof failoverPolicyStatus>;
export type FailoverPolicy = z.infer<typeof failoverPolicy>;
export type DatabaseReplacement = z.infer<typeof databaseReplacement>;
export type Operation = z.infer<typeof operation>;
export type OperationReport = z.infer<typeof operationReport>;
export type Drills = z.infer<typeof drills>;
export type DrillState = z.infer<typeof drillState>;
export type DrillReport = z.infer<typeof drillReport>;
export type DrillMeasure = z.infer<typeof drillMeasure>;
export type DrillRequest = z.infer<typeof drillRequest>;
export type IsolatedDrillState = z.infer<typeof isolatedDrillState>;
export type IsolatedDrillReport = z.infer<typeof isolatedDrillReport>;
export type DrillMode = z.infer<typeof drillMode>;
export type StepSeconds = z.infer<typeof stepSeconds>;
export type TimelineEntry = z.infer<typeof timelineEntry>;
export type ReportRetention = z.infer<typeof reportRetention>;
export type AvailabilityLedger = z.infer<typeof availabilityLedger>;
export type CanarySettings = z.infer<typeof canarySettings>;
