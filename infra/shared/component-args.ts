/**
 * Typed, checked inputs for the ComponentResources. Plain values (regions, sizes, names) are
 * checked with zod when the component is constructed, before it registers anything; values that
 * other resources produce (ARNs, hosts) are Pulumi Inputs and are only checked to be present.
 */
import type * as pulumi from '@pulumi/pulumi';
import { z } from 'zod';
import { formatPath } from '../../operator/src/api/validate.ts';

/** A value that may only be known once another resource exists (a Pulumi Input). */
export function pulumiInput<T>() {
  return z.custom<pulumi.Input<T>>((value) => value !== undefined && value !== null, 'is required');
}

/** Parses a component's arguments, or throws an error naming the component and the argument. */
export function parseComponentArgs<S extends z.ZodType>(
  component: string,
  name: string,
  schema: S,
  args: unknown,
): z.output<S> {
  const result = schema.safeParse(args);
  if (result.success) return result.data;
  const problems = result.error.issues.map(
    (issue) => `${formatPath(['args', ...issue.path])}: ${issue.message}`,
  );
  throw new Error(`${component} "${name}": invalid arguments: ${problems.join('; ')}`);
}
