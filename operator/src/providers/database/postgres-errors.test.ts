import { describe, expect, it } from 'vitest';
import { classifyPostgresError } from './postgres-sql.ts';

/** An error as node-postgres or Node's sockets raise it. */
const failure = (message: string, fields: Record<string, unknown> = {}) =>
  Object.assign(new Error(message), fields);

describe('classifyPostgresError', () => {
  // The reason decides whether an observer's failure is a vote against the primary
  // (detection.ts): the server answering and refusing abstains, the network failing does not.
  it.each([
    [
      'a connection reset mid-handshake is the network',
      failure('Client network socket disconnected before secure TLS connection was established', {
        code: 'ECONNRESET',
      }),
      'Unreachable',
    ],
    [
      'a refused connection',
      failure('connect ECONNREFUSED 10.0.0.1:5432', { code: 'ECONNREFUSED' }),
      'Unreachable',
    ],
    ['no answer in time', failure('timeout expired', { code: 'ETIMEDOUT' }), 'Timeout'],
    [
      'a certificate that expired',
      failure('certificate has expired', { code: 'CERT_HAS_EXPIRED' }),
      'TlsFailed',
    ],
    [
      'a certificate for another name',
      failure("Hostname/IP does not match certificate's altnames", { code: 'ERR_TLS_CERT_ALTNAME_INVALID' }),
      'TlsFailed',
    ],
    ['a server without TLS', failure('The server does not support SSL connections'), 'TlsFailed'],
    [
      'a wrong password',
      failure('password authentication failed for user "x"', { code: '28P01' }),
      'AuthenticationFailed',
    ],
    ['a server starting up', failure('the database system is starting up', { code: '57P03' }), 'Unreachable'],
    ['too many connections', failure('sorry, too many clients already', { code: '53300' }), 'ProviderError'],
    ['no such database', failure('database "app" does not exist', { code: '3D000' }), 'NotFound'],
  ])('%s', (_, err, reason) => {
    expect(classifyPostgresError(err, 'db:5432/app').reason).toBe(reason);
  });
});
