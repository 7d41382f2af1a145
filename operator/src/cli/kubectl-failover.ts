/**
 * `kubectl failover`: a kubectl plugin for people. It shows the state of failover policies and
 * records switchover, failover, reprotect and drill requests through the API; the operator does
 * the work (the plugin never talks to a database or a DNS provider). Run through
 * bin/kubectl-failover.
 *
 * Exit codes: 0 done (or, for --dry-run, the operator would act); 1 refused, failed or (drills)
 * not answered in time, with the reason; 2 the command line is wrong.
 */

import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { dump as dumpYaml } from 'js-yaml';
import type { DrillMode } from '../api/v1alpha1/index.ts';
import { contextNamespace, FailoverApi, loadKubeConfig } from './api.ts';
import {
  type FlagSpec,
  flagSet,
  flagString,
  flagValues,
  type ParsedArgs,
  parseArgs,
  UsageError,
} from './args.ts';
import { complete, completionScript } from './completion.ts';
import {
  DRILL_MODES,
  drillHistoryCommand,
  drillRequestCommand,
  parseDuration,
  parseTimeout,
} from './drill.ts';
import { exportManifests, exportTopology } from './export.ts';
import { historyCommand } from './history.ts';
import { operatorLeaseWarning, readOperatorLeases, shardLayout, watching } from './operator-lease.ts';
import { pauseCommand } from './pause.ts';
import { ObjectNotFound, readPolicy } from './policies.ts';
import { promoteCommand } from './promote.ts';
import { REPORT_FORMATS, reportCommand } from './report.ts';
import { noPolicies, policyNames, statusCommand } from './status.ts';

