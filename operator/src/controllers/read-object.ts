/**
 * Reads our own objects defensively. The API server validated the spec when it was written, but
 * an object may predate a rule, and status can be edited by hand: neither may crash the operator.
 */
import type { z } from 'zod';
import { parseOnce } from '../api/validate.ts';
import type { EventRecorder } from '../runtime/events.ts';
import type { KubeObject } from '../runtime/kube-client.ts';

export type SpecReading<S> = { ok: true; spec: S } | { ok: false; message: string };

export function readSpec<S extends z.ZodType>(schema: S, object: KubeObject): SpecReading<z.output<S>> {
  const parsed = parseOnce(schema, object.spec, 'spec');
  return parsed.ok ? { ok: true, spec: parsed.value } : { ok: false, message: parsed.message };
}

/** The status as last written, or an empty one (with the problem) when it does not parse. */
export function readStatus<S extends z.ZodType>(
  schema: S,
  object: KubeObject,
): { status: z.output<S>; problem?: string } {
  if (object.status === undefined) return { status: schema.parse({}) };
  const parsed = parseOnce(schema, object.status, 'status');
  return parsed.ok ? { status: parsed.value } : { status: schema.parse({}), problem: parsed.message };
}

/** readStatus, with a Warning event when the status had to be rebuilt. */
export function readOwnStatus<S extends z.ZodType>(
  events: EventRecorder,
  schema: S,
  object: KubeObject,
): z.output<S> {
  const { status, problem } = readStatus(schema, object);
  if (problem) {
    void events.record(object, {
      type: 'Warning',
      reason: 'StatusReset',
      action: 'ReadStatus',
      note: `status was unreadable and is rebuilt: ${problem}`,
    });
  }
  return status;
}
