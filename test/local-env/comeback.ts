/**
 * What `make demo` watches while region A comes back: the agent's assessment, the operator's
 * Redundant condition, the reprotect's steps and Events, and which databases take writes. Each
 * is recorded with the moment it was seen, since the operator may act while the demo is still
 * printing the failover's figures.
 */
import type { AgentAssessment, FailoverStack } from '../harness/failover-stack.ts';

// The demo samples writers with the harness's sampler and imports it from here.
export { WriterSampler } from '../harness/writers.ts';

/** Polls region A's agent report and the policy from the fault on; `flush` prints what changed. */
export class ComebackRecorder {
  /** The agent's first comparison of region A with region B. */
  assessment: AgentAssessment | undefined;
  /** How the reprotect of region A was started (Automatic or Manual), once it has. */
  reprotectTrigger: string | undefined;
  private readonly pending: { at: number; line: string }[] = [];
  private readonly last = new Map<string, string>();
  private readonly seenEvents = new Set<string>();
  private running = true;
  private readonly loop: Promise<void>;
  private readonly stack: FailoverStack;
  private readonly print: (at: number, line: string) => void;

  constructor(stack: FailoverStack, print: (at: number, line: string) => void) {
    this.stack = stack;
    this.print = print;
    this.loop = (async () => {
      while (this.running) {
        await this.poll().catch(() => undefined); // a slow API answer is seen on the next round
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
  }

  /** Prints what was recorded since the last flush, in the order it happened. */
  flush(): void {
    for (const { at, line } of this.pending.splice(0)) this.print(at, line);
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    this.flush();
  }

  /** Records `line` under `key` when it differs from the last one recorded there. */
  private note(key: string, line: string): void {
    if (this.last.get(key) === line) return;
    this.last.set(key, line);
    this.pending.push({ at: Date.now(), line });
  }

  private async poll(): Promise<void> {
    const agent = await this.stack.agentReport('region-a');
    if (agent) this.note('server', `agent beside region-a: its server is ${agent.server}`);
    const d = agent?.divergence;
    if (agent && d?.primary === 'region-b' && !this.assessment) {
      this.assessment = { ...agent, divergence: d };
      this.note('assessment', `agent beside region-a compared it with region-b: ${d.relation}`);
    }
    const task = agent?.task;
    if (task)
      this.note(
        'task',
        `agent beside region-a: ${task.action} ${task.phase}${task.method ? ` (${task.method})` : ''}${task.message ? `: ${task.message}` : ''}`,
      );
    const { status } = await this.stack.policy();
    const redundant = status.conditions?.find((c) => c.type === 'Redundant');
    if (redundant)
      this.note(
        'redundant',
        `Redundant ${redundant.status} (${redundant.reason})${redundant.message ? `: ${redundant.message}` : ''}`,
      );
    const op = status.currentOperation;
    if (op?.kind === 'Reprotect') {
      this.reprotectTrigger ??= op.trigger;
      this.note('operation', `operation ${op.id} (Reprotect, ${op.trigger}): ${op.step}`);
    }
    for (const e of await this.stack.events()) {
      const key = `${e.reason}|${e.note}`;
      if (this.seenEvents.has(key) || !/^Reprotect|Rejoined/.test(e.reason)) continue;
      this.seenEvents.add(key);
      this.note(key, `event ${e.type} ${e.reason}: ${e.note}`);
    }
    const report = status.history?.find((r) => r.kind === 'Reprotect' && r.from === 'region-a');
    if (report) this.reprotectTrigger ??= report.trigger;
  }
}
