/**
 * An HTTP GET to a port on a server, carried by a channel of its SSH connection (ssh2's
 * forwardOut, OpenSSH's direct-tcpip): health checks need neither curl in the image nor a port
 * open in its firewall. Node's own HTTP client speaks HTTP over the channel.
 */
import { request } from 'node:http';
import { CancelledError } from '../core/errors.js';
import type { SshSession } from './client.js';

export interface HttpAnswer {
  status: number;
  /** The first KiB of the body, for messages. */
  body: string;
}

export async function httpGetOverSsh(ssh: SshSession, port: number, path: string, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<HttpAnswer> {
  if (opts.signal?.aborted) throw new CancelledError();
  const channel = await ssh.forward(port);
  return new Promise<HttpAnswer>((resolve, reject) => {
    const req = request(
      { host: 'localhost', port, path, method: 'GET', createConnection: () => channel, headers: { 'user-agent': 'provisional-health-check', connection: 'close' }, signal: opts.signal },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (body.length < 1024) body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: body.slice(0, 1024) }));
        res.on('error', reject);
      },
    );
    // An SSH channel is no socket: the request's own setTimeout would call what it lacks.
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${Math.round(opts.timeoutMs / 1000)} s`)), opts.timeoutMs);
    req.on('close', () => clearTimeout(timer));
    req.on('error', (err) => reject(opts.signal?.aborted ? new CancelledError() : err));
    req.end();
  }).finally(() => channel.destroy());
}
