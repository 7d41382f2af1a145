/**
 * A region behind a network that can go silent: a network namespace joined to this host by a
 * veth pair on a /30 of 10.213.0.0/16, for tests that need a primary whose packets are dropped
 * rather than refused — what a failed link, a partitioned region or a black-holing firewall does.
 *
 * Both ends hold permanent neighbour entries, so no ARP is needed to send. `blackhole()` removes
 * the region's address inside the namespace: whatever arrives for it is then dropped without a
 * word (the namespace does not forward, so it sends no ICMP either), and connections and connects
 * hang until their own timeouts. Taking the link down instead would not do: the host answers
 * "no route to host" after its ARP attempts, a refusal, not silence.
 *
 * Programs run inside with `ip netns exec`; `wrap` gives the command line. The namespace name
 * holds this process's pid, so a later run can sweep what a killed run left behind.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { HarnessError, isAlive } from './processes.ts';

const NAME_PREFIX = 'failover-';
/** 10.213.0.0/16 holds 16384 /30s; each region takes one. */
const SUBNETS = 16_384;

/** Linux capability bits: adding links and addresses, and entering namespaces (setns, mounts). */
const CAP_NET_ADMIN = 12;
const CAP_SYS_ADMIN = 21;

let made = 0;

export class NetnsRegion {
  /** The namespace's name, as `ip netns list` shows it. */
  readonly name: string;
  /** The region's address: servers inside listen here, the host reaches them here. */
  readonly address: string;
  /** The host's end of the link. */
  readonly hostAddress: string;
  /** The /30 both ends are on, for pg_hba.conf and the like. */
  readonly network: string;
  private readonly hostLink: string;
  private readonly regionLink: string;
  private isolated = false;
  private stopped = false;

  private constructor(init: {
    name: string;
    subnet: number;
    hostLink: string;
    regionLink: string;
  }) {
    this.name = init.name;
    const base = init.subnet * 4;
    const prefix = `10.213.${Math.floor(base / 256)}`;
    this.network = `${prefix}.${base % 256}/30`;
    this.hostAddress = `${prefix}.${(base % 256) + 1}`;
    this.address = `${prefix}.${(base % 256) + 2}`;
    this.hostLink = init.hostLink;
    this.regionLink = init.regionLink;
  }

  /** Makes a namespace, links it to the host, and brings both ends up. */
  static create(): NetnsRegion {
    assertNetworkAdmin();
    sweepStaleNamespaces();
    made++;
    // Interface names are at most 15 characters.
    const region = new NetnsRegion({
      name: `${NAME_PREFIX}${process.pid}-${made}`,
      subnet: freeSubnet(process.pid * 8 + made),
      hostLink: `fo${process.pid}h${made}`,
      regionLink: `fo${process.pid}r${made}`,
    });
    try {
      region.setUp();
    } catch (err) {
      region.stop();
      throw err;
    }
    return region;
  }

  /** Whether `blackhole` is in force. */
  get silent(): boolean {
    return this.isolated;
  }

  /** `command args` as a command line that runs it inside the region. */
  wrap(command: string, args: string[]): { command: string; args: string[] } {
    return { command: 'ip', args: ['netns', 'exec', this.name, command, ...args] };
  }

  /** Runs a command inside the region and returns its output. */
  exec(command: string, args: string[]): string {
    const wrapped = this.wrap(command, args);
    return ip(`run ${command} in ${this.name}`, wrapped.args);
  }

  /** From now on the region drops everything sent to it, silently; open connections hang. */
  blackhole(): void {
    if (this.isolated) return;
    this.exec('ip', ['addr', 'del', `${this.address}/30`, 'dev', this.regionLink]);
    this.isolated = true;
  }

  /** Undoes `blackhole`: connections that were left hanging resume when TCP retransmits. */
  restore(): void {
    if (!this.isolated) return;
    this.exec('ip', ['addr', 'add', `${this.address}/30`, 'dev', this.regionLink]);
    // Deleting the region's last address flushed its neighbour table, permanent entries too.
    this.pinHostNeighbour();
    this.isolated = false;
  }

