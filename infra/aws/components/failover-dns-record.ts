/**
 * The Route 53 record clients resolve, pointing at the primary, and the ownership TXT record
 * beside it (`_failover.<name>`: `owner=<namespace>/<policy>`, `epoch=0`). The operator only ever
 * changes a record whose TXT names it as owner, so the stack creates both together. After that
 * the operator owns their values: Pulumi creates them once and never puts them back.
 */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { z } from 'zod';
import { dnsName } from '../../../operator/src/api/v1alpha1/index.ts';
import { ownershipRecordName, ownershipTxt } from '../../../operator/src/providers/dns/port.ts';
import { parseComponentArgs, pulumiInput } from '../../shared/component-args.ts';

export const failoverDnsRecordArgs = z.object({
  zoneName: dnsName('The hosted zone.'),
  /** An existing hosted zone; without it the component creates one for zoneName. */
  hostedZoneId: z
    .string()
    .regex(/^Z[A-Z0-9]+$/, 'must be a Route 53 hosted zone ID')
    .optional(),
  recordName: dnsName('The record clients resolve.'),
  ttlSeconds: z.number().int().min(5).max(3600),
  /** The primary's host name: the record's first value. */
  target: pulumiInput<string>(),
  /** `<namespace>/<policy name>` of the FailoverPolicy that will own the record. */
  ownerId: z.string().regex(/^[A-Za-z0-9._/-]+$/, 'must be letters, digits and . _ / -'),
  /** The ARN partition, for the hosted zone's ARN. */
  partition: z.enum(['aws', 'aws-cn', 'aws-us-gov']).default('aws'),
});

export type FailoverDnsRecordArgs = z.input<typeof failoverDnsRecordArgs>;

export class FailoverDnsRecord extends pulumi.ComponentResource {
  readonly hostedZoneId: pulumi.Output<string>;
  readonly hostedZoneArn: pulumi.Output<string>;
  /** Name servers of a zone the component created (to delegate to); empty for an existing zone. */
  readonly nameServers: pulumi.Output<string[]>;
  readonly recordName: string;
  readonly ownershipRecordName: string;

  /** Route 53 is global: any of the stack's AWS providers will do for `opts.provider`. */
  constructor(name: string, args: FailoverDnsRecordArgs, opts: pulumi.ComponentResourceOptions) {
    // Checked before super(): a component with bad arguments registers nothing, not even itself.
    const a = parseComponentArgs('FailoverDnsRecord', name, failoverDnsRecordArgs, args);
    super('regionfailover:aws:FailoverDnsRecord', name, {}, opts);
    const child = { parent: this };

    if (a.hostedZoneId) {
      this.hostedZoneId = pulumi.output(a.hostedZoneId);
      this.hostedZoneArn = pulumi.output(`arn:${a.partition}:route53:::hostedzone/${a.hostedZoneId}`);
      this.nameServers = pulumi.output([]);
    } else {
      const zone = new aws.route53.Zone(
        `${name}-zone`,
        { name: a.zoneName, comment: `Regional failover records of ${a.ownerId}` },
        child,
      );
      this.hostedZoneId = zone.zoneId;
      this.hostedZoneArn = zone.arn;
      this.nameServers = zone.nameServers;
    }

    // The operator rewrites these values on every failover (the record's target, the epoch).
    const operatorOwned = { ...child, ignoreChanges: ['records'] };

    new aws.route53.Record(
      `${name}-record`,
      {
        zoneId: this.hostedZoneId,
        name: a.recordName,
        type: 'CNAME',
        ttl: a.ttlSeconds,
        records: [a.target],
        // Never take over a record someone else made: that is the operator's rule too.
        allowOverwrite: false,
      },
      operatorOwned,
    );

    this.ownershipRecordName = ownershipRecordName(a.recordName);
    new aws.route53.Record(
      `${name}-owner`,
      {
        zoneId: this.hostedZoneId,
        name: this.ownershipRecordName,
        type: 'TXT',
        ttl: a.ttlSeconds,
        records: ownershipTxt(a.ownerId, 0),
        allowOverwrite: false,
      },
      operatorOwned,
    );

    this.recordName = a.recordName;
    this.registerOutputs({ hostedZoneId: this.hostedZoneId, nameServers: this.nameServers });
  }
}