const USAGE = `kubectl failover: see and steer regional database failover.

Usage:
  kubectl failover status [POLICY] [-n NAMESPACE | -A] [-o table|wide|json|yaml|name] [-w]
  kubectl failover switchover POLICY --to CLUSTER [--dry-run] [--reason TEXT] [--id ID] [--replace]
  kubectl failover promote POLICY --to CLUSTER --failover [--allow-data-loss | --max-lag-seconds N] [--dry-run]
  kubectl failover reprotect POLICY CLUSTER [--allow-data-loss] [--dry-run] [--reason TEXT] [--id ID] [--replace]
  kubectl failover history POLICY [-n NAMESPACE] [-o table|json|yaml]
  kubectl failover report POLICY [ID] [-o text|markdown|json|yaml]
  kubectl failover export POLICY [-o yaml|json] [--pulumi]
  kubectl failover drill run POLICY [--mode RoundTrip|Isolated] [--reason TEXT] [--id ID] [--replace] [--dry-run] [--timeout 30s]
  kubectl failover drill cancel POLICY [--reason TEXT] [--id ID] [--dry-run] [--timeout 30s]
  kubectl failover drill history POLICY [-o table|json|yaml]
  kubectl failover pause POLICY [--reason TEXT] [--dry-run] [--timeout 30s]
  kubectl failover resume POLICY [--dry-run] [--timeout 30s]
  kubectl failover version [--client]
  kubectl failover completion bash|zsh

Commands:
  status      One line per policy: primary, standbys, standby lag, phase, epoch, the operation in
              progress and the last drill (-o wide: redundancy and the last request too).
              -w/--watch prints each row again when it changes. A warning on stderr says when
              no operator holds its leader Lease (what status shows may then be stale).
  switchover  Planned: make CLUSTER the primary and lose nothing. The old primary is fenced, the
              standby catches up to zero lag, then it is promoted; an old primary with a database
              agent beside it is stopped cleanly and restarts as a standby (nothing to rewind).
  promote --failover
              Unplanned: promote CLUSTER because the primary is gone. The operator refuses it
              while the primary is up, and beyond the RPO budget unless you pass --allow-data-loss.
              (kubectl failover failover POLICY --to CLUSTER is the same.)
  promote     Without --failover: a switchover (kept for scripts that use it).
  reprotect   Make CLUSTER, a former primary, a standby of the active primary again: its database
              agent restarts it, or rewinds it with pg_rewind; a managed provider makes a new
              replica. The operator refuses when the agent's assessment says committed
              transactions would be discarded, unless you pass --allow-data-loss.
  history     The operation in progress, past failovers, switchovers and reprotects, and drills
              with their measured RTO and RPO.
  report      The policy's incident records (FailoverReport objects, one per finished failover,
              switchover, fence, reprotect, drill and refused request), newest first. With an
              ID (from the list, or an operation id from history): that record, its figures and
              timeline (each observer losing the primary, the quorum, each step, DNS changed and
              verified, the canary's last and first writes) as text, or -o markdown for a
              postmortem.
  export      The policy and its ReplicaClusters as they are now, ready for Git: stored specs
              without status, server-set fields or one-shot requests, and a ReplicaCluster whose
              reprotect made a replacement database (RepointNeeded) pointed at it. Re-applying
              them after a failover, reprotect or failback changes nothing. --pulumi: the live
              topology (primary, epoch, each member's database) as JSON, for the Pulumi stacks'
              topology config value (infra/README.md).
  drill run   Run a drill now. RoundTrip: the operator's canary writes through the DNS name, a
              switchover to a standby, a hold there, and a switchover back; RTO and RPO are
              measured from the client's side. Isolated: nothing in production moves; a copy of a
              standby is promoted on a spare port and the canary writes to it through a drill
              record, then the record and the copy are removed (it needs the database agent
              beside the standby). --mode picks one; spec.drills.mode when not given. A run the
              operator's rules refuse on status now is refused before anything is written; else
              it waits for the operator's answer: Accepted (the drill and the standby it goes to
              or copies) or Rejected (why). The policy needs spec.drills.
  drill cancel
              Stop the drill in progress: a round trip comes back (its switchover out rolls back
              if it has not promoted yet, else it switches back at once); an isolated drill
              removes its drill record and its copy.
  drill history
              Past drills, newest first: mode, result, duration, RTO out and back (measured by the
              canary or, when it could not, the operator), canary rows lost, DNS convergence; for
              isolated drills the copy's promotion time, how old its data was, the canary rows it
              took and whether it was cleaned up; and the drill in progress.

  pause       Maintenance mode (spec.paused): the operator starts no automatic failover, DNS
              repair, reprotect, failback or drill for the policy, while it goes on probing and
              reporting. An automatic operation that has changed nothing yet stands down; one
              under way finishes (it says which). Safety goes on: a stray primary is still
              fenced, and the agents keep their split-brain guard. Switchover, promote and
              reprotect requests still run. It waits for the operator to acknowledge it.
  resume      Ends maintenance mode: automatic actions run again.
  version     The plugin's version and the API server's (--client: the plugin's only).
  completion  A bash or zsh completion script for kubectl-failover; kubectl itself completes
              "kubectl failover" through kubectl_complete-failover on PATH (make install-plugin).

  --dry-run prints what the operator would do (it runs the operator's own decision on status as
  it is now), or why it would refuse, and changes nothing.

Flags for every command, as kubectl's:
  -n, --namespace NAME        the policy's namespace (default: the kubeconfig context's)
      --kubeconfig PATH       kubeconfig file (default: $KUBECONFIG or ~/.kube/config)
      --context NAME          kubeconfig context
  -s, --server URL            the API server, over the context's
      --token TOKEN           a bearer token, over the context's credentials
      --as USER               act as another user (impersonation)
      --as-group GROUP        ...and group (one)
      --request-timeout DUR   per request: 0 (none), 30s (default), 2m
  -o, --output FORMAT         status: table, wide, json, yaml, name; history: table, json, yaml;
                              report: text (default), markdown, json, yaml;
                              export: yaml (default), json
  -h, --help                  this help

Flags of switchover, promote, failover and reprotect:
      --to CLUSTER           the ReplicaCluster to promote (switchover, promote, failover)
      --cluster CLUSTER      reprotect: the former primary (or give it after POLICY)
      --failover             promote: an unplanned failover instead of a switchover
      --allow-data-loss      failover: promote even beyond the RPO budget;
                             reprotect: discard what the former primary wrote after the fork
      --max-lag-seconds N    failover: the most lag this request accepts
      --reason TEXT          recorded in status and in the Event
      --id ID                the request id (default: a fresh one); each id is acted on once
      --replace              supersede a request the operator has not handled yet
      --dry-run              check and explain, change nothing (exit 0: it would act, 1: it would refuse)

Flags of drill run and drill cancel:
      --mode MODE            run: RoundTrip or Isolated (default: the policy's spec.drills.mode)
      --reason TEXT          recorded with the request, in the drill report and the Event
      --id ID                the request id (default: a fresh one); each id is acted on once
      --replace              run: supersede a drill request the operator has not handled yet
                             (a cancel always does)
      --timeout DURATION     how long to wait for the operator's answer: 30s (default), 2m;
                             0 records the request and does not wait
      --dry-run              check and explain with the operator's own rules, change nothing

Flags of pause and resume:
      --reason TEXT          pause: why, shown in the Paused condition and the Event
      --timeout DURATION     how long to wait for the operator to acknowledge: 30s (default); 0 does not wait
      --dry-run              check the patch with the API server, change nothing

Exit codes: 0 done; 1 refused, failed or not answered within --timeout (the reason is printed);
2 wrong command line.`;

