/**
 * The Helm chart's values, in zod: the one source of values.yaml (defaults and their comments),
 * values.schema.json (which helm checks on every install, upgrade, template and lint) and the
 * values table in the chart's README. `make generate` writes all three; a test fails on drift.
 */
import { z } from 'zod';
import { DEFAULT_DNS_READ_RATES, DNS_READ_RATES_PATTERN } from '../operator/src/providers/dns/read-budget.ts';

const stringMap = (description: string) => z.record(z.string(), z.string()).default({}).describe(description);
/** A Kubernetes object passed through as it is (resources, affinity, ...); the API server checks it. */
const passThrough = (description: string, def: Record<string, unknown> = {}) =>
  z.record(z.string(), z.unknown()).default(def).describe(description);
const passThroughList = (description: string) => z.array(z.unknown()).default([]).describe(description);
const dnsLabel = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$/;
/** A Prometheus duration such as 5m or 1h30m. */
const promDuration = (def: string, description: string) =>
  z
    .string()
    .regex(/^([0-9]+(ms|s|m|h|d|w|y))+$/, 'must be a Prometheus duration such as 30s, 5m or 1h')
    .default(def)
    .describe(description);

const serviceAccount = (who: string) =>
  z
    .strictObject({
      create: z.boolean().default(true).describe(`Create the ${who} ServiceAccount.`),
      name: z
        .string()
        .regex(dnsLabel)
        .default('')
        .describe(`Name of the ${who} ServiceAccount. Default: <fullname>-${who}.`),
      annotations: stringMap(
        `Annotations of the ${who} ServiceAccount, e.g. eks.amazonaws.com/role-arn for the pod identity the AWS providers use.`,
      ),
    })
    .prefault({})
    .describe(`The ${who} ServiceAccount.`);

/** Scheduling and resources, the same for the operator and the observer. */
const podSettings = (who: string, resources: Record<string, unknown>, affinityDefault = '') => ({
  resources: passThrough(`Resource requests and limits of the ${who} container.`, resources),
  podAnnotations: stringMap(`Extra annotations on ${who} pods.`),
  podLabels: stringMap(`Extra labels on ${who} pods.`),
  nodeSelector: stringMap(`Node selector of ${who} pods.`),
  tolerations: passThroughList(`Tolerations of ${who} pods.`),
  affinity: passThrough(`Affinity of ${who} pods.${affinityDefault}`),
  priorityClassName: z.string().default('').describe(`PriorityClass of ${who} pods.`),
  extraArgs: z
    .array(z.string().regex(/^--[a-z-]+(=.*)?$/, 'must be a flag such as --resync-seconds=300'))
    .default([])
    .describe(`Extra flags for the ${who} process (see operator/src/config.ts).`),
  extraEnv: passThroughList(`Extra environment variables (EnvVar objects) of the ${who} container.`),
});

