/** IPv4 networks in CIDR notation: checking, splitting into subnets, overlap. */
import { z } from 'zod';

/** CIDR notation for IPv4 networks, such as 10.10.0.0/16. */
export const ipv4Cidr = z
  .string()
  .regex(
    /^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\/([0-9]|[12][0-9]|3[0-2])$/,
    'must be an IPv4 network in CIDR notation, like 10.10.0.0/16',
  );

/** The prefix length of a network in CIDR notation. */
export function prefixOf(cidr: string): number {
  return Number(cidr.split('/')[1]);
}

function toInt(address: string): number {
  return address.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
}

function toAddress(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

/** The index-th subnet of `cidr` with `newBits` more prefix bits (Terraform's cidrsubnet). */
export function subnetCidr(cidr: string, newBits: number, index: number): string {
  const [address = '', prefixText = ''] = cidr.split('/');
  const prefix = Number(prefixText) + newBits;
  if (prefix > 32) throw new Error(`${cidr} cannot be split into /${prefix} subnets`);
  if (index < 0 || index >= 2 ** newBits)
    throw new Error(`${cidr} has no subnet number ${index} of /${prefix}`);
  const size = 2 ** (32 - prefix);
  const base = toInt(address) - (toInt(address) % 2 ** (32 - Number(prefixText)));
  return `${toAddress(base + index * size)}/${prefix}`;
}

/** Whether two IPv4 networks share any address. */
export function cidrsOverlap(a: string, b: string): boolean {
  const range = (cidr: string) => {
    const [address = '', prefix = ''] = cidr.split('/');
    const size = 2 ** (32 - Number(prefix));
    const start = toInt(address) - (toInt(address) % size);
    return [start, start + size - 1] as const;
  };
  const [aStart, aEnd] = range(a);
  const [bStart, bEnd] = range(b);
  return aStart <= bEnd && bStart <= aEnd;
}