/** kubectl's own connection flags, with the same names and meaning. */
const common: FlagSpec[] = [
  { name: 'namespace', short: 'n' },
  { name: 'kubeconfig' },
  { name: 'context' },
  { name: 'server', short: 's' },
  { name: 'token' },
  { name: 'as' },
  { name: 'as-group', repeatable: true },
  { name: 'request-timeout' },
  { name: 'help', short: 'h', boolean: true },
];
const output: FlagSpec = { name: 'output', short: 'o' };

type Format = 'table' | 'wide' | 'json' | 'yaml';
const FORMATS: Format[] = ['table', 'wide', 'json', 'yaml'];
/** status also prints `resource/name` lines, as `kubectl get -o name` does, for scripts. */
const STATUS_FORMATS: (Format | 'name')[] = [...FORMATS, 'name'];

function outputFormat(args: ParsedArgs): Format;
function outputFormat<F extends string>(args: ParsedArgs, formats: readonly F[]): F;
function outputFormat(args: ParsedArgs, formats: readonly string[] = FORMATS): string {
  const o = flagString(args, 'output') ?? 'table';
  const format = formats.find((f) => f === o);
  if (!format) throw new UsageError(`-o must be one of ${formats.join(', ')}, got ${o}`);
  return format;
}

/** Runs a command's table or JSON form for -o; YAML is its JSON, as kubectl renders it. */
async function formatted(
  format: Format,
  produce: (output: 'table' | 'json') => Promise<string>,
): Promise<string> {
  if (format === 'json') return produce('json');
  if (format === 'yaml') return dumpYaml(JSON.parse(await produce('json'))).trimEnd();
  return produce('table');
}

/**
 * --as-group, once: the HTTP client joins repeated headers into one ("a, b"), which the API server
 * would take for a single group of that name.
 */
function oneGroup(groups: string[]): string[] {
  if (groups.length > 1) throw new UsageError('--as-group can be given once here');
  return groups;
}

/** --request-timeout as kubectl takes it: 0 (none), a bare number of seconds, or 30s, 1m30s, 1h. */
function requestTimeout(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(value);
  if (ms === undefined)
    throw new UsageError(`--request-timeout must be a duration such as 0, 30s or 1m30s, got ${value}`);
  return ms;
}

