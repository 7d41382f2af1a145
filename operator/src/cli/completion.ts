/**
 * Shell completion for `kubectl failover`. `__complete ARGS... WORD` answers in cobra's protocol
 * (one candidate a line, then `:<directive>`), which kubectl (1.26+) asks of plugins through an
 * executable `kubectl_complete-failover` on PATH; `completion bash|zsh` prints a script for the
 * plugin called on its own. Policy names come from the API (the current context), quietly
 * nothing when it cannot be reached.
 */
import { contextNamespace, FailoverApi, failoverPolicyType, loadKubeConfig } from './api.ts';

const COMMANDS: Record<string, string> = {
  status: 'one line per policy',
  switchover: 'a planned promotion: loses nothing',
  promote: 'a promotion (--failover: the primary is gone)',
  failover: 'promote --failover',
  reprotect: 'a former primary back as a standby',
  history: 'past operations and drills',
  report: 'incident records, for a postmortem',
  export: 'the policy for Git, or its topology for Pulumi',
  drill: 'run, cancel or list drills',
  pause: 'maintenance: no automatic action',
  resume: 'end maintenance',
  version: 'the plugin and API server versions',
  completion: 'a shell completion script',
};
const DRILL = ['run', 'cancel', 'history'];
const FLAGS = [
  '--namespace',
  '--all-namespaces',
  '--output',
  '--context',
  '--kubeconfig',
  '--server',
  '--token',
  '--as',
  '--as-group',
  '--request-timeout',
  '--to',
  '--reason',
  '--dry-run',
  '--allow-data-loss',
  '--watch',
  '--pulumi',
  '--help',
];
/** cobra's ShellCompDirectiveNoFileComp: no file names as a fallback. */
const NO_FILES = ':4';

/** Flags that take a value: the word after one is that value, not a command or a policy. */
const VALUED = new Set([
  '-n',
  '--namespace',
  '-o',
  '--output',
  '--context',
  '--kubeconfig',
  '-s',
  '--server',
  '--token',
  '--as',
  '--as-group',
  '--request-timeout',
  '--to',
  '--reason',
  '--id',
  '--mode',
  '--timeout',
  '--cluster',
  '--max-lag-seconds',
]);

export async function complete(args: string[]): Promise<string> {
  const word = args.at(-1) ?? '';
  const before = args.slice(0, -1);
  const words = before.filter((a, i) => !a.startsWith('-') && !VALUED.has(before[i - 1] ?? ''));
  const out = (candidates: string[]) =>
    `${candidates.filter((c) => c.startsWith(word)).join('\n')}${candidates.length ? '\n' : ''}${NO_FILES}\n`;
  if (word.startsWith('-')) return out(FLAGS);
  const last = before.at(-1);
  if (last === '-o' || last === '--output')
    return out(['table', 'wide', 'json', 'yaml', ...(words[0] === 'status' ? ['name'] : [])]);
  if (last === '-n' || last === '--namespace') return out(await names('namespaces', before));
  if (words.length === 0) return out(Object.keys(COMMANDS));
  const [command] = words;
  if (command === 'completion') return out(words.length === 1 ? ['bash', 'zsh'] : []);
  if (command === 'drill' && words.length === 1) return out(DRILL);
  const policyAt = command === 'drill' ? 2 : 1;
  if (words.length === policyAt && command !== 'version') return out(await names('policies', before));
  return out([]);
}

/** Policy (or namespace) names from the API, as the flags given so far point at it. */
async function names(what: 'policies' | 'namespaces', before: string[]): Promise<string[]> {
  const flag = (long: string, short?: string) => {
    const i = before.findIndex((a) => a === `--${long}` || (short && a === `-${short}`));
    return i >= 0 ? before[i + 1] : before.find((a) => a.startsWith(`--${long}=`))?.split('=')[1];
  };
  try {
    const kc = loadKubeConfig({ kubeconfig: flag('kubeconfig'), context: flag('context') });
    const api = new FailoverApi(kc, { requestTimeoutMs: 5_000 });
    if (what === 'namespaces') {
      const list = await api.list(
        { group: '', version: 'v1', plural: 'namespaces', kind: 'Namespace' },
        undefined,
      );
      return list.items.map((n) => n.metadata.name);
    }
    const list = await api.list(failoverPolicyType, flag('namespace', 'n') ?? contextNamespace(kc));
    return list.items.map((p) => p.metadata.name);
  } catch {
    return [];
  }
}

/** A completion script for `kubectl-failover` called on its own (kubectl completes plugins itself). */
export function completionScript(shell: 'bash' | 'zsh'): string {
  const fn = `_kubectl_failover() {
  local out
  out=$(kubectl-failover __complete "\${COMP_WORDS[@]:1:$COMP_CWORD}" 2>/dev/null) || return
  COMPREPLY=( $(compgen -W "$(printf '%s\\n' "$out" | grep -v '^:')" -- "\${COMP_WORDS[COMP_CWORD]}") )
}
complete -F _kubectl_failover kubectl-failover
`;
  return shell === 'bash' ? fn : `autoload -U +X bashcompinit && bashcompinit\n${fn}`;
}
