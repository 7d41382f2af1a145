/**
 * Names of the replicas that reprotection creates for a former primary (an RDS instance, a
 * DigitalOcean read-only node). The name is the idempotency key: a second call finds the replica
 * it asked for by name instead of asking again, so the name must follow from the request alone.
 */
import { createHash } from 'node:crypto';

export interface ReplacementNameOptions {
  /** The database being replaced: its RDS identifier or DigitalOcean name. */
  replaces: string;
  /** The active primary's epoch. */
  epoch: number;
  /** Put in front (the policy), when the provider has no tags to carry it. */
  prefix?: string;
  /** The provider's longest name: 63 for both RDS and DigitalOcean. */
  maxLength: number;
}

/**
 * `[<prefix>-]<replaces>-e<epoch>`, lower case, letters, digits and single hyphens, starting with
 * a letter (RDS wants one). A suffix `-e<n>` and the prefix that an earlier reprotection gave
 * `replaces` are dropped first, so a database replaced again and again keeps a name of the same
 * length (`orders-west`, `orders-west-e5`, `orders-west-e9`). A name too long keeps its head and
 * gets a hash of the whole, so two long names that share a head still differ.
 */
export function replacementName(options: ReplacementNameOptions): string {
  const prefix = options.prefix === undefined ? '' : clean(options.prefix);
  let base = clean(options.replaces).replace(/-e\d+$/, '');
  if (prefix !== '' && base.startsWith(`${prefix}-`)) base = base.slice(prefix.length + 1);
  const suffix = `-e${options.epoch}`;
  const whole = [prefix, base].filter((part) => part !== '').join('-') || 'db';
  const head = /^[a-z]/.test(whole) ? whole : `db-${whole}`;
  if (head.length + suffix.length <= options.maxLength) return `${head}${suffix}`;
  const hash = createHash('sha256')
    .update(`${options.prefix ?? ''}/${options.replaces}`)
    .digest('hex')
    .slice(0, 6);
  const room = options.maxLength - suffix.length - hash.length - 1;
  return `${head.slice(0, room).replace(/-+$/, '')}-${hash}${suffix}`;
}

/** Lower case; anything but letters and digits becomes one hyphen; no hyphen at either end. */
function clean(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}
