/**
 * The emulated clouds' own traffic plumbing (a load balancer, a reserved or elastic IP): a TCP
 * listener on a loopback address that forwards each new connection to the target `pick()` names at
 * that moment. Changing what pick() returns moves only new connections; open ones run to their end,
 * as a cloud's balancer drains a removed member. This is the emulated cloud's part, not the
 * product's load balancer.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface ForwardTarget {
  host: string;
  port: number;
}

export interface ForwarderOptions {
  /** Where a new connection goes; undefined: no member to take it. */
  pick: () => ForwardTarget | undefined;
  /** Answers a connection nobody can take (e.g. an HTTP 503); default: the connection is closed. */
  refuse?: (client: Socket) => void;
}

export class TcpForwarder {
  private readonly sockets = new Set<Socket>();
  /** Open connections per target (host:port), for tests and draining. */
  private readonly open = new Map<string, number>();

  private constructor(
    private readonly server: Server,
    readonly address: string,
    readonly port: number,
  ) {}

  static listen(address: string, port: number, opts: ForwarderOptions): Promise<TcpForwarder> {
    return new Promise((resolve, reject) => {
      let forwarder: TcpForwarder | undefined;
      const server = createServer((client) => forwarder?.forward(client, opts));
      server.once('error', reject);
      server.listen({ host: address, port, exclusive: true }, () => {
        server.off('error', reject);
        forwarder = new TcpForwarder(server, address, port);
        resolve(forwarder);
      });
    });
  }

  /** Connections now open to `target`. */
  openTo(target: ForwardTarget): number {
    return this.open.get(`${target.host}:${target.port}`) ?? 0;
  }

  private forward(client: Socket, opts: ForwarderOptions): void {
    this.sockets.add(client);
    client.once('close', () => this.sockets.delete(client));
    client.on('error', () => client.destroy());
    const target = opts.pick();
    if (!target) {
      if (opts.refuse) opts.refuse(client);
      else client.destroy();
      return;
    }
    const key = `${target.host}:${target.port}`;
    this.open.set(key, (this.open.get(key) ?? 0) + 1);
    const upstream = connect({ host: target.host, port: target.port });
    this.sockets.add(upstream);
    upstream.once('close', () => {
      this.sockets.delete(upstream);
      const left = (this.open.get(key) ?? 1) - 1;
      if (left > 0) this.open.set(key, left);
      else this.open.delete(key);
      client.destroy();
    });
    upstream.on('error', () => upstream.destroy());
    client.once('close', () => upstream.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** Stops listening and ends every open connection. */
  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** A plain HTTP 503 for a balancer with no healthy member (what an HTTP load balancer answers). */
export function refuseHttp(client: Socket): void {
  client.end('HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 20\r\nconnection: close\r\n\r\nno healthy backends\n');
}
