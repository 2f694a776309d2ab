/**
 * waitForSsh against what QEMU's user networking does before the guest has its address: it
 * accepts the TCP connection and then says nothing (its SYN to the guest goes unanswered and is
 * retried with backoff), so an attempt made then hangs even after sshd could answer. A front here
 * plays that part before a real SSH server (ssh2's, test/helpers/ssh-server.ts).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect as tcpConnect, type Socket } from 'node:net';
import { waitForSsh } from '../../src/ssh/client.js';
import { TimeoutError } from '../../src/core/wait.js';
import { startSshServer } from '../helpers/ssh-server.js';

/** Holds connections silently until `ready()`; connections made after that reach `port`. */
async function silentFront(port: number) {
  const held = new Set<Socket>();
  let ready = false;
  let accepted = 0;
  const server = createServer((socket) => {
    accepted++;
    if (!ready) {
      held.add(socket);
      // Read and drop what the client says, so that its closing the connection is seen.
      socket.resume();
      socket.on('close', () => held.delete(socket));
      socket.on('error', () => undefined);
      return;
    }
    const upstream = tcpConnect(port, '127.0.0.1');
    socket.pipe(upstream).pipe(socket);
    socket.on('error', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    held,
    accepted: () => accepted,
    ready: () => void (ready = true),
    close: () => {
      for (const s of held) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

type Front = Awaited<ReturnType<typeof silentFront>>;

/** A real SSH server behind a silent front; `wait` calls waitForSsh through the front. Both are closed after `body`. */
async function withFront(body: (front: Front, wait: (opts: { timeoutMs: number; signal?: AbortSignal; what: string }) => ReturnType<typeof waitForSsh>) => Promise<void>): Promise<void> {
  const sshd = await startSshServer();
  const front = await silentFront(sshd.port);
  try {
    await body(front, (opts) => waitForSsh({ host: '127.0.0.1', port: front.port, user: 'root' }, sshd.key.privateKey, opts));
  } finally {
    await front.close();
    await sshd.close();
  }
}

/** Lets the closing of what waitForSsh left reach the front. */
const settle = () => new Promise((r) => setTimeout(r, 200));

describe('waitForSsh', () => {
  it('does not wait out an attempt that hangs: a new attempt gets through as soon as the machine answers, and the hanging ones are closed', () =>
    withFront(async (front, wait) => {
      const started = performance.now();
      // Long enough for more attempts than may be open at once to be made while nothing answers.
      setTimeout(front.ready, 4000);
      const session = await wait({ timeoutMs: 30_000, what: 'SSH on the test' });
      const ms = performance.now() - started;
      const result = await session.exec('echo hello');
      session.close();
      assert.equal(result.stdout.trim(), 'hello');
      // An attempt waits up to its handshake timeout (20 s): answered within about one interval.
      assert.ok(ms < 6500, `answered after ${Math.round(ms)} ms`);
      assert.ok(front.accepted() > 6, `silent attempts were replaced by new ones (${front.accepted()} connections)`);
      await settle();
      assert.equal(front.held.size, 0, 'the attempts still hanging were closed');
    }));

  it('times out with what it waited for, and leaves no attempt open', () =>
    withFront(async (front, wait) => {
      let most = 0;
      const sampler = setInterval(() => (most = Math.max(most, front.held.size)), 20);
      await assert.rejects(
        wait({ timeoutMs: 5000, what: 'SSH on the silent one' }),
        (err: unknown) => err instanceof TimeoutError && /timed out after 5 s waiting for SSH on the silent one/.test(err.message),
      );
      clearInterval(sampler);
      assert.ok(most >= 4 && most <= 6, `attempts overlap, at most 6 open at once (${most})`);
      assert.ok(front.accepted() > 6, `silent attempts were replaced (${front.accepted()} made)`);
      await settle();
      assert.equal(front.held.size, 0);
    }));

  it('ends at once, with every attempt closed, when its signal aborts', () =>
    withFront(async (front, wait) => {
      const abort = new AbortController();
      setTimeout(() => abort.abort(), 700);
      const started = performance.now();
      await assert.rejects(wait({ timeoutMs: 30_000, signal: abort.signal, what: 'x' }), /cancel/i);
      assert.ok(performance.now() - started < 1500);
      await settle();
      assert.equal(front.held.size, 0);
    }));
});
