/**
 * Application endpoints checked over HTTP: a GET whose answer is 2xx or 3xx counts as healthy
 * (redirects are not followed: a login page behind a redirect still means the application
 * answers). TLS is verified against the system's CAs.
 */
import type { AppEndpointCheck, AppEndpointChecker } from './port.ts';

export class HttpAppEndpointChecker implements AppEndpointChecker {
  async check(endpoint: { name: string; url: string }, timeoutMs: number): Promise<AppEndpointCheck> {
    const { name, url } = endpoint;
    try {
      const response = await fetch(url, {
        method: 'GET',
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
        headers: { 'user-agent': 'failover-operator' },
      });
      // The body is not needed; drop it so the connection can be reused or closed.
      await response.body?.cancel().catch(() => undefined);
      const healthy = response.status >= 200 && response.status < 400;
      return {
        name,
        healthy,
        statusCode: response.status,
        ...(healthy ? {} : { reason: 'HttpStatus' }),
        message: `GET ${url} answered ${response.status}`,
      };
    } catch (err) {
      return { name, healthy: false, ...classify(err, url, timeoutMs) };
    }
  }
}

function classify(err: unknown, url: string, timeoutMs: number): { reason: string; message: string } {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError')
    return { reason: 'Timeout', message: `GET ${url} did not answer within ${timeoutMs} ms` };
  const code = e.cause?.code ?? '';
  const detail = e.cause?.message ?? e.message ?? String(err);
  if (/CERT|TLS|SSL/.test(code)) return { reason: 'TlsFailed', message: `GET ${url}: ${detail}` };
  if (['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN'].includes(code))
    return { reason: 'Unreachable', message: `GET ${url}: ${detail}` };
  return { reason: 'Unreachable', message: `GET ${url}: ${detail}` };
}
