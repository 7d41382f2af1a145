/** The ports act works through for one policy, built from the operator's context. */
import { getServers } from 'node:dns';
import { type DrillState, type FailoverPolicySpec, replicaClusterSpec } from '../../api/v1alpha1/index.ts';
import { parseOnce } from '../../api/validate.ts';
import type { CanaryTarget } from '../../providers/canary/port.ts';
import type { ProviderSpec } from '../../providers/database/port.ts';
import {
  createDnsProvider,
  defaultVerifyServers,
  dnsSecretRef,
  parseServer,
} from '../../providers/dns/factory.ts';
import { DirectDnsVerifier, findAuthoritativeServers } from '../../providers/dns/verifier.ts';
import { objectKey } from '../../runtime/informer.ts';
import type { KubeObject } from '../../runtime/kube-client.ts';
import type { OperatorContext } from '../context.ts';
import { recordRef, type StepPorts } from './act.ts';
import { drillCopyClusterName, drillRecordRef } from './isolated-drill.ts';
import { agentReportOf } from './observe.ts';

const verifier = new DirectDnsVerifier({ timeoutMs: 2_000 });

/** The owner this policy writes into the ownership TXT record beside its DNS record. */
export function dnsOwner(policy: KubeObject, spec: FailoverPolicySpec): string {
  return spec.dns.ownerId ?? `${policy.metadata.namespace ?? 'default'}/${policy.metadata.name}`;
}

export function portsFor(ctx: OperatorContext, policy: KubeObject, spec: FailoverPolicySpec): StepPorts {
  const namespace = policy.metadata.namespace ?? 'default';
  const clusterSpec = (name: string) => {
    const obj = ctx.clusters.get(objectKey({ metadata: { name, namespace } }));
    const parsed = obj ? parseOnce(replicaClusterSpec, obj.spec) : undefined;
    return parsed?.ok ? parsed.value : undefined;
  };
  return {
    owner: dnsOwner(policy, spec),
    policy: policy.metadata.name,
    agentReport: (name) => agentReportOf(ctx.clusters.get(objectKey({ metadata: { name, namespace } }))),
    providerSpec: (name) => clusterSpec(name)?.provider as ProviderSpec | undefined,
    dnsTarget: (name) => clusterSpec(name)?.dnsTarget,
    database: async (name) => {
      const s = clusterSpec(name);
      if (!s) throw new Error(`ReplicaCluster ${namespace}/${name} is missing or invalid`);
      return ctx.probes.providerFor({
        key: objectKey({ metadata: { name, namespace } }),
        namespace,
        spec: s,
      });
    },
    withDns: async (use) => {
      // Before any await: a read that can wait checks the budget just before this spends from it.
      ctx.dnsReads.spend(spec.dns.provider, namespace);
      const ref = dnsSecretRef(spec.dns.provider);
      const secret = ref ? (await ctx.probes.secrets.read(namespace, ref.name, ref.key)).value : undefined;
      const dns = createDnsProvider(
        spec.dns.provider,
        secret,
        ref ? `Secret ${namespace}/${ref.name} key ${ref.key}` : '',
      );
      try {
        return await use(dns);
      } finally {
        await dns.close().catch(() => undefined);
      }
    },
    verifier,
    verifyServers: async () => {
      if (spec.dns.authoritativeNameservers?.length)
        return spec.dns.authoritativeNameservers.map((s) => parseServer(s));
      const fixed = defaultVerifyServers(spec.dns.provider);
      if (fixed) return fixed;
      const resolver = getServers()[0];
      if (!resolver)
        throw new Error(
          'no DNS resolver configured to find the zone name servers; list them in spec.dns.authoritativeNameservers',
        );
      return findAuthoritativeServers(spec.dns.zone, parseServer(resolver));
    },
  };
}

/** The `drill` key of the continuous canary writer's rows (spec.canary.mode Always). */
export const CONTINUOUS_CANARY_ID = 'continuous';

/**
 * Where a canary writes: through the policy's DNS name as its authoritative servers answer it
 * now, with spec.primary's connection settings and credentials, the way an application configured
 * for this database would connect. An isolated drill's canary writes through the drill record to
 * the copy's port instead, and only to a server that says it is the copy. Without a drill, the
 * continuous writer of spec.canary, at its interval and retention.
 */
export async function canaryTargetFor(
  ctx: OperatorContext,
  policy: KubeObject,
  spec: FailoverPolicySpec,
  ports: StepPorts,
  drill?: Pick<DrillState, 'id' | 'mode' | 'isolated'>,
): Promise<CanaryTarget> {
  const drillId = drill?.id ?? CONTINUOUS_CANARY_ID;
  const isolated = drill?.mode === 'Isolated' ? drill.isolated : undefined;
  const record = drill && isolated ? drillRecordRef(spec, drill) : recordRef(spec);
  const namespace = policy.metadata.namespace ?? 'default';
  const object = ctx.clusters.get(objectKey({ metadata: { name: spec.primary, namespace } }));
  const parsed = object ? parseOnce(replicaClusterSpec, object.spec) : undefined;
  if (!parsed?.ok) throw new Error(`ReplicaCluster ${namespace}/${spec.primary} is missing or invalid`);
  const { connection } = parsed.value;
  const ref = connection.credentialsSecretRef;
  const user = await ctx.probes.secrets.read(namespace, ref.name, ref.usernameKey);
  const password = await ctx.probes.secrets.read(namespace, ref.name, ref.passwordKey);
  const targets = new Map(
    [spec.primary, ...spec.standbys].flatMap((n) => {
      const value = ports.dnsTarget(n);
      return value ? [[value.replace(/\.$/, '').toLowerCase(), n] as const] : [];
    }),
  );
  const settings = drill
    ? spec.drills?.canary
    : { intervalMilliseconds: spec.canary?.intervalMilliseconds, retentionDays: spec.canary?.retentionDays };
  return {
    resolve: async () => {
      const answers = await ports.verifier.query(record, await ports.verifyServers());
      return answers.find((a) => a.values?.length)?.values?.[0];
    },
    clusterOf: (address) => targets.get(address.replace(/\.$/, '').toLowerCase()),
    port: isolated?.port ?? connection.port,
    database: connection.database,
    user: user.value,
    password: password.value,
    sslMode: connection.sslMode,
    serverName: record.name,
    // The agent's copy names itself after the drill; a provider's copy is its own instance.
    ...(isolated && isolated.copiedBy !== 'Provider'
      ? { requireClusterName: drillCopyClusterName(drillId) }
      : {}),
    drillId,
    policyKey: objectKey(policy),
    writer: `${ctx.identity}@${ctx.clock.now().toISOString()}`,
    intervalMs: settings?.intervalMilliseconds ?? (drill ? 100 : 1000),
    retentionDays: settings?.retentionDays ?? 7,
  };
}
