/**
 * Picks the DNS adapter for a policy's provider, and the servers that verify a change. No
 * provider or region name appears in decisions; only this factory knows them.
 */

import type { DnsProvider as DnsProviderSpec } from '../../api/v1alpha1/index.ts';
import { parseAwsCredentials, SharedAwsClients } from '../aws.ts';
import { route53Sdk } from '../aws-sdk.ts';
import { DigitalOceanDnsProvider } from './digitalocean.ts';
import type { DnsProvider } from './port.ts';
import { Rfc2136DnsProvider } from './rfc2136.ts';
import { Route53Dns } from './route53.ts';
import type { DnsServerAddress } from './verifier.ts';

/** The Secret key a provider needs, if any. */
export function dnsSecretRef(provider: DnsProviderSpec): { name: string; key: string } | undefined {
  switch (provider.type) {
    case 'RFC2136':
      return provider.rfc2136.tsig.secretRef;
    case 'Route53':
      return provider.route53.credentialsSecretRef;
    case 'DigitalOcean':
      return provider.digitalOcean.tokenSecretRef;
  }
}

export function parseServer(text: string, defaultPort = 53): DnsServerAddress {
  const m = /^(.*?)(?::(\d{1,5}))?$/.exec(text);
  return { host: m?.[1] ?? text, port: m?.[2] ? Number(m[2]) : defaultPort };
}

/** Every DNS check of every policy on Route 53 goes through these (see SharedAwsClients). */
const route53Clients = new SharedAwsClients((config) => new (route53Sdk().Route53Client)(config));

/** `secret` is the value of dnsSecretRef's key, already read; `where` names it for messages. */
export function createDnsProvider(
  provider: DnsProviderSpec,
  secret: string | undefined,
  where: string,
  timeoutMs = 5_000,
): DnsProvider {
  switch (provider.type) {
    case 'RFC2136': {
      const server = parseServer(provider.rfc2136.server);
      return new Rfc2136DnsProvider({
        host: server.host,
        port: server.port,
        key: {
          name: provider.rfc2136.tsig.keyName,
          algorithm: provider.rfc2136.tsig.algorithm,
          secret: secret ?? '',
        },
        timeoutMs,
      });
    }
    case 'Route53': {
      const shared = route53Clients.get({
        region: provider.route53.region,
        // As the other providers: a DNS read inside a reconcile gives up within timeoutMs.
        requestTimeoutMs: timeoutMs,
        ...(provider.route53.endpointUrl ? { endpointUrl: provider.route53.endpointUrl } : {}),
        ...(secret ? { credentials: parseAwsCredentials(secret, where) } : {}),
      });
      return new Route53Dns({ hostedZoneId: provider.route53.hostedZoneId, ...shared });
    }
    case 'DigitalOcean':
      return new DigitalOceanDnsProvider({
        token: secret ?? '',
        timeoutMs,
        ...(provider.digitalOcean.apiUrl ? { apiUrl: provider.digitalOcean.apiUrl } : {}),
      });
  }
}

/**
 * The servers asked to verify a change when the policy lists none: for RFC 2136 the server that
 * took the update is authoritative by definition; other providers need their NS records, found by
 * the caller through findAuthoritativeServers.
 */
export function defaultVerifyServers(provider: DnsProviderSpec): DnsServerAddress[] | undefined {
  return provider.type === 'RFC2136' ? [parseServer(provider.rfc2136.server)] : undefined;
}
