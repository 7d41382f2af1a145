/** How the operator tells an agent runs: it reports at least this often, even with nothing new. */
import type { AgentReport } from '../api/v1alpha1/index.ts';

export const REPORT_EVERY_MS = 10_000;

/** How old a report may be and still say an agent runs beside the cluster. */
export const REPORT_COUNTS_FOR_MS = 3 * REPORT_EVERY_MS;

/** Whether a report is recent enough to say an agent runs beside the cluster. */
export function agentAlive(report: AgentReport | undefined, now: Date): boolean {
  return !!report && now.getTime() - new Date(report.reportedAt).getTime() < REPORT_COUNTS_FOR_MS;
}
