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

describe('waitForSsh', () => {
  it('does not wait out an attempt that hangs: a new attempt gets through as soon as the machine answers, and the hanging ones are closed', async () => {
    const sshd = await startSshServer();
    const front = await silentFront(sshd.port);
    try {
      const started = performance.now();
      setTimeout(front.ready, 1000);
      const session = await waitForSsh({ host: '127.0.0.1', port: front.port, user: 'root' }, sshd.key.privateKey, { timeoutMs: 30_000, what: 'SSH on the test' });
      const ms = performance.now() - started;
      const result = await session.exec('echo hello');
      session.close();
      assert.equal(result.stdout.trim(), 'hello');
      // One attempt alone would hang for its whole handshake timeout (20 s) after the first second.
      assert.ok(ms < 5000, `answered after ${Math.round(ms)} ms`);
      assert.ok(front.accepted() >= 3, `attempts overlapped (${front.accepted()} connections)`);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(front.held.size, 0, 'the attempts still hanging were closed');
    } finally {
      await front.close();
      await sshd.close();
    }
  });

  it('times out with what it waited for, and leaves no attempt open', async () => {
    const sshd = await startSshServer();
    const front = await silentFront(sshd.port);
    try {
      await assert.rejects(
        waitForSsh({ host: '127.0.0.1', port: front.port, user: 'root' }, sshd.key.privateKey, { timeoutMs: 1500, what: 'SSH on the silent one' }),
        (err: unknown) => err instanceof TimeoutError && /timed out after 2 s waiting for SSH on the silent one/.test(err.message),
      );
      assert.ok(front.accepted() <= 6, `at most 6 attempts at once (${front.accepted()})`);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(front.held.size, 0);
    } finally {
      await front.close();
      await sshd.close();
    }
  });

  it('ends at once, with every attempt closed, when its signal aborts', async () => {
    const sshd = await startSshServer();
    const front = await silentFront(sshd.port);
    try {
      const abort = new AbortController();
      setTimeout(() => abort.abort(), 700);
      const started = performance.now();
      await assert.rejects(waitForSsh({ host: '127.0.0.1', port: front.port, user: 'root' }, sshd.key.privateKey, { timeoutMs: 30_000, signal: abort.signal, what: 'x' }), /cancel/i);
      assert.ok(performance.now() - started < 1500);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(front.held.size, 0);
    } finally {
      await front.close();
      await sshd.close();
    }
  });
});
