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
   * A setup mistake waiting does not fix (no CRD, refused credentials): the process stops, as
   * controller-runtime's does without its kinds. An RBAC refusal is not: a Role applied after
   * the Deployment (GitOps waves) fixes it, and the informers pick up from there, as they do in
   * controller-runtime. Nor is an API server out of reach: it may be restarting, and an agent
   * must keep its guard running.
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
        return {
          message: `RBAC refuses to list ${resource}${where}: ${err.message}; grant it (the Helm chart's ClusterRole does, or run with --namespace and a Role there); nothing is reconciled until it is`,
          fatal: false,
        };
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
