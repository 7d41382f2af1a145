/**
 * A request to the operator is a patch of its FailoverPolicy (spec.promotionRequest,
 * spec.drillRequest). What the API server says about such a patch, for people.
 */
import { ApiError, type FailoverApi } from './api.ts';
import { notFound, type PolicyView, readPolicy } from './policies.ts';

export interface PolicyTarget {
  namespace: string;
  policy: string;
}

/** Why the API server refused a patch of the policy, as an error a person can act on. */
export function patchRefusal(err: unknown, target: PolicyTarget, what: string): never {
  if (err instanceof ApiError) {
    if (err.status === 422) throw new Error(`the API server refused the request: ${err.message}`);
    if (err.status === 403)
      throw new Error(
        `you may not change FailoverPolicies in namespace ${target.namespace}: ${err.message}\n` +
          `A ${what} is a patch of the policy: ask for the edit role there (the Helm chart extends edit to it).`,
      );
    if (err.status === 409)
      throw new Error('the policy changed while the request was being made: run the command again');
    if (err.status === 404) notFound(err, `FailoverPolicy ${target.policy}`, target.namespace);
  }
  throw err;
}

/** Tries of a request patch that met a status write (409) before giving up. */
const PATCH_ATTEMPTS = 5;

/**
 * Applies a request patch conditional on the resourceVersion in it. The operator writes status
 * often (during a drill, many times a second), and each write moves the version: a conflict is
 * read again, judged again by `recheck` (a message refuses: thrown), and sent again with the new
 * version, a few times. Returns the policy as last read (the one the patch applied to).
 */
export async function patchRequest(
  api: FailoverApi,
  target: PolicyTarget,
  policy: PolicyView,
  patch: { metadata: { resourceVersion?: string }; spec: Record<string, unknown> },
  what: string,
  recheck: (fresh: PolicyView) => string | undefined,
): Promise<PolicyView> {
  let current = policy;
  let attemptPatch = patch;
  for (let attempt = 1; ; attempt++) {
    try {
      await api.patchPolicy(target.namespace, target.policy, attemptPatch);
      return current;
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 409) || attempt >= PATCH_ATTEMPTS)
        patchRefusal(err, target, what);
      current = await readPolicy(api, target.namespace, target.policy);
      const refused = recheck(current);
      if (refused) throw new Error(refused);
      attemptPatch = { ...patch, metadata: { resourceVersion: current.object.metadata.resourceVersion } };
    }
  }
}

/**
 * The API server's verdict on a patch it is asked to check without applying (dryRun=All): the
 * line to print, and whether it refused (then the request cannot be made as it is).
 */
export async function dryRunPatch(
  api: FailoverApi,
  target: PolicyTarget,
  patch: unknown,
  what: string,
): Promise<{ line: string; refused: boolean }> {
  try {
    await api.patchPolicy(target.namespace, target.policy, patch, { dryRun: true });
    return { line: 'API server:  accepts the request (checked with dryRun=All)', refused: false };
  } catch (err) {
    if (err instanceof ApiError && err.status === 422)
      return { line: `API server:  would refuse it: ${err.message}`, refused: true };
    if (!(err instanceof ApiError && err.status === 403)) patchRefusal(err, target, what);
    // A dry-run patch is authorized like a real one; someone who may only read still learns
    // what the operator would decide, from the same rules run locally.
    return {
      line: `API server:  not asked: you may not patch FailoverPolicies in ${target.namespace}, so a real request would be refused`,
      refused: false,
    };
  }
}