/** The plugin's version: the package's, stamped into the bundle by make plugin. */
const PLUGIN_VERSION = process.env.KUBECTL_FAILOVER_VERSION ?? pluginVersion();

function pluginVersion(): string {
  try {
    return (
      JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
        version: string;
      }
    ).version;
  } catch {
    return 'unknown';
  }
}

const COMMANDS = [
  'status',
  'switchover',
  'promote',
  'failover',
  'reprotect',
  'history',
  'report',
  'export',
  'drill',
  'pause',
  'resume',
  'version',
  'completion',
];

/** How often `status --watch` reads again; kubectl's own watch is event-driven, this polls. */
const WATCH_POLL_MS = 2_000;

/**
 * `status --watch`, as `kubectl get -w` prints: the table once, then each row again when it
 * changes (JSON and YAML: the whole document again, YAML after a ---). Ends on Ctrl-C.
 */
async function watchStatus(
  first: string,
  render: (at: Date) => Promise<string>,
  format: Format | 'name',
  print: (text: string) => void,
): Promise<never> {
  // The last rows printed: an error between two reads does not make the rows after it new.
  let last = first;
  let lastError: string | undefined;
  for (;;) {
    await sleep(WATCH_POLL_MS);
    const next = await render(new Date()).catch((err: Error) => `error: ${err.message}`);
    if (next.startsWith('error:')) {
      // On stderr, as kubectl's watch prints them (stdout stays the rows), once while it lasts.
      if (next !== lastError) process.stderr.write(`${next}\n`);
      lastError = next;
      continue;
    }
    lastError = undefined;
    if (next === last) continue;
    if (format === 'name') {
      // The JSON rows, rendered as the names of those that changed.
      const lines = next.startsWith('[') ? policyNames(next, last) : '';
      if (lines) print(lines);
    } else if (format === 'json' || format === 'yaml') {
      print(format === 'yaml' ? `---\n${next}` : next);
    } else {
      const seen = new Set(last.split('\n').slice(1));
      for (const row of next.split('\n').slice(1)) if (!seen.has(row)) print(row);
    }
    last = next;
  }
}

/** How long `pause|resume` waits for the operator to acknowledge: it does within a reconcile. */
const PAUSE_ACK_TIMEOUT_MS = 30_000;

/** How long `drill run|cancel` waits for the operator's answer: it answers within a reconcile when idle. */
const DRILL_ANSWER_TIMEOUT_MS = 30_000;

function onePolicy(args: ParsedArgs, command: string): string {
  const [policy, ...extra] = args.positionals;
  if (!policy) throw new UsageError(`${command} needs a POLICY: kubectl failover ${command} POLICY`);
  if (extra.length) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
  return policy;
}

/** --mode, taken exactly as kubectl takes an enum's value. */
function drillMode(value: string | undefined): DrillMode | undefined {
  if (value === undefined) return undefined;
  const mode = DRILL_MODES.find((m) => m === value);
  if (!mode) throw new UsageError(`--mode must be one of ${DRILL_MODES.join(', ')}, got ${value}`);
  return mode;
}

