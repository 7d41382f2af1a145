/**
 * The DigitalOcean DNS record clients resolve, pointing at the primary, and the ownership TXT
 * records beside it at `_failover.<name>`: one holding `owner=<namespace>/<policy>`, one holding
 * `epoch=0` (a DigitalOcean record has a single value, so each string is a record of its own).
 * The operator only changes a record whose TXT names it as owner, and from then on the values are
 * its to change: Pulumi creates them once and never puts them back.
 */
import * as digitalocean from '@pulumi/digitalocean';
import * as pulumi from '@pulumi/pulumi';
import { z } from 'zod';
import { dnsName } from '../../../operator/src/api/v1alpha1/index.ts';
import { ownershipRecordName, ownershipTxt } from '../../../operator/src/providers/dns/port.ts';
import { parseComponentArgs, pulumiInput } from '../../shared/component-args.ts';

export const failoverDomainRecordArgs = z
  .object({
    zoneName: dnsName('The domain.'),
    /** Create the domain; false when it already exists in the DigitalOcean account. */
    createDomain: z.boolean(),
    recordName: dnsName('The record clients resolve.'),
    ttlSeconds: z.number().int().min(30, 'DigitalOcean refuses TTLs under 30 seconds').max(86400),
    /** The primary's host name: the record's first value. */
    target: pulumiInput<string>(),
    ownerId: z.string().regex(/^[A-Za-z0-9._/-]+$/, 'must be letters, digits and . _ / -'),
  })
  .refine((a) => a.recordName.endsWith(`.${a.zoneName}`), {
    path: ['recordName'],
    message: 'must be a name below zoneName',
  });

export type FailoverDomainRecordArgs = z.input<typeof failoverDomainRecordArgs>;

export class FailoverDomainRecord extends pulumi.ComponentResource {
  readonly domain: pulumi.Output<string>;
  readonly recordName: string;
  readonly ownershipRecordName: string;

  constructor(name: string, args: FailoverDomainRecordArgs, opts: pulumi.ComponentResourceOptions = {}) {
    // Checked before super(): a component with bad arguments registers nothing, not even itself.
    const a = parseComponentArgs('FailoverDomainRecord', name, failoverDomainRecordArgs, args);
    super('regionfailover:digitalocean:FailoverDomainRecord', name, {}, opts);
    const child = { parent: this };

    this.domain = a.createDomain
      ? new digitalocean.Domain(`${name}-domain`, { name: a.zoneName }, child).name
      : pulumi.output(a.zoneName);

    // DigitalOcean names records relative to the domain.
    const relative = (fqdn: string) => fqdn.slice(0, -(a.zoneName.length + 1));
    // The operator rewrites the target on every failover and the epoch with it.
    const operatorOwned = { ...child, ignoreChanges: ['value'] };

    new digitalocean.DnsRecord(
      `${name}-record`,
      {
        domain: this.domain,
        type: 'CNAME',
        name: relative(a.recordName),
        // A CNAME value is a fully qualified name: the trailing dot keeps DigitalOcean from
        // appending the domain to it.
        value: pulumi.interpolate`${a.target}.`,
        ttl: a.ttlSeconds,
      },
      operatorOwned,
    );

    this.ownershipRecordName = ownershipRecordName(a.recordName);
    for (const text of ownershipTxt(a.ownerId, 0)) {
      const field = text.split('=')[0];
      new digitalocean.DnsRecord(
        `${name}-txt-${field}`,
        {
          domain: this.domain,
          type: 'TXT',
          name: relative(this.ownershipRecordName),
          value: text,
          ttl: a.ttlSeconds,
        },
        operatorOwned,
      );
    }

    this.recordName = a.recordName;
    this.registerOutputs({ domain: this.domain });
  }
}