export const chartValues = z
  .strictObject({
    nameOverride: z.string().default('').describe('Replaces the chart name in resource names.'),
    fullnameOverride: z.string().default('').describe('Replaces <release>-<chart> in resource names.'),
    image: z
      .strictObject({
        repository: z
          .string()
          .min(1)
          .default('failover-operator')
          .describe('Image repository; push the image built from the Dockerfile to your registry.'),
        tag: z.string().default('').describe('Image tag. Default: the chart appVersion.'),
        digest: z
          .string()
          .regex(/^(sha256:[a-f0-9]{64})?$/, 'must be sha256:<64 hex digits>')
          .default('')
          .describe('Image digest (sha256:...); when set it is used instead of the tag.'),
        pullPolicy: z
          .enum(['Always', 'IfNotPresent', 'Never'])
          .default('IfNotPresent')
          .describe('Pull policy.'),
      })
      .prefault({})
      .describe('The operator image; the observer runs the same image.'),
    imagePullSecrets: z
      .array(z.strictObject({ name: z.string().min(1).describe('Secret name.') }))
      .default([])
      .describe('Secrets for pulling the image from a private registry.'),
    watchNamespace: z
      .string()
      .regex(dnsLabel, 'must be a namespace name')
      .default('')
      .describe(
        'Watch only this namespace; the RBAC becomes a Role there instead of a ClusterRole. Empty: all namespaces.',
      ),
    logLevel: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace'])
      .default('info')
      .describe('Log level of the operator and the observer (JSON logs on stdout).'),
    operator: z
      .strictObject({
        enabled: z
          .boolean()
          .default(true)
          .describe('Run the operator (off in a region that only runs an observer).'),
        replicas: z
          .number()
          .int()
          .min(1)
          .max(5)
          .default(2)
          .describe('Replicas; one leads through a Lease, the others keep a warm cache and take over.'),
        leaderElection: z
          .strictObject({
            enabled: z
              .boolean()
              .default(true)
              .describe('Elect one active replica. Required when replicas > 1.'),
            leaseName: z
              .string()
              .regex(dnsLabel)
              .default('')
              .describe('Name of the Lease in the release namespace. Default: <fullname>-leader.'),
            leaseDurationSeconds: z.number().int().min(2).max(600).default(15).describe('Lease duration.'),
            renewDeadlineSeconds: z
              .number()
              .int()
              .min(1)
              .max(600)
              .default(10)
              .describe('How long the leader keeps trying to renew before it gives up and exits.'),
            retryPeriodSeconds: z
              .number()
              .int()
              .min(1)
              .max(600)
              .default(2)
              .describe('Time between attempts to take or renew the lease.'),
          })
          .prefault({})
          .describe('Leader election through a coordination.k8s.io Lease.'),
        shards: z
          .number()
          .int()
          .min(1)
          .max(256)
          .default(1)
          .describe(
            "Spread the policies over this many shards, each with its own Lease (<leaseName>-shard-I-of-N), so every replica reconciles a share of them and a failed replica's shards are taken over within a lease duration. 1: one leader reconciles all. Needs leader election.",
          ),
        maxConcurrentReconciles: z
          .number()
          .int()
          .min(1)
          .max(64)
          .default(4)
          .describe('Policies reconciled at once.'),
        dnsReadsPerSecond: z
          .string()
          .regex(DNS_READ_RATES_PATTERN)
          .default(DEFAULT_DNS_READ_RATES)
          .describe(
            "Reads of policies' DNS records a second, per credentials (a Secret, or the ambient ones) or RFC 2136 server, divided by operator.shards; routine checks and discovery's re-reads wait while it is spent, an operation's reads and changes never do. A read is two requests on Route 53 (5 a second per account) and DigitalOcean (5,000 an hour per token). Provider=rate[,...]; a provider not named keeps its default; 0: no budget.",
          ),
        resyncSeconds: z
          .number()
          .int()
          .min(1)
          .max(86400)
          .default(600)
          .describe('Full resync period of the informers.'),
        terminationGracePeriodSeconds: z
          .number()
          .int()
          .min(10)
          .max(600)
          .default(30)
          .describe(
            'Time a stopping pod gets; the operator finishes its current step within this less 5 seconds, then releases the lease.',
          ),
        podDisruptionBudget: z
          .strictObject({
            enabled: z.boolean().default(true).describe('Create a PodDisruptionBudget for the operator.'),
            maxUnavailable: z
              .number()
              .int()
              .min(1)
              .default(1)
              .describe('Operator pods a voluntary disruption (node drain) may take at once.'),
          })
          .prefault({})
          .describe('Keeps a replica up during node drains, so the lease is taken over rather than lost.'),
        ...podSettings(
          'operator',
          { requests: { cpu: '100m', memory: '256Mi' }, limits: { memory: '512Mi' } },
          ' When empty, replicas prefer different nodes, so one node failure cannot take the leader and its successor.',
        ),
      })
      .prefault({})
      .describe('The operator Deployment.'),
    observer: z
      .strictObject({
        enabled: z
          .boolean()
          .default(false)
          .describe('Run an observer in this cluster. Install one per region (see Topology).'),
        name: z
          .string()
          .regex(dnsLabel)
          .default('')
          .describe(
            'Observer name, unique among observers, usually the region it runs in. Required when enabled.',
          ),
        region: z
          .string()
          .regex(dnsLabel)
          .default('')
          .describe('Region the observer runs in. Required when enabled.'),
        kubeconfigSecret: z
          .strictObject({
            name: z
              .string()
              .default('')
              .describe(
                'Secret with a kubeconfig for the cluster where the policies live. Empty: this cluster (in-cluster config).',
              ),
            key: z.string().min(1).default('kubeconfig').describe('Key of the kubeconfig in the Secret.'),
          })
          .prefault({})
          .describe('Where the observer publishes its FailoverObservations.'),
        ...podSettings('observer', {
          requests: { cpu: '50m', memory: '192Mi' },
          limits: { memory: '384Mi' },
        }),
      })
      .prefault({})
      .describe('The observer Deployment (one replica): probes from this region and publishes what it sees.'),
    serviceAccount: z
      .strictObject({
        operator: serviceAccount('operator'),
        observer: serviceAccount('observer'),
        agent: serviceAccount('agent'),
      })
      .prefault({})
      .describe('ServiceAccounts.'),
    rbac: z
      .strictObject({
        create: z
          .boolean()
          .default(true)
          .describe(
            'Create the operator, observer and agent roles (generated from operator/src/rbac.ts) and their bindings.',
          ),
        secretNamespaces: z
          .array(z.string().min(1).regex(dnsLabel, 'must be a namespace name'))
          .default([])
          .describe(
            'With watchNamespace empty: the namespaces of your FailoverPolicies and ReplicaClusters (their Secrets are always in their own namespace). The operator and observers may then read Secrets there only, through a Role in each, instead of in every namespace. Empty: Secrets in every namespace.',
          ),
        watchSecrets: z
          .boolean()
          .default(false)
          .describe(
            "Let the operator and observers list and watch Secrets where they may read them, and have them watch the Secrets' metadata (--watch-secrets): a Secret is then read again only when it changed, instead of every 5 minutes (with a Secret per cluster, 4,000 clusters are ~13 reads a second), and a rotated one is picked up at the next probe. RBAC cannot limit a list to metadata: list reads every Secret's data where granted, so pair it with secretNamespaces (or watchNamespace). Off: get alone, as least privilege.",
          ),
        observerAccess: z
          .boolean()
          .default(true)
          .describe(
            'Create the observer ServiceAccount and role here even without an observer Deployment, for observers in other clusters that publish to this one.',
          ),
        agentAccess: z
          .boolean()
          .default(false)
          .describe(
            'Create the database agent role (agentRules) and an agent ServiceAccount bound to it, for agents beside self-managed PostgreSQL (docs/agent.md): a systemd agent authenticates as that ServiceAccount, a sidecar binds its own ServiceAccount to the role. Off by default: managed databases need no agent.',
          ),
        aggregateToDefaultRoles: z
          .boolean()
          .default(true)
          .describe(
            'Let the built-in view role read policies, clusters and observations, and edit/admin also request promotions (kubectl failover promote).',
          ),
      })
      .prefault({})
      .describe('RBAC.'),
    podSecurityContext: passThrough('Pod securityContext of both Deployments.', {
      runAsNonRoot: true,
      runAsUser: 1000,
      runAsGroup: 1000,
      seccompProfile: { type: 'RuntimeDefault' },
    }),
    securityContext: passThrough('Container securityContext of both Deployments.', {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      privileged: false,
      capabilities: { drop: ['ALL'] },
    }),
    metrics: z
      .strictObject({
        port: z
          .number()
          .int()
          .min(1024)
          .max(65535)
          .default(8080)
          .describe('Port of /metrics, /healthz and /readyz (a non-root process cannot bind below 1024).'),
        service: z
          .strictObject({
            enabled: z.boolean().default(true).describe('Create the metrics Service(s).'),
            type: z
              .enum(['ClusterIP', 'NodePort', 'LoadBalancer'])
              .default('ClusterIP')
              .describe('Service type.'),
            annotations: stringMap('Annotations of the metrics Service(s).'),
          })
          .prefault({})
          .describe('The metrics Service, one for the operator and one for the observer.'),
        serviceMonitor: z
          .strictObject({
            enabled: z
              .boolean()
              .default(false)
              .describe('Create a ServiceMonitor (needs the Prometheus Operator CRDs).'),
            interval: promDuration('30s', 'Scrape interval.'),
            scrapeTimeout: promDuration('10s', 'Scrape timeout.'),
            labels: stringMap('Extra labels, e.g. the one your Prometheus selects ServiceMonitors by.'),
          })
          .prefault({})
          .describe('Prometheus Operator ServiceMonitor.'),
      })
      .prefault({})
      .describe('Metrics and their scraping.'),
    statusPage: z
      .strictObject({
        enabled: z
          .boolean()
          .default(false)
          .describe(
            "Serve the read-only status page (each policy's state, a 90-day availability bar, recent incidents with their timelines, the last drills; HTML and JSON) from every operator replica. No secrets and nothing writable; it shows cluster names, regions and status messages.",
          ),
        port: z
          .number()
          .int()
          .min(1024)
          .max(65535)
          .default(8081)
          .describe("The operator container's port for the status page (not the metrics port)."),
        service: z
          .strictObject({
            type: z
              .enum(['ClusterIP', 'NodePort', 'LoadBalancer'])
              .default('ClusterIP')
              .describe('Service type.'),
            port: z.number().int().min(1).max(65535).default(80).describe('Service port.'),
            annotations: stringMap('Annotations of the status page Service.'),
          })
          .prefault({})
          .describe('The status page Service (expose it with your Ingress or Gateway).'),
      })
      .prefault({})
      .describe('The status page.'),
    networkPolicy: z
      .strictObject({
        enabled: z
          .boolean()
          .default(false)
          .describe(
            'Create NetworkPolicies for the operator and observer pods: ingress only to their metrics and status page ports. Needs a CNI that enforces them.',
          ),
        metricsFrom: passThroughList(
          'NetworkPolicyPeers allowed to reach /metrics, /healthz and /readyz (your Prometheus). Empty: any source.',
        ),
        statusPageFrom: passThroughList(
          'NetworkPolicyPeers allowed to reach the status page (your ingress controller). Empty: any source.',
        ),
        egress: passThroughList(
          'NetworkPolicyEgressRules. Empty: egress is not restricted. When set, it is all the pods may reach: the API server, DNS, every database and DNS provider in every region, and cloud APIs; a rule missing here blocks a failover.',
        ),
      })
      .prefault({})
      .describe('NetworkPolicies (optional).'),
    grafanaDashboard: z
      .strictObject({
        enabled: z
          .boolean()
          .default(false)
          .describe(
            "Create a ConfigMap with the Grafana dashboard (phase, primary and epoch, lag, observers' votes, failovers and drills, availability), for Grafana's dashboard sidecar to load.",
          ),
        labels: z
          .record(z.string(), z.string())
          .default({ grafana_dashboard: '1' })
          .describe(
            'Labels of the ConfigMap: the one your Grafana sidecar looks for (grafana_dashboard: "1" by default).',
          ),
        annotations: stringMap(
          'Annotations of the ConfigMap, e.g. the sidecar folder (grafana_folder: Databases).',
        ),
        namespace: z
          .string()
          .default('')
          .describe(
            'Where the ConfigMap goes when the sidecar watches one namespace only; the release namespace when empty.',
          ),
      })
      .prefault({})
      .describe('Grafana dashboard, as a ConfigMap for the Grafana sidecar.'),
    prometheusRule: z
      .strictObject({
        enabled: z
          .boolean()
          .default(false)
          .describe('Create a PrometheusRule with the alerts (needs the Prometheus Operator CRDs).'),
        labels: stringMap('Extra labels, e.g. the one your Prometheus selects rules by.'),
        replicationLagSeconds: z
          .number()
          .min(0)
          .default(30)
          .describe('Alert when a standby lags more than this (set it to your RPO budget, maxLagSeconds).'),
        replicationLagFor: promDuration('5m', 'How long the lag must stay over before the alert fires.'),
        operationStuckMinutes: z
          .number()
          .int()
          .min(1)
          .default(30)
          .describe('Alert when a failover or switchover has been in progress longer than this.'),
        pausedTooLongHours: z
          .number()
          .int()
          .min(1)
          .default(24)
          .describe(
            'Alert when a policy has been paused (spec.paused, no automatic failover) longer than this.',
          ),
        drillOverdueMinutes: z
          .number()
          .int()
          .min(1)
          .default(120)
          .describe('Alert when a scheduled drill has not started this long after its time.'),
        leaderMissingFor: promDuration('2m', 'Alert when no operator replica holds the lease for this long.'),
        clusterDownFor: promDuration(
          '3m',
          'Alert when the operator has not reached a database for this long.',
        ),
        splitBrainProtectionLostFor: promDuration(
          '5m',
          'Alert when a primary that held its Lease has not had it for this long (its agent would not fence it if cut off).',
        ),
        noPromotableStandbyFor: promDuration(
          '10m',
          'Alert when a policy could not fail over (FailoverReady False) for this long.',
        ),
        failoverHappenedWindow: promDuration(
          '1h',
          'How long the alert that a failover happened keeps firing after it (someone must look and reprotect).',
        ),
        observersBelowQuorumFor: promDuration(
          '5m',
          'Alert when fewer fresh observers than the quorum see the primary for this long: an outage could not be confirmed.',
        ),
        dnsCheckFailingFor: promDuration(
          '15m',
          'Alert when checks of the DNS record keep failing for this long.',
        ),
        policyNotReadyFor: promDuration('30m', 'Alert when a policy is not Ready for this long.'),
        stepFailuresWindow: promDuration(
          '10m',
          'Window in which failed attempts of one operation step are counted.',
        ),
        stepFailuresThreshold: z
          .number()
          .int()
          .min(1)
          .default(3)
          .describe('Alert when one step of an operation fails this many times within stepFailuresWindow.'),
        availabilityFastBurnRate: z
          .number()
          .min(1)
          .default(14.4)
          .describe(
            'Page when the availability error budget (spec.slo.availabilityTarget) burns this many times too fast over both 1h and 5m: at 14.4, 2 % of a 30-day budget in an hour.',
          ),
        availabilitySlowBurnRate: z
          .number()
          .min(1)
          .default(6)
          .describe(
            'Warn when it burns this many times too fast over both 6h and 30m: at 6, 5 % of a 30-day budget in 6 hours.',
          ),
        runbookBaseUrl: z
          .string()
          .min(1)
          .default('docs/runbooks')
          .describe(
            'Where the runbooks are: each alert links <runbookBaseUrl>/<alert>.md. The default is their path in the repository; set the URL your people can open, e.g. https://git.example.com/platform/failover-operator/-/blob/main/docs/runbooks.',
          ),
      })
      .prefault({})
      .describe('Prometheus Operator PrometheusRule with the operator alerts.'),
  })
  .describe('Values of the failover-operator chart.');

export type ChartValues = z.infer<typeof chartValues>;