function nonNegativeInteger(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${flag} must be a whole number of seconds, got ${value}`);
  return Number(value);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  if (command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (command === '__complete') {
    process.stdout.write(await complete(rest));
    return 0;
  }
  if (command === 'completion') {
    const [shell] = rest;
    if (shell !== 'bash' && shell !== 'zsh') throw new UsageError('completion needs a shell: bash or zsh');
    process.stdout.write(completionScript(shell));
    return 0;
  }
  const request: FlagSpec[] = [
    ...common,
    { name: 'reason' },
    { name: 'id' },
    { name: 'replace', boolean: true },
    { name: 'dry-run', boolean: true },
  ];
  const lossy: FlagSpec[] = [{ name: 'allow-data-loss', boolean: true }, { name: 'max-lag-seconds' }];
  const specs: Record<string, FlagSpec[]> = {
    status: [
      ...common,
      output,
      { name: 'all-namespaces', short: 'A', boolean: true },
      { name: 'watch', short: 'w', boolean: true },
    ],
    version: [...common, { name: 'client', boolean: true }],
    history: [...common, output],
    report: [...common, output],
    export: [...common, output, { name: 'pulumi', boolean: true }],
    switchover: [...request, { name: 'to' }],
    failover: [...request, { name: 'to' }, ...lossy],
    promote: [...request, { name: 'to' }, { name: 'failover', boolean: true }, ...lossy],
    reprotect: [...request, { name: 'cluster' }, { name: 'allow-data-loss', boolean: true }],
    pause: [...common, { name: 'reason' }, { name: 'dry-run', boolean: true }, { name: 'timeout' }],
    resume: [...common, { name: 'dry-run', boolean: true }, { name: 'timeout' }],
  };
  const drillRequest: FlagSpec[] = [
    ...common,
    { name: 'reason' },
    { name: 'id' },
    { name: 'dry-run', boolean: true },
    { name: 'timeout' },
  ];
  const drillRun = [...drillRequest, { name: 'replace', boolean: true }, { name: 'mode' }];
  const drillSpecs: Record<string, FlagSpec[]> = {
    run: drillRun,
    cancel: drillRequest,
    history: [...common, output],
  };
  let spec = specs[command];
  let drill: string | undefined;
  if (command === 'drill') {
    // The subcommand is the first word that is not a flag (kubectl takes flags anywhere).
    const any = parseArgs(rest, [...drillRun, output]);
    drill = any.positionals[0];
    if (!drill && flagSet(any, 'help')) {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    if (!drill)
      throw new UsageError('drill needs a command: kubectl failover drill run|cancel|history POLICY');
    spec = drillSpecs[drill];
    if (!spec)
      throw new UsageError(`unknown drill command ${drill}; drill commands are: run, cancel, history`);
  }
  if (!spec) throw new UsageError(`unknown command ${command}; commands are: ${COMMANDS.join(', ')}`);
  const args = parseArgs(rest, spec);
  if (flagSet(args, 'help')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const kc = loadKubeConfig({
    kubeconfig: flagString(args, 'kubeconfig'),
    context: flagString(args, 'context'),
    server: flagString(args, 'server'),
    token: flagString(args, 'token'),
  });
  const timeoutMs = requestTimeout(flagString(args, 'request-timeout'));
  const api = new FailoverApi(kc, {
    ...(timeoutMs !== undefined ? { requestTimeoutMs: timeoutMs } : {}),
    ...(flagString(args, 'as') ? { as: flagString(args, 'as') } : {}),
    asGroups: oneGroup(flagValues(args, 'as-group')),
  });
  const namespace = flagString(args, 'namespace') ?? contextNamespace(kc);
  const now = new Date();
  const print = (text: string) => process.stdout.write(`${text}\n`);

  if (command === 'status') {
    const [policy, ...extra] = args.positionals;
    if (extra.length) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
    const all = flagSet(args, 'all-namespaces');
    if (all && policy) throw new UsageError('give a POLICY or --all-namespaces, not both');
    const chosen = outputFormat(args, STATUS_FORMATS);
    const names = chosen === 'name';
    const format = names ? 'json' : chosen;
    // The Leases of the operators watching what is shown: another operator's (sharded, or
    // stopped) says nothing about these policies.
    const shown = all ? undefined : namespace;
    const leases = watching(await readOperatorLeases(api), shown);
    const render = async (at: Date) => {
      // A watch re-reads the Leases too: shards move when replicas come and go.
      const layout = shardLayout(at === now ? leases : watching(await readOperatorLeases(api), shown), at);
      const rows = formatted(format, (out) =>
        statusCommand(api, {
          namespace: all ? undefined : namespace,
          ...(policy ? { policy } : {}),
          output: out,
          now: at,
          wide: format === 'wide',
          ...(layout ? { shardOf: layout.shardOf } : {}),
        }),
      );
      // A watched policy deleted: no rows, so -o name prints its name once more, as
      // `kubectl get -w -o name` prints a deletion.
      return names && at !== now
        ? rows.catch((err) => (err instanceof ObjectNotFound ? '[]' : Promise.reject(err)))
        : rows;
    };
    // As kubectl warns: on stderr, so -o json stays parseable.
    const warning = operatorLeaseWarning(leases, now);
    if (warning) process.stderr.write(`Warning: ${warning}\n`);
    const first = await render(now);
    // As kubectl says "No resources found": on stderr, so a script reading stdout gets nothing.
    if (/^No FailoverPolicies/.test(first)) process.stderr.write(`${first}\n`);
    else if (names) {
      const lines = policyNames(first);
      if (lines) print(lines);
      else process.stderr.write(`${noPolicies(all ? undefined : namespace)}\n`);
    } else print(first);
    if (!flagSet(args, 'watch')) return 0;
    await watchStatus(first, render, names ? 'name' : format, print);
    return 0;
  }
  if (drill) {
    // After the subcommand, the arguments are the command's own: POLICY.
    const own = { ...args, positionals: args.positionals.slice(1) };
    const policy = onePolicy(own, `drill ${drill}`);
    if (drill === 'history') {
      print(
        await formatted(outputFormat(args), (output) =>
          drillHistoryCommand(api, { namespace, policy, output, now }),
        ),
      );
      return 0;
    }
    const timeoutMs = parseTimeout(flagString(args, 'timeout'), DRILL_ANSWER_TIMEOUT_MS);
    if (timeoutMs === undefined)
      throw new UsageError(
        `--timeout must be a duration such as 30s or 2m, got ${flagString(args, 'timeout')}`,
      );
    const mode = drillMode(flagString(args, 'mode'));
    const result = await drillRequestCommand(api, {
      namespace,
      policy,
      action: drill === 'run' ? 'Run' : 'Cancel',
      ...(mode ? { mode } : {}),
      ...(flagString(args, 'reason') ? { reason: flagString(args, 'reason') } : {}),
      ...(flagString(args, 'id') ? { id: flagString(args, 'id') } : {}),
      replace: flagSet(args, 'replace'),
      dryRun: flagSet(args, 'dry-run'),
      timeoutMs,
      now,
      warn: (message) => process.stderr.write(`warning: ${message}\n`),
    });
    print(result.output);
    return result.exitCode;
  }
  if (command === 'version') {
    print(`Plugin version: ${PLUGIN_VERSION}`);
    if (flagSet(args, 'client')) return 0;
    const server = await api.serverVersion();
    print(`Server version: ${server.gitVersion ?? 'unknown'} (${api.server})`);
    return 0;
  }
  if (command === 'pause' || command === 'resume') {
    const timeoutMs = parseTimeout(flagString(args, 'timeout'), PAUSE_ACK_TIMEOUT_MS);
    if (timeoutMs === undefined)
      throw new UsageError(
        `--timeout must be a duration such as 30s or 2m, got ${flagString(args, 'timeout')}`,
      );
    const result = await pauseCommand(api, {
      namespace,
      policy: onePolicy(args, command),
      paused: command === 'pause',
      ...(flagString(args, 'reason') ? { reason: flagString(args, 'reason') } : {}),
      dryRun: flagSet(args, 'dry-run'),
      timeoutMs,
    });
    print(result.output);
    return result.exitCode;
  }
  if (command === 'export') {
    const policy = await readPolicy(api, namespace, onePolicy(args, 'export'));
    if (flagSet(args, 'pulumi')) {
      if (flagString(args, 'output') !== undefined)
        throw new UsageError('export --pulumi prints JSON for a stack config value: leave out -o');
      print(JSON.stringify(exportTopology(policy), null, 2));
      return 0;
    }
    const o = flagString(args, 'output') ?? 'yaml';
    if (o !== 'yaml' && o !== 'json') throw new UsageError(`export -o must be yaml or json, got ${o}`);
    const items = exportManifests(policy);
    print(
      o === 'json'
        ? JSON.stringify({ apiVersion: 'v1', kind: 'List', items }, null, 2)
        : items.map((i) => dumpYaml(i, { noRefs: true }).trimEnd()).join('\n---\n'),
    );
    return 0;
  }
  if (command === 'report') {
    const [policy, id, ...extra] = args.positionals;
    if (!policy) throw new UsageError('report needs a POLICY: kubectl failover report POLICY [ID]');
    if (extra.length) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
    const o = flagString(args, 'output') ?? 'text';
    const format = REPORT_FORMATS.find((f) => f === (o === 'md' ? 'markdown' : o));
    if (!format) throw new UsageError(`report -o must be one of ${REPORT_FORMATS.join(', ')}, got ${o}`);
    const result = await reportCommand(api, { namespace, policy, ...(id ? { id } : {}), output: format });
    print(
      typeof result === 'string'
        ? result
        : format === 'yaml'
          ? dumpYaml(result, { noRefs: true }).trimEnd()
          : JSON.stringify(result, null, 2),
    );
    return 0;
  }
  if (command === 'history') {
    const policy = onePolicy(args, 'history');
    print(
      await formatted(outputFormat(args), (output) =>
        historyCommand(api, { namespace, policy, output, now }),
      ),
    );
    return 0;
  }
  const { policy, target, kind } =
    command === 'reprotect' ? reprotectTarget(args) : promotionTarget(args, command);
  const maxLagSeconds = nonNegativeInteger(flagString(args, 'max-lag-seconds'), 'max-lag-seconds');
  const result = await promoteCommand(api, {
    namespace,
    policy,
    target,
    kind,
    allowDataLoss: flagSet(args, 'allow-data-loss'),
    ...(maxLagSeconds !== undefined ? { maxLagSeconds } : {}),
    ...(flagString(args, 'reason') ? { reason: flagString(args, 'reason') } : {}),
    ...(flagString(args, 'id') ? { id: flagString(args, 'id') } : {}),
    replace: flagSet(args, 'replace'),
    dryRun: flagSet(args, 'dry-run'),
    now,
    warn: (message) => process.stderr.write(`warning: ${message}\n`),
  });
  print(result.output);
  return result.exitCode;
}

/** switchover, failover and promote [--failover]: POLICY --to CLUSTER. */
function promotionTarget(
  args: ParsedArgs,
  command: string,
): { policy: string; target: string; kind: 'Switchover' | 'Failover' } {
  const target = flagString(args, 'to');
  if (!target) throw new UsageError(`${command} needs --to CLUSTER: the ReplicaCluster to promote`);
  const failover = command === 'failover' || flagSet(args, 'failover');
  return { policy: onePolicy(args, command), target, kind: failover ? 'Failover' : 'Switchover' };
}

/** reprotect POLICY CLUSTER, or POLICY --cluster CLUSTER. */
function reprotectTarget(args: ParsedArgs): { policy: string; target: string; kind: 'Reprotect' } {
  const [policy, positional, ...extra] = args.positionals;
  const flag = flagString(args, 'cluster');
  if (!policy) throw new UsageError('reprotect needs a POLICY: kubectl failover reprotect POLICY CLUSTER');
  if (extra.length) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
  if (positional && flag && positional !== flag)
    throw new UsageError(`reprotect got two clusters, ${positional} and --cluster ${flag}: give one`);
  const target = positional ?? flag;
  if (!target)
    throw new UsageError(
      'reprotect needs the former primary: kubectl failover reprotect POLICY CLUSTER (or --cluster CLUSTER)',
    );
  return { policy, target, kind: 'Reprotect' };
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  if (err instanceof UsageError) {
    process.stderr.write(`error: ${err.message}\nRun kubectl failover --help for usage.\n`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`error: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}
