/**
 * The network one region's database lives in: a VPC, one private subnet per availability zone,
 * a security group that admits PostgreSQL only from the listed networks, and the DB subnet group.
 * No internet gateway and no NAT: the database is never reachable from the internet, and
 * cross-region replication runs on AWS's own network without one.
 */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { z } from 'zod';
import { ipv4Cidr, prefixOf, subnetCidr } from '../../shared/cidr.ts';
import { parseComponentArgs } from '../../shared/component-args.ts';

export const regionalNetworkArgs = z.object({
  /** The region, used in names and tags; the provider decides where resources go. */
  region: z.string().min(1),
  /** The VPC's range, /16 to /24. */
  cidrBlock: ipv4Cidr.refine((cidr) => prefixOf(cidr) >= 16 && prefixOf(cidr) <= 24, {
    message: 'must be a /16 to /24 network',
  }),
  /** Networks allowed to connect to PostgreSQL besides the VPC itself (the operator, its observers). */
  allowedCidrs: z.array(ipv4Cidr).max(50).default([]),
  /** Private subnets, one per availability zone; RDS needs at least two zones. */
  subnetCount: z.number().int().min(2).max(4).default(3),
  port: z.number().int().min(1).max(65535).default(5432),
});

export type RegionalNetworkArgs = z.input<typeof regionalNetworkArgs>;

export class RegionalNetwork extends pulumi.ComponentResource {
  readonly vpcId: pulumi.Output<string>;
  readonly subnetIds: pulumi.Output<string>[];
  readonly securityGroupId: pulumi.Output<string>;
  readonly dbSubnetGroupName: pulumi.Output<string>;

  /** `opts.provider` must be the AWS provider of the region. */
  constructor(name: string, args: RegionalNetworkArgs, opts: pulumi.ComponentResourceOptions) {
    // Checked before super(): a component with bad arguments registers nothing, not even itself.
    const a = parseComponentArgs('RegionalNetwork', name, regionalNetworkArgs, args);
    super('regionfailover:aws:RegionalNetwork', name, {}, opts);
    const child = { parent: this };

    const vpc = new aws.ec2.Vpc(
      `${name}-vpc`,
      {
        cidrBlock: a.cidrBlock,
        enableDnsSupport: true,
        enableDnsHostnames: true,
        tags: { Name: `${name}-${a.region}` },
      },
      child,
    );

    // Zones that need no opt-in: a Local Zone in the list would make the subnet group unusable.
    const zones = aws.getAvailabilityZonesOutput(
      { state: 'available', filters: [{ name: 'opt-in-status', values: ['opt-in-not-required'] }] },
      child,
    );

    this.subnetIds = Array.from({ length: a.subnetCount }, (_, index) => {
      const subnet = new aws.ec2.Subnet(
        `${name}-private-${index}`,
        {
          vpcId: vpc.id,
          cidrBlock: subnetCidr(a.cidrBlock, 4, index),
          availabilityZone: zones.names.apply((names) => {
            const zone = names[index];
            if (!zone) {
              throw new Error(
                `${a.region} has ${names.length} availability zones; lower subnetCount to at most ${names.length}`,
              );
            }
            return zone;
          }),
          mapPublicIpOnLaunch: false,
          tags: { Name: `${name}-private-${index}` },
        },
        child,
      );
      return subnet.id;
    });

    const securityGroup = new aws.ec2.SecurityGroup(
      `${name}-postgres`,
      {
        vpcId: vpc.id,
        description: 'PostgreSQL from the VPC and the networks of the failover operator',
        ingress: [
          {
            description: 'PostgreSQL',
            protocol: 'tcp',
            fromPort: a.port,
            toPort: a.port,
            cidrBlocks: [...new Set([a.cidrBlock, ...a.allowedCidrs])],
          },
        ],
        tags: { Name: `${name}-postgres` },
      },
      child,
    );

    const subnetGroup = new aws.rds.SubnetGroup(
      `${name}-db`,
      { subnetIds: this.subnetIds, description: `Private subnets of ${name} in ${a.region}` },
      child,
    );

    this.vpcId = vpc.id;
    this.securityGroupId = securityGroup.id;
    this.dbSubnetGroupName = subnetGroup.name;
    this.registerOutputs({
      vpcId: this.vpcId,
      subnetIds: this.subnetIds,
      securityGroupId: this.securityGroupId,
      dbSubnetGroupName: this.dbSubnetGroupName,
    });
  }
}
