/**
 * Reads credentials from Secrets in the object's namespace. A missing Secret or key is a
 * ProviderError with reason CredentialsMissing whose message names both, so the condition tells a
 * person exactly what to create. Values never leave this module except into a provider client.
 */
import { ProviderError } from '../providers/errors.ts';
import { isNotFound, type KubeClient, type KubeObject } from '../runtime/kube-client.ts';
import { secretType } from './resources.ts';

export interface SecretRead {
  value: string;
  /** The Secret's resourceVersion: a changed Secret means reconnecting with the new value. */
  version: string;
}

export async function readSecretKey(
  client: KubeClient,
  namespace: string,
  name: string,
  key: string,
): Promise<SecretRead> {
  let secret: KubeObject;
  try {
    secret = await client.get(secretType, namespace, name);
  } catch (err) {
    if (isNotFound(err))
      throw new ProviderError('CredentialsMissing', `Secret ${namespace}/${name} does not exist`);
    throw err;
  }
  const data = (secret.data ?? {}) as Record<string, string>;
  if (data[key] === undefined) {
    throw new ProviderError(
      'CredentialsMissing',
      `Secret ${namespace}/${name} has no key "${key}" (keys: ${Object.keys(data).join(', ') || 'none'})`,
    );
  }
  return {
    value: Buffer.from(data[key], 'base64').toString('utf8'),
    version: secret.metadata.resourceVersion ?? '',
  };
}
