/**
 * What the process checks before it starts its informers: that the API server answers, and that
 * it may list what it watches. Each problem a person can fix at first run (no CRDs, RBAC, bad
 * credentials, the wrong server) becomes one line naming the fix, instead of an informer that
 * retries for ever with a stack in the logs.
 */
import { KubeApiError, type KubeClient, type ResourceType } from './kube-client.ts';

export interface PreflightProblem {
  /** One line: what is wrong and how to fix it. */
  message: string;
  /**
   * A setup mistake (no CRD, RBAC, credentials) that waiting does not fix: the process stops.
   * An API server out of reach is not: it may be restarting, and an agent must keep its guard.
   */
  fatal: boolean;
}

/** The first problem found, or undefined when every list is allowed. */
export async function preflight(
  client: Pick<KubeClient, 'list' | 'server'>,
  types: ResourceType[],
  namespace: string | undefined,
): Promise<PreflightProblem | undefined> {
  for (const type of types) {
    const resource = `${type.plural}.${type.group || 'core'}`;
    const where = namespace ? ` in namespace ${namespace}` : ' in all namespaces';
    try {
      await client.list(type, namespace || undefined, { limit: 1 });
    } catch (err) {
      const fatal = (message: string) => ({ message, fatal: true });
      if (!(err instanceof KubeApiError))
        return {
          message: `cannot reach the API server at ${client.server}: ${(err as Error).message}; retrying`,
          fatal: false,
        };
      if (err.status === 404)
        return fatal(
          `the CustomResourceDefinition ${resource} is not installed on ${client.server}: apply it (kubectl apply --server-side -f crds/) or install the Helm chart`,
        );
      if (err.status === 403)
        return fatal(
          `RBAC refuses to list ${resource}${where}: ${err.message}; grant it (the Helm chart's ClusterRole does, or run with --namespace and a Role there)`,
        );
      if (err.status === 401)
        return fatal(
          `the API server at ${client.server} refuses the credentials (401 Unauthorized): check the kubeconfig's user, or the pod's service account token`,
        );
      return {
        message: `listing ${resource}${where} failed: ${err.status} ${err.reason}: ${err.message}; retrying`,
        fatal: false,
      };
    }
  }
  return undefined;
}
