/**
 * Regions the stacks accept. A typo in a region name would otherwise surface minutes into
 * `pulumi up` as a provider error (or, worse, as a replica in a region nobody meant), so stack
 * configuration is checked against these lists before anything is planned. A region that opened
 * after this list was written needs one line here.
 */

/** AWS regions, in every partition. */
export const AWS_REGIONS = [
  'us-east-1',
  'us-east-2',
  'us-west-1',
  'us-west-2',
  'af-south-1',
  'ap-east-1',
  'ap-east-2',
  'ap-south-1',
  'ap-south-2',
  'ap-southeast-1',
  'ap-southeast-2',
  'ap-southeast-3',
  'ap-southeast-4',
  'ap-southeast-5',
  'ap-southeast-6',
  'ap-southeast-7',
  'ap-northeast-1',
  'ap-northeast-2',
  'ap-northeast-3',
  'ca-central-1',
  'ca-west-1',
  'eu-central-1',
  'eu-central-2',
  'eu-west-1',
  'eu-west-2',
  'eu-west-3',
  'eu-south-1',
  'eu-south-2',
  'eu-north-1',
  'il-central-1',
  'me-south-1',
  'me-central-1',
  'mx-central-1',
  'sa-east-1',
  'us-gov-east-1',
  'us-gov-west-1',
  'cn-north-1',
  'cn-northwest-1',
] as const;

export type AwsRegion = (typeof AWS_REGIONS)[number];

/** The ARN partition of an AWS region: replication and IAM never cross a partition. */
export function awsPartition(region: string): 'aws' | 'aws-cn' | 'aws-us-gov' {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  return 'aws';
}

/** DigitalOcean datacenters that offer managed PostgreSQL (some with limited machine types). */
export const DIGITALOCEAN_DATABASE_REGIONS = [
  'nyc1',
  'nyc2',
  'nyc3',
  'ams3',
  'sfo2',
  'sfo3',
  'sgp1',
  'lon1',
  'fra1',
  'tor1',
  'blr1',
  'syd1',
  'atl1',
  'ric1',
  'mkc1',
  'mem1',
] as const;

export type DigitalOceanRegion = (typeof DIGITALOCEAN_DATABASE_REGIONS)[number];
