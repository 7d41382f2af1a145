/**
 * The shape every stack exports: the specs of the operator's ReplicaClusters and FailoverPolicy,
 * checked with the operator's own zod schemas, so what a stack emits is exactly what the API
 * server will accept. `to-manifests.ts` turns these outputs into YAML for `kubectl apply`.
 */
import * as pulumi from '@pulumi/pulumi';
import { z } from 'zod';
import { failoverPolicySpec, objectName, replicaClusterSpec } from '../../operator/src/api/v1alpha1/index.ts';
import { parseWith } from '../../operator/src/api/validate.ts';

/** A ReplicaCluster spec as written in a manifest (defaults may be left out). */
export type ReplicaClusterSpecInput = z.input<typeof replicaClusterSpec>;
/** A FailoverPolicy spec as written in a manifest (defaults may be left out). */
export type FailoverPolicySpecInput = z.input<typeof failoverPolicySpec>;

/** One object to create: its metadata.name and its spec. */
export interface NamedSpec<S> {
  name: string;
  spec: S;
}

/** The stack outputs `to-manifests` reads; stacks may export more beside them. */
export interface FailoverStackOutputs {
  /** Namespace the objects are created in; the DNS ownership record names it. */
  namespace: string;
  /** The primary first, then the standbys. */
  replicaClusters: NamedSpec<ReplicaClusterSpecInput>[];
  failoverPolicy: NamedSpec<FailoverPolicySpecInput>;
}

const k8sNamespace = z
  .string()
  .max(63)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a Kubernetes namespace name, like failover-system');

/**
 * The outputs checked as a whole: each spec with the operator's schema, and the policy's primary
 * and standbys among the clusters the stack made.
 */
export const failoverStackOutputs = z
  .object({
    namespace: k8sNamespace,
    replicaClusters: z
      .array(z.object({ name: objectName('ReplicaCluster name.'), spec: replicaClusterSpec }))
      .min(2),
    failoverPolicy: z.object({ name: objectName('FailoverPolicy name.'), spec: failoverPolicySpec }),
  })
  .superRefine((outputs, ctx) => {
    const names = new Set(outputs.replicaClusters.map((c) => c.name));
    const { primary, standbys } = outputs.failoverPolicy.spec;
    for (const [path, name] of [
      [['failoverPolicy', 'spec', 'primary'], primary],
      ...standbys.map((s, i) => [['failoverPolicy', 'spec', 'standbys', i], s] as const),
    ] as const) {
      if (!names.has(name)) {
        ctx.addIssue({
          code: 'custom',
          path: [...path],
          message: `names ReplicaCluster ${name}, which the stack outputs do not contain`,
        });
      }
    }
  });

/**
 * Checks a spec with the operator's schema once its values are known, and fails the update with
 * the field and the reason if the stack would emit something the API server refuses. Returns the
 * spec as built (defaults left to the API server).
 */
export function checkedSpec<T>(
  schema: z.ZodType,
  what: string,
  spec: pulumi.Input<T>,
): pulumi.Output<pulumi.Unwrap<T>> {
  return pulumi.output(spec).apply((value) => {
    const parsed = parseWith(schema, value, what);
    if (!parsed.ok) {
      throw new Error(`the stack built an invalid ${what}: ${parsed.message}`);
    }
    return value;
  }) as pulumi.Output<pulumi.Unwrap<T>>;
}
