/** An emulator's HTTP server: listening on a loopback port, and closing with every connection. */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Listening {
  /** http://host:port */
  url: string;
  /** Stops listening and cuts the open connections. */
  close(): Promise<void>;
}

/** Serves `handle`; an error it throws goes to `onError`, and the client gets `fallback` (a 500). */
export async function listen(
  handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
  opts: { port?: number; host?: string; onError: (err: unknown) => void; fallback: (res: ServerResponse) => void },
): Promise<Listening> {
  const server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      opts.onError(err);
      if (!res.headersSent) opts.fallback(res);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://${address.address}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
