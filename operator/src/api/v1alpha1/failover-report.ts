/**
 * FailoverReport: the incident record of one finished operation (failover, switchover, fence,
 * reprotect), one drill, or one refused request. The operator writes it once, from status, when
 * the operation's record there is final; nobody changes it after (a rule refuses any update of
 * spec). Owner-referenced to its policy, and pruned by the policy's spec.reports, the way
 * CloudNativePG keeps Backup objects.
 */
import { z } from 'zod';
import { withRules } from '../cel.ts';
import { objectName, resourceObject, timestamp } from './common.ts';
import { drillReport, operationReport, timeline } from './failover-policy.ts';

export const reportKind = z.enum(['Failover', 'Switchover', 'Fence', 'Reprotect', 'Drill', 'Request']);

export const refusedRequest = z
  .object({
    id: z.string().max(63).describe('The request id.'),
    type: z.enum(['Promotion', 'Drill']).describe('spec.promotionRequest or spec.drillRequest.'),
    kind: z
      .string()
      .max(32)
      .optional()
      .describe(
        'What was asked: Failover, Switchover, Reprotect (a promotion request), Run or Cancel (a drill).',
      ),
    target: z.string().max(253).optional().describe('The ReplicaCluster it named.'),
    requestedBy: z.string().max(253).optional().describe('Who asked.'),
    reason: z.string().max(1024).optional().describe('Why they asked.'),
    refusal: z.string().max(64).optional().describe('Why it was refused, as a CamelCase reason.'),
    message: z.string().max(1024).describe('Why it was refused, in words.'),
  })
  .describe('A request the operator refused, and why.');

export const failoverReportSpec = withRules(
  z
    .object({
      policy: objectName('The FailoverPolicy it happened to.'),
      kind: reportKind.describe(
        'Failover, Switchover, Fence or Reprotect (an operation), Drill (a drill: its switchovers have reports of their own), or Request (a refused request).',
      ),
      id: z.string().min(1).max(128).describe('The operation, drill or request id.'),
      result: z
        .enum(['Succeeded', 'Aborted', 'Failed', 'Cancelled', 'Interrupted', 'Rejected'])
        .describe('How it ended.'),
      startedAt: timestamp('When it started.').optional(),
      completedAt: timestamp('When it ended (for a refused request: when it was refused).'),
      operation: operationReport
        .optional()
        .describe('An operation: its record from status.history, figures and all.'),
      drill: drillReport.optional().describe('A drill: its record from status.drills.'),
      request: refusedRequest.optional(),
      timeline: timeline.optional(),
    })
    .describe('The record of one incident, operation or drill; written once.'),
  [
    {
      rule: 'self == oldSelf',
      message: 'a FailoverReport is a record: it cannot be changed once written',
    },
  ],
);

export const failoverReport = resourceObject('FailoverReport', failoverReportSpec, undefined);

export type FailoverReportSpec = z.infer<typeof failoverReportSpec>;
export type FailoverReport = z.infer<typeof failoverReport>;
export type RefusedRequest = z.infer<typeof refusedRequest>;
