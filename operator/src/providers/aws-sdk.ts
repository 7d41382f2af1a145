/**
 * The AWS SDK packages, loaded when a policy first names an AWS provider. Loaded at start they
 * cost every operator ~14 MiB RSS and ~0.1 s (docs/architecture.md), and a fleet on
 * self-managed PostgreSQL with RFC 2136 or DigitalOcean DNS never uses them. They are
 * CommonJS, so `require` loads them synchronously and the provider factories stay synchronous.
 * Node caches the module, so this is the same instance a static `import` of the package gives
 * (the tests' client mocks rely on it).
 */
import { createRequire } from 'node:module';

type Rds = typeof import('@aws-sdk/client-rds');
type Route53 = typeof import('@aws-sdk/client-route-53');
type CredentialProviderNode = typeof import('@aws-sdk/credential-provider-node');

// `require` caches the module after the first load, so each call after it is a cache lookup.
const load = createRequire(import.meta.url);

export const rdsSdk = (): Rds => load('@aws-sdk/client-rds') as Rds;
export const route53Sdk = (): Route53 => load('@aws-sdk/client-route-53') as Route53;
export const credentialProviderNodeSdk = (): CredentialProviderNode =>
  load('@aws-sdk/credential-provider-node') as CredentialProviderNode;
