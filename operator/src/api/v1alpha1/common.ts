/**
 * Building blocks shared by both kinds. Every string has a length limit and every list a size
 * limit: the API server needs them to bound the cost of CEL rules, and they stop absurd input.
 */
import { z } from 'zod';

export const GROUP = 'regionfailover.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

const label = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';

/** A Kubernetes object name (DNS-1123 subdomain). */
export const objectName = (description: string) =>
  z
    .string()
    .min(1)
    .max(253)
    .regex(new RegExp(`^${label}(\\.${label})*$`), 'must be a lowercase DNS-1123 name, like orders-ams3')
    .describe(description);

/** A short lowercase name (DNS-1123 label), as used for regions and ids. */
export const shortName = (description: string) =>
  z
    .string()
    .min(1)
    .max(63)
    .regex(new RegExp(`^${label}$`), 'must be lowercase letters, digits and dashes, like us-east-1')
    .describe(description);

/** A fully qualified DNS name without the trailing dot, such as db.example.com. */
export const dnsName = (description: string) =>
  z
    .string()
    .min(3)
    .max(253)
    .regex(
      /^([a-z0-9_]([-a-z0-9_]{0,61}[a-z0-9])?\.)+[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/,
      'must be a lowercase fully qualified DNS name without a trailing dot, like db.example.com',
    )
    .describe(description);

const ipv4 =
  '((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
const ipv6 = '[0-9a-fA-F:]*:[0-9a-fA-F:]*';
const hostname = '([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\\.)*[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?';

/** An IPv4 or IPv6 address or a hostname. */
export const hostOrAddress = (description: string) =>
  z
    .string()
    .min(1)
    .max(253)
    .regex(new RegExp(`^(${ipv4}|${ipv6}|${hostname})$`), 'must be an IP address or a lowercase hostname')
    .describe(description);

/** An AWS region such as us-east-1 or eu-central-1. */
export const awsRegion = (description: string) =>
  z
    .string()
    .max(32)
    .regex(/^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$/, 'must be an AWS region, like us-east-1')
    .describe(description);

/** An http(s) URL, for provider API endpoints that differ from the public default. */
export const httpUrl = (description: string) =>
  z
    .string()
    .max(2048)
    .regex(/^https?:\/\/[^\s/$.?#][^\s]*$/, 'must be an http:// or https:// URL')
    .describe(description);

export const secretKeyRef = (description: string) =>
  z
    .object({
      name: objectName('Name of a Secret in the same namespace.'),
      key: z
        .string()
        .min(1)
        .max(253)
        .regex(/^[-._a-zA-Z0-9]+$/, 'must be a Secret data key')
        .describe('Key within the Secret.'),
    })
    .describe(description);

/** A Secret holding a username and password (keys configurable). */
export const credentialsSecretRef = (description: string) =>
  z
    .object({
      name: objectName('Name of a Secret in the same namespace.'),
      usernameKey: z
        .string()
        .min(1)
        .max(253)
        .default('username')
        .describe('Key of the username in the Secret.'),
      passwordKey: z
        .string()
        .min(1)
        .max(253)
        .default('password')
        .describe('Key of the password in the Secret.'),
    })
    .describe(description);

/** metav1.Condition, exactly as Kubernetes defines it. */
export const condition = z
  .object({
    type: z
      .string()
      .min(1)
      .max(316)
      .regex(
        /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$/,
      )
      .describe('Type of condition in CamelCase, such as Ready.'),
    status: z.enum(['True', 'False', 'Unknown']).describe('Status of the condition: True, False or Unknown.'),
    observedGeneration: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('The .metadata.generation the condition was set from.'),
    lastTransitionTime: z.iso
      .datetime({ offset: true })
      .describe('When the condition last changed from one status to another.'),
    reason: z
      .string()
      .min(1)
      .max(1024)
      .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/)
      .describe('A programmatic identifier, in CamelCase, for the last transition.'),
    message: z.string().max(32768).describe('A human-readable message about the transition.'),
  })
  .describe('A condition, as in metav1.Condition.');

/**
 * A list whose items are unique (x-kubernetes-list-type: set). The API server enforces it; the
 * refinement makes zod enforce it the same way.
 */
export function setOf<T extends z.ZodType>(item: T, max: number) {
  return z
    .array(item)
    .max(max)
    .superRefine((items, ctx) => reportDuplicates(items, (x) => JSON.stringify(x), ctx))
    .meta({ 'x-kubernetes-list-type': 'set' });
}

/** A list of objects keyed by one field (x-kubernetes-list-type: map), such as conditions by type. */
export function mapOf<T extends z.ZodObject>(item: T, key: keyof z.infer<T> & string, max: number) {
  return z
    .array(item)
    .max(max)
    .superRefine((items, ctx) =>
      reportDuplicates(items, (x) => JSON.stringify((x as Record<string, unknown>)[key]), ctx),
    )
    .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': [key] });
}

function reportDuplicates<T>(items: T[], keyOf: (item: T) => string, ctx: z.RefinementCtx): void {
  const seen = new Set<string>();
  items.forEach((item, index) => {
    const key = keyOf(item);
    if (seen.has(key)) ctx.addIssue({ code: 'custom', message: `Duplicate value: ${key}`, path: [index] });
    seen.add(key);
  });
}

export const conditions = mapOf(condition, 'type', 16).describe(
  'The latest observations of the object state, one per condition type.',
);

export type Condition = z.infer<typeof condition>;

export const timestamp = (description: string) => z.iso.datetime({ offset: true }).describe(description);

/** What rejoining a former primary discards: the WAL it wrote after the histories parted. */
export const discardedWal = (description: string) =>
  z
    .object({
      bytes: z.number().int().min(0).describe('WAL bytes the former primary wrote after the fork.'),
      transactions: z.number().int().min(0).optional().describe('Transactions committed in them.'),
      forkLsn: z.string().max(32).optional().describe('Where the histories parted.'),
      endLsn: z.string().max(32).optional().describe("Where the former primary's WAL ended."),
    })
    .describe(description);

/** The metadata fields the operator reads; others are kept as they are. */
export const objectMeta = z
  .object({
    name: z.string(),
    namespace: z.string().optional(),
    uid: z.string().optional(),
    generation: z.number().int().optional(),
    resourceVersion: z.string().optional(),
  })
  .loose()
  .describe('Standard object metadata.');

/** A whole object of one of our kinds, as the API returns it. */
export function resourceObject<K extends string, S extends z.ZodType, T extends z.ZodType | undefined>(
  kind: K,
  spec: S,
  status: T,
) {
  return z.object({
    apiVersion: z.string().describe(API_VERSION),
    kind: z.literal(kind).describe(kind),
    metadata: objectMeta,
    spec,
    ...((status ? { status: status.optional() } : {}) as T extends z.ZodType
      ? { status: z.ZodOptional<T> }
      : Record<never, never>),
  });
}