  /** Deletes the namespace and the link. Processes still inside keep it alive until they exit. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const args of [
      ['netns', 'delete', this.name],
      ['link', 'delete', this.hostLink],
    ]) {
      try {
        execFileSync('ip', args, { stdio: 'ignore' });
      } catch {
        // already gone (deleting the namespace takes its end of the link, and with it the pair)
      }
    }
  }

  private setUp(): void {
    const step = `set up network namespace ${this.name}`;
    ip(step, ['netns', 'add', this.name]);
    ip(step, [
      'link',
      'add',
      this.hostLink,
      'type',
      'veth',
      'peer',
      'name',
      this.regionLink,
      'netns',
      this.name,
    ]);
    ip(step, ['addr', 'add', `${this.hostAddress}/30`, 'dev', this.hostLink]);
    ip(step, ['link', 'set', this.hostLink, 'up']);
    this.exec('ip', ['addr', 'add', `${this.address}/30`, 'dev', this.regionLink]);
    this.exec('ip', ['link', 'set', this.regionLink, 'up']);
    this.exec('ip', ['link', 'set', 'lo', 'up']);
    // Permanent neighbours: without them a cut link would end in "no route to host" after ARP
    // gave up, which a client sees at once; with them, packets leave and nothing comes back.
    ip(step, [
      'neigh',
      'replace',
      this.address,
      'lladdr',
      this.mac('region'),
      'dev',
      this.hostLink,
      'nud',
      'permanent',
    ]);
    this.pinHostNeighbour();
  }

  /** The region's permanent neighbour entry for the host end (see setUp for why permanent). */
  private pinHostNeighbour(): void {
    this.exec('ip', [
      'neigh',
      'replace',
      this.hostAddress,
      'lladdr',
      this.mac('host'),
      'dev',
      this.regionLink,
      'nud',
      'permanent',
    ]);
  }

  private mac(end: 'host' | 'region'): string {
    const args =
      end === 'host'
        ? ['-j', 'link', 'show', this.hostLink]
        : ['-j', '-n', this.name, 'link', 'show', this.regionLink];
    const [link] = JSON.parse(ip(`read the ${end} link's address`, args)) as { address?: string }[];
    if (!link?.address)
      throw new HarnessError(`set up network namespace ${this.name}`, `no MAC address on the ${end} link`);
    return link.address;
  }
}

/** Fails at once, saying what is missing, when this process cannot make namespaces and links. */
export function assertNetworkAdmin(): void {
  const status = readFileSync('/proc/self/status', 'utf8');
  const effective = BigInt(`0x${/^CapEff:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? '0'}`);
  const missing = [
    [CAP_NET_ADMIN, 'CAP_NET_ADMIN'],
    [CAP_SYS_ADMIN, 'CAP_SYS_ADMIN'],
  ]
    .filter(([bit]) => (effective & (1n << BigInt(bit as number))) === 0n)
    .map(([, name]) => name);
  if (missing.length > 0) {
    throw new HarnessError(
      'set up a network namespace',
      `this process lacks ${missing.join(' and ')}, which ip netns add/exec and veth links need: ` +
        'run the tests as root, or in a container started with --cap-add NET_ADMIN --cap-add SYS_ADMIN',
    );
  }
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    throw new HarnessError('set up a network namespace', 'the ip command is missing: install iproute2');
  }
}

/** Deletes namespaces (and so their links) that a run which no longer exists left behind. */
export function sweepStaleNamespaces(): void {
  const names = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => name.startsWith(NAME_PREFIX));
  for (const name of names) {
    const pid = Number(name.slice(NAME_PREFIX.length).split('-')[0]);
    if (!Number.isInteger(pid) || isAlive(pid)) continue;
    try {
      execFileSync('ip', ['netns', 'delete', name], { stdio: 'ignore' });
    } catch {
      // another run swept it first
    }
  }
}

/** A /30 of 10.213.0.0/16 that no route on this host uses yet, starting from `seed`. */
function freeSubnet(seed: number): number {
  const routes = execFileSync('ip', ['-4', 'route', 'show', 'table', 'all'], { encoding: 'utf8' });
  for (let i = 0; i < SUBNETS; i++) {
    const subnet = (seed + i) % SUBNETS;
    const base = subnet * 4;
    if (!routes.includes(`10.213.${Math.floor(base / 256)}.${base % 256}/30`)) return subnet;
  }
  throw new HarnessError('set up a network namespace', 'every /30 of 10.213.0.0/16 is in use on this host');
}

function ip(step: string, args: string[]): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new HarnessError(step, `ip ${args.join(' ')} failed: ${(e.stderr ?? e.message).trim()}`);
  }
}
