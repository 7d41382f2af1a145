/**
 * A TCP proxy on loopback that stands for one network path, say from region C to the primary in
 * region A. Cutting it makes the far side unreachable from that path only, which is how a test
 * shows one observer losing sight of a primary that everyone else still reaches.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { freePort } from './ports.ts';

export class TcpProxy {
  readonly port: number;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private cutOff = false;
  private silent = false;
  /** Connections accepted so far (refused ones not counted). */
  accepted = 0;

  private constructor(port: number, server: Server) {
    this.port = port;
    this.server = server;
  }

  /**
   * `delayMs` holds every chunk that long in each direction before passing it on (a round trip
   * of twice that), in order: a path between regions, for what the distance costs a prober.
   * `startDelayMs` holds what the server sends on a new connection until it has been open that
   * long, then carries it: a server slow to start sessions (forks and authentication under load),
   * while sessions already open answer at once.
   */
  static async start(
    target: { host: string; port: number },
    listenHost = '127.0.0.1',
    options: { delayMs?: number; startDelayMs?: number } = {},
  ): Promise<TcpProxy> {
    const delayMs = options.delayMs ?? 0;
    const startDelayMs = options.startDelayMs ?? 0;
    const port = await freePort();
    let proxy: TcpProxy | undefined;
    const server = createServer((client) => {
      if (!proxy || proxy.cutOff) {
        client.resetAndDestroy();
        return;
      }
      if (proxy.silent) {
        // Accepted and never answered: what a black-holed link looks like to a client already
        // past connect (its own timeouts must end the wait).
        proxy.sockets.add(client);
        client.on('close', () => proxy?.sockets.delete(client));
        client.on('error', () => undefined);
        client.pause();
        return;
      }
      proxy.accepted++;
      const upstream = createConnection(target);
      for (const s of [client, upstream]) {
        proxy.sockets.add(s);
        s.on('close', () => proxy?.sockets.delete(s));
        s.on('error', () => undefined);
      }
      if (startDelayMs > 0) {
        // The server's bytes are held, in order, until the connection is startDelayMs old; so is
        // its close (a refusal it sends and closes after comes whole).
        let held: Buffer[] | undefined = [];
        let closedWhileHeld = false;
        setTimeout(() => {
          for (const chunk of held ?? []) if (client.writable) client.write(chunk);
          held = undefined;
          if (closedWhileHeld) client.end();
        }, startDelayMs);
        client.pipe(upstream);
        upstream.on('data', (chunk: Buffer) => {
          if (held) held.push(chunk);
          else if (client.writable) client.write(chunk);
        });
        upstream.on('close', () => {
          if (held) closedWhileHeld = true;
          else client.destroy();
        });
      } else if (delayMs > 0) {
        // Timers of one delay fire in the order they were set, so the byte order holds.
        const carry = (from: Socket, to: Socket) =>
          from.on('data', (chunk) => setTimeout(() => to.writable && to.write(chunk), delayMs));
        carry(client, upstream);
        carry(upstream, client);
      } else {
        client.pipe(upstream).pipe(client);
      }
      client.on('close', () => upstream.destroy());
      if (startDelayMs <= 0) upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => server.listen(port, listenHost, resolve));
    proxy = new TcpProxy(port, server);
    return proxy;
  }

  /** Refuses new connections (reset) and drops open ones, as a broken network path would. */
  cut(): void {
    this.cutOff = true;
    for (const s of this.sockets) s.resetAndDestroy();
  }

  /**
   * Drops everything silently from now on: open connections stop carrying bytes either way and
   * new ones hang, nothing is refused. What a cut-off region's clients see.
   */
  silence(): void {
    this.silent = true;
    for (const s of this.sockets) {
      s.unpipe();
      s.pause();
    }
  }

  /** Undoes cut and silence: connections left hanging are ended, new ones are carried again. */
  restore(): void {
    if (this.silent) for (const s of this.sockets) s.destroy();
    this.cutOff = false;
    this.silent = false;
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
