/**
 * The agents of one policy asking each other, without the control plane, whether a standby was
 * promoted: Patroni's failsafe mode across regions. The agent beside the primary asks when it
 * cannot renew its Lease; each standby's agent answers from its own database and what it last
 * read of the policy (see vouch.ts). Plain HTTP with JSON on a port of the agent's own; with
 * `--peer-token-file` every request must carry that token, so nothing else on the network can
 * speak for a standby.
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';

export interface VouchQuestion {
  namespace: string;
  policy: string;
  /** The primary asking, and the epoch it holds. */
  primary: string;
  epoch: number;
}

export interface VouchAnswer {
  /** True: this standby was not promoted, and knows of no operation replacing that primary. */
  vouched: boolean;
  /** The cluster answering. */
  cluster: string;
  reason?: string;
}

const PATH = '/v1/vouch';
const MAX_BODY = 4096;

export class PeerServer {
  private server: Server | undefined;
  private readonly answer: (q: VouchQuestion) => Promise<VouchAnswer>;
  private readonly token: string | undefined;

  constructor(answer: (q: VouchQuestion) => Promise<VouchAnswer>, token: string | undefined) {
    this.answer = answer;
    this.token = token;
  }

  /** Listens on `host:port` (port 0: any free one); resolves with the port. */
  async listen(host: string, port: number): Promise<number> {
    const server = createServer((req, res) => {
      void this.handle(req).then(
        ({ code, body }) => {
          res.writeHead(code, { 'content-type': 'application/json' });
          res.end(JSON.stringify(body));
        },
        () => {
          res.writeHead(500).end();
        },
      );
    });
    // A peer that stops reading must not hold a socket for long: answers take milliseconds.
    server.requestTimeout = 5_000;
    server.headersTimeout = 5_000;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const address = server.address();
    return typeof address === 'object' && address ? address.port : port;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage): Promise<{ code: number; body: unknown }> {
    if (req.method !== 'POST' || req.url !== PATH) return { code: 404, body: { error: 'not found' } };
    if (this.token !== undefined && !sameToken(req.headers.authorization, `Bearer ${this.token}`))
      return { code: 401, body: { error: 'a peer token is required' } };
    const question = parseQuestion(await readBody(req));
    if (!question) return { code: 400, body: { error: 'expected {namespace, policy, primary, epoch}' } };
    return { code: 200, body: await this.answer(question) };
  }
}

/** Asks one peer; a peer that does not answer within `timeoutMs` has not vouched. */
export async function askPeer(
  address: string,
  question: VouchQuestion,
  opts: { timeoutMs: number; token?: string },
): Promise<VouchAnswer> {
  const res = await fetch(`http://${address}${PATH}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(opts.token !== undefined ? { authorization: `Bearer ${opts.token}` } : {}),
    },
    body: JSON.stringify(question),
    signal: AbortSignal.timeout(opts.timeoutMs),
  });
  const body = (await res.json().catch(() => ({}))) as Partial<VouchAnswer>;
  if (res.status !== 200 || typeof body.vouched !== 'boolean')
    return { vouched: false, cluster: body.cluster ?? address, reason: `HTTP ${res.status}` };
  return {
    vouched: body.vouched,
    cluster: String(body.cluster ?? address),
    ...(body.reason ? { reason: body.reason } : {}),
  };
}

function sameToken(given: string | undefined, wanted: string): boolean {
  const a = Buffer.from(given ?? '');
  const b = Buffer.from(wanted);
  return a.length === b.length && timingSafeEqual(a, b);
}

async function readBody(req: IncomingMessage): Promise<string> {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > MAX_BODY) throw new Error('body too large');
  }
  return body;
}

function parseQuestion(text: string): VouchQuestion | undefined {
  try {
    const q = JSON.parse(text) as Partial<VouchQuestion>;
    if (
      typeof q.namespace === 'string' &&
      typeof q.policy === 'string' &&
      typeof q.primary === 'string' &&
      typeof q.epoch === 'number' &&
      Number.isInteger(q.epoch)
    )
      return { namespace: q.namespace, policy: q.policy, primary: q.primary, epoch: q.epoch };
  } catch {
    // not JSON
  }
  return undefined;
}
