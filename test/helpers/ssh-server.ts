/**
 * A real SSH server in the test process (ssh2's Server: the SSH protocol, key authentication,
 * exec and direct-tcpip channels), standing in for a server's sshd where booting one is not
 * what a test is about: commands run with `sh -c` here, forwarded channels reach this host's
 * loopback ports. Only the key given is let in.
 */
import { spawn } from 'node:child_process';
import { timingSafeEqual } from 'node:crypto';
import { connect } from 'node:net';
import ssh2 from 'ssh2';
import { generateKeyPair, type KeyPair } from '../../src/ssh/client.js';

export interface TestSshServer {
  port: number;
  key: KeyPair;
  /** Commands run so far, in order. */
  commands: string[];
  /** Ports forwarded to so far. */
  forwards: number[];
  close(): Promise<void>;
}

export async function startSshServer(): Promise<TestSshServer> {
  const key = generateKeyPair('test-client');
  const allowed = ssh2.utils.parseKey(key.publicKey);
  if (allowed instanceof Error) throw allowed;
  const hostKey = generateKeyPair('test-host').privateKey;
  const commands: string[] = [];
  const forwards: number[] = [];
  const clients = new Set<ssh2.Connection>();
  const server = new ssh2.Server({ hostKeys: [hostKey] }, (client) => {
    clients.add(client);
    client.on('close', () => clients.delete(client));
    client.on('error', () => undefined);
    client.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
      const wanted = allowed.getPublicSSH();
      const offered = ctx.key.data;
      if (ctx.key.algo !== allowed.type || offered.length !== wanted.length || !timingSafeEqual(offered, wanted)) return ctx.reject();
      if (ctx.signature && ctx.blob && allowed.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true) return ctx.reject();
      ctx.accept();
    });
    client.on('ready', () => {
      client.on('session', (accept) => {
        const session = accept();
        session.on('exec', (acceptExec, _reject, info) => {
          const channel = acceptExec();
          commands.push(info.command);
          const child = spawn('sh', ['-c', info.command], { stdio: ['pipe', 'pipe', 'pipe'] });
          channel.pipe(child.stdin);
          child.stdout.pipe(channel, { end: false });
          child.stderr.pipe(channel.stderr, { end: false });
          child.on('close', (code) => {
            channel.exit(code ?? 255);
            channel.end();
          });
        });
      });
      client.on('tcpip', (accept, reject, info) => {
        forwards.push(info.destPort);
        const socket = connect(info.destPort, '127.0.0.1');
        socket.once('error', () => reject());
        socket.once('connect', () => {
          const channel = accept();
          channel.pipe(socket).pipe(channel);
          socket.on('error', () => channel.destroy());
          channel.on('error', () => socket.destroy());
        });
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    key,
    commands,
    forwards,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Open client connections keep a server from closing.
        for (const c of clients) c.end();
      }),
  };
}
