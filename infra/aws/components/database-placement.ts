/** Where one region's database goes: its provider, network and key. Shared by both database kinds. */
import * as aws from '@pulumi/aws';
import type * as pulumi from '@pulumi/pulumi';
import { z } from 'zod';
import { pulumiInput } from '../../shared/component-args.ts';

export const databasePlacement = z.object({
  region: z.string().min(1),
  /** The AWS provider of that region; every resource of the region is created through it. */
  provider: z.custom<aws.Provider>((value) => aws.Provider.isInstance(value), 'must be an aws.Provider'),
  dbSubnetGroupName: pulumiInput<string>(),
  securityGroupIds: z.array(pulumiInput<string>()).min(1),
  /** ARN of a KMS key in the same region. */
  kmsKeyArn: pulumiInput<string>(),
});

export type DatabasePlacement = z.input<typeof databasePlacement>;

/** What the stack needs to know of one region's database once it exists. */
export interface DatabaseEndpoint {
  region: string;
  /** RDS DBInstanceIdentifier, or the DBClusterIdentifier for Aurora. */
  identifier: string;
  arn: pulumi.Output<string>;
  /** Host name clients connect to; also the value the DNS record points at. */
  host: pulumi.Output<string>;
}
