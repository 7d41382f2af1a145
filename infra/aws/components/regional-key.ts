/**
 * A customer-managed KMS key in one region. KMS keys never leave their region, so an encrypted
 * cross-region replica (and a replicated secret) needs a key of its own in the standby region:
 * that key is what lets the standby keep working when the primary region, and its key, are gone.
 */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { z } from 'zod';
import { parseComponentArgs } from '../../shared/component-args.ts';

export const regionalKeyArgs = z.object({
  region: z.string().min(1),
  /** What the key protects, for the key's description and alias. */
  purpose: z.string().regex(/^[a-z0-9-]+$/, 'must be lowercase letters, digits and dashes'),
  deletionWindowDays: z.number().int().min(7).max(30).default(30),
});

export type RegionalKeyArgs = z.input<typeof regionalKeyArgs>;

export class RegionalKey extends pulumi.ComponentResource {
  readonly arn: pulumi.Output<string>;

  /** `opts.provider` must be the AWS provider of the region. */
  constructor(name: string, args: RegionalKeyArgs, opts: pulumi.ComponentResourceOptions) {
    // Checked before super(): a component with bad arguments registers nothing, not even itself.
    const a = parseComponentArgs('RegionalKey', name, regionalKeyArgs, args);
    super('regionfailover:aws:RegionalKey', name, {}, opts);

    const key = new aws.kms.Key(
      `${name}-key`,
      {
        description: `${a.purpose} in ${a.region}`,
        enableKeyRotation: true,
        deletionWindowInDays: a.deletionWindowDays,
      },
      { parent: this },
    );
    new aws.kms.Alias(
      `${name}-alias`,
      { name: `alias/${a.purpose}`, targetKeyId: key.keyId },
      { parent: this },
    );

    this.arn = key.arn;
    this.registerOutputs({ arn: this.arn });
  }
}
