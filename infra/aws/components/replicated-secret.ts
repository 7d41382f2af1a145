/**
 * A Secrets Manager secret in the primary region, replicated to the standby region and encrypted
 * there with the standby's key: when the primary region is gone, the credentials are still
 * readable where the new primary runs.
 */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { z } from 'zod';
import { parseComponentArgs, pulumiInput } from '../../shared/component-args.ts';

export const replicatedSecretArgs = z.object({
  /** The secret's name, such as payments/operator-db-credentials. */
  secretName: z.string().regex(/^[A-Za-z0-9/_+=.@-]{1,512}$/, 'must be a Secrets Manager secret name'),
  description: z.string().max(2048),
  primaryKmsKeyArn: pulumiInput<string>(),
  standbyRegion: z.string().min(1),
  standbyKmsKeyArn: pulumiInput<string>(),
  /** The secret value (a JSON string); keep it a Pulumi secret. */
  secretString: pulumiInput<string>(),
});

export type ReplicatedSecretArgs = z.input<typeof replicatedSecretArgs>;

export class ReplicatedSecret extends pulumi.ComponentResource {
  readonly arn: pulumi.Output<string>;

  /** `opts.provider` must be the AWS provider of the primary region. */
  constructor(name: string, args: ReplicatedSecretArgs, opts: pulumi.ComponentResourceOptions) {
    // Checked before super(): a component with bad arguments registers nothing, not even itself.
    const a = parseComponentArgs('ReplicatedSecret', name, replicatedSecretArgs, args);
    super('regionfailover:aws:ReplicatedSecret', name, {}, opts);

    const secret = new aws.secretsmanager.Secret(
      `${name}-secret`,
      {
        name: a.secretName,
        description: a.description,
        kmsKeyId: a.primaryKmsKeyArn,
        replicas: [{ region: a.standbyRegion, kmsKeyId: a.standbyKmsKeyArn }],
        recoveryWindowInDays: 7,
      },
      { parent: this },
    );
    new aws.secretsmanager.SecretVersion(
      `${name}-value`,
      { secretId: secret.id, secretString: pulumi.secret(a.secretString) },
      { parent: this },
    );

    this.arn = secret.arn;
    this.registerOutputs({ arn: this.arn });
  }
}
