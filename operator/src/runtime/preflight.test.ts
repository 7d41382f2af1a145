import { describe, expect, it } from 'vitest';
import { failoverPolicyType, replicaClusterType } from '../controllers/resources.ts';
import { KubeApiError } from './kube-client.ts';
import { preflight } from './preflight.ts';

/** A client whose list of `failing` answers with `error`, and every other list with nothing. */
const client = (failing: string, error: Error) => ({
  server: 'https://api.example:6443',
  list: async (type: { plural: string }) => {
    if (type.plural === failing) throw error;
    return { items: [], metadata: { resourceVersion: '1' } };
  },
});
const types = [failoverPolicyType, replicaClusterType];

describe('preflight: setup mistakes found at start, each as one line naming the fix', () => {
  it('passes when every list is allowed', async () => {
    expect(await preflight(client('none', new Error('x')) as never, types, 'shop')).toBeUndefined();
  });

  it('stops on a missing CRD or refused credentials; an RBAC refusal is said, and waited out', async () => {
    const missing = await preflight(
      client(
        'replicaclusters',
        new KubeApiError(404, 'NotFound', 'the server could not find the requested resource'),
      ) as never,
      types,
      undefined,
    );
    expect(missing).toEqual({
      fatal: true,
      message: expect.stringMatching(
        /CustomResourceDefinition replicaclusters.regionfailover.io is not installed on https:\/\/api.example:6443: apply it \(kubectl apply --server-side -f crds\/\)/,
      ),
    });
    const refused = await preflight(
      client(
        'failoverpolicies',
        new KubeApiError(403, 'Forbidden', 'User "x" cannot list resource'),
      ) as never,
      types,
      'shop',
    );
    expect(refused).toMatchObject({
      fatal: false,
      message: expect.stringMatching(
        /^RBAC refuses to list failoverpolicies.regionfailover.io in namespace shop: User "x".*nothing is reconciled until it is$/,
      ),
    });
    expect(
      await preflight(
        client('failoverpolicies', new KubeApiError(401, 'Unauthorized', '')) as never,
        types,
        '',
      ),
    ).toMatchObject({ fatal: true, message: expect.stringMatching(/refuses the credentials \(401/) });
  });

  it('only warns while the API server is out of reach: it may be restarting', async () => {
    const away = await preflight(
      client('failoverpolicies', new Error('connect ECONNREFUSED')) as never,
      types,
      '',
    );
    expect(away).toEqual({
      fatal: false,
      message: 'cannot reach the API server at https://api.example:6443: connect ECONNREFUSED; retrying',
    });
  });
});
