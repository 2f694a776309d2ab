/**
 * SSH to builders and servers, with the ssh2 library: connect, wait until a machine answers,
 * run commands with their output streamed line by line, upload a tar stream.
 */
import ssh2, { type ClientChannel } from 'ssh2';
import type { Duplex, Readable } from 'node:stream';
import { connect as tcpConnect, type Socket } from 'node:net';
import { CancelledError, UserFacingError } from '../core/errors.js';
import { TimeoutError } from '../core/wait.js';

// ssh2 is CommonJS: its named exports are not visible to ESM imports.
const { Client, utils } = ssh2;
type Client = InstanceType<typeof ssh2.Client>;
import type { SshEndpoint } from '../providers/types.js';

export interface KeyPair {
  /** OpenSSH public key line. */
  publicKey: string;
  /** OpenSSH private key (PEM-like). Never logged. */
  privateKey: string;
}

/**
 * A fresh ed25519 key, one per build. ssh2's generator drops a leading zero byte of the 32-byte
 * public key (about one key in 256 comes out 31 bytes long, which sshd and EC2 reject), so such
 * a key is thrown away and another made.
 */
export function generateKeyPair(comment: string): KeyPair {
  for (;;) {
    const pair = utils.generateKeyPairSync('ed25519', { comment });
    const blob = Buffer.from(pair.public.trim().split(/\s+/)[1] ?? '', 'base64');
    // string "ssh-ed25519" (4 + 11 bytes), then string key (4 + 32 bytes)
    if (blob.length === 51 && blob.readUInt32BE(15) === 32) return { publicKey: pair.public.trim(), privateKey: pair.private };
  }
}

export class SshError extends UserFacingError {}

export interface SshSession {
  readonly endpoint: SshEndpoint;
  /** Run a command; resolves with its exit status (null when killed by a signal). */
  exec(command: string, opts?: ExecOptions): Promise<ExecResult>;
  /** Run `command` with `input` piped to its standard input (used to upload a tar stream). */
  execWithInput(command: string, input: Readable, opts?: ExecOptions): Promise<ExecResult>;
  /** A TCP connection to `port` on the server's own loopback, through the SSH connection (direct-tcpip). */
  forward(port: number): Promise<Duplex>;
  close(): void;
}

export interface ExecOptions {
  signal?: AbortSignal;
  onLine?: (stream: 'stdout' | 'stderr', line: string) => void;
  env?: Record<string, string>;
  /** Kill the command (close the channel) after this long. */
  timeoutMs?: number;
}

export interface ExecResult {
  code: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
}

/** One connection attempt. `readyTimeoutMs` bounds the handshake. */
export function connect(endpoint: SshEndpoint, privateKey: string, readyTimeoutMs = 10_000, signal?: AbortSignal, sock?: Socket): Promise<SshSession> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new CancelledError());
    const client = new Client();
    const onAbort = () => {
      // destroy, not end: mid-handshake, end() leaves the TCP connection open.
      client.destroy();
      reject(new CancelledError());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    client
      .on('ready', () => {
        signal?.removeEventListener('abort', onAbort);
        resolve(session(client, endpoint));
      })
      .on('error', (err) => {
        signal?.removeEventListener('abort', onAbort);
        client.end();
        reject(err);
      })
      .connect({
        sock,
        host: endpoint.host,
        port: endpoint.port,
        username: endpoint.user,
        privateKey,
        readyTimeout: readyTimeoutMs,
        keepaliveInterval: 5000,
        keepaliveCountMax: 6,
        // Builders are new machines with new host keys every time: there is nothing to pin.
        hostVerifier: () => true,
      });
  });
}

/** At most this many connection attempts are open at once. */
const MAX_ATTEMPTS = 6;
/** New attempts start at least this often: silent ones are closed, so a short interval costs little. */
const MAX_INTERVAL_MS = 500;
/** One attempt's handshake: long, since a loaded machine under emulation can take seconds to answer. */
const HANDSHAKE_MS = 20_000;

/**
 * Wait until the machine answers SSH with our key. QEMU's user networking (and cloud load
 * balancers) accept TCP long before sshd runs, so only a full handshake and a command count.
 *
 * Attempts overlap. An attempt can hang where nothing refuses it: QEMU's user networking accepts
 * the TCP connection at once, then sends its SYN to the guest again with backoff (1, 2, 4, 8 s)
 * until the guest has its address, so a single attempt made before the guest's DHCP was seen to
 * wait 9.4 s after sshd could have answered. So a new attempt starts every interval (250 ms,
 * growing to 500 ms) while earlier ones still wait. At most MAX_ATTEMPTS are open: to make room, the
 * oldest that has heard nothing from the server is closed (one that has, is in a handshake that a
 * loaded machine may take seconds to finish, and is let be). The first that runs `true` wins;
 * the others are closed. Polls fast at first: a fixed long first wait, as Packer's, costs
 * seconds on every build.
 */
export async function waitForSsh(
  endpoint: SshEndpoint,
  privateKey: string,
  opts: { timeoutMs: number; signal?: AbortSignal; what: string },
): Promise<SshSession> {
  if (opts.signal?.aborted) throw new CancelledError();
  const deadline = performance.now() + opts.timeoutMs;
  interface Attempt {
    abort: AbortController;
    /** The server has sent something (its SSH banner at least). */
    heard: boolean;
  }
  const open: Attempt[] = [];
  return new Promise<SshSession>((resolve, reject) => {
    let settled = false;
    let interval = 250;
    let lastError: unknown;
    let timer: NodeJS.Timeout | undefined;
    const finish = (err: Error | undefined, session?: SshSession) => {
      if (settled) return void session?.close();
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      for (const a of open.splice(0)) a.abort.abort();
      if (err) reject(err);
      else resolve(session!);
    };
    const onAbort = () => finish(new CancelledError());
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const attempt = async () => {
      const a: Attempt = { abort: new AbortController(), heard: false };
      open.push(a);
      try {
        const sock = tcpConnect(endpoint.port, endpoint.host);
        const s = await connect(endpoint, privateKey, HANDSHAKE_MS, a.abort.signal, sock.once('data', () => (a.heard = true)));
        const probe = await s.exec('true', { signal: a.abort.signal, timeoutMs: 10_000 }).catch((err: unknown) => {
          lastError = err;
          return undefined;
        });
        if (probe?.code === 0) {
          // The winner leaves the open attempts before finish ends them: its session is the result.
          open.splice(open.indexOf(a), 1);
          return finish(undefined, s);
        }
        s.close();
      } catch (err) {
        if (!(err instanceof CancelledError)) lastError = err;
      } finally {
        const i = open.indexOf(a);
        if (i >= 0) open.splice(i, 1);
      }
    };
    const tick = () => {
      if (settled) return;
      const left = deadline - performance.now();
      if (left <= 0) {
        const why = lastError instanceof Error ? `: last error: ${lastError.message}` : '';
        return finish(new TimeoutError(`timed out after ${Math.round(opts.timeoutMs / 1000)} s waiting for ${opts.what}${why}`));
      }
      if (open.length >= MAX_ATTEMPTS) {
        const silent = open.find((a) => !a.heard);
        if (silent) {
          open.splice(open.indexOf(silent), 1);
          silent.abort.abort();
        }
      }
      if (open.length < MAX_ATTEMPTS) void attempt();
      timer = setTimeout(tick, Math.min(interval, left));
      interval = Math.min(MAX_INTERVAL_MS, interval * 1.2);
    };
    tick();
  });
}

function session(client: Client, endpoint: SshEndpoint): SshSession {
  const run = (command: string, input: Readable | undefined, opts: ExecOptions = {}) =>
    new Promise<ExecResult>((resolve, reject) => {
      if (opts.signal?.aborted) return reject(new CancelledError());
      client.exec(command, { env: opts.env }, (err, channel) => {
        if (err) return reject(new SshError(`ssh ${endpoint.host}:${endpoint.port}: cannot run a command: ${err.message}`));
        collect(channel, input, opts).then(resolve, reject);
      });
    });
  return {
    endpoint,
    exec: (command, opts) => run(command, undefined, opts),
    execWithInput: (command, input, opts) => run(command, input, opts),
    forward: (port) =>
      new Promise<Duplex>((resolve, reject) => {
        client.forwardOut('127.0.0.1', 0, '127.0.0.1', port, (err, channel) => {
          if (err) reject(new SshError(`ssh ${endpoint.host}:${endpoint.port}: cannot reach port ${port} on the server: ${err.message}`));
          else resolve(channel);
        });
      }),
    close: () => client.end(),
  };
}

const KEEP_BYTES = 1 << 20;

function collect(channel: ClientChannel, input: Readable | undefined, opts: ExecOptions): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    const partial = { stdout: '', stderr: '' };
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      fn();
    };
    const onData = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      if (stream === 'stdout') stdout = (stdout + text).slice(-KEEP_BYTES);
      else stderr = (stderr + text).slice(-KEEP_BYTES);
      if (!opts.onLine) return;
      const lines = (partial[stream] + text).split(/\r?\n/);
      partial[stream] = lines.pop() ?? '';
      for (const line of lines) opts.onLine(stream, line);
    };
    const onAbort = () => {
      channel.close();
      finish(() => reject(new CancelledError()));
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          channel.close();
          finish(() => reject(new SshError(`command timed out after ${Math.round(opts.timeoutMs! / 1000)} s`)));
        }, opts.timeoutMs)
      : undefined;
    channel.on('data', onData('stdout'));
    channel.stderr.on('data', onData('stderr'));
    let exit: { code: number | null; signal?: string } = { code: null };
    channel.on('exit', (code: number | null, signal?: string) => {
      exit = { code: typeof code === 'number' ? code : null, signal: signal ?? undefined };
    });
    channel.on('close', () => {
      for (const stream of ['stdout', 'stderr'] as const) {
        if (partial[stream] && opts.onLine) opts.onLine(stream, partial[stream]);
      }
      if (exit.code === null && !exit.signal) {
        finish(() => reject(new SshError('the connection closed before the command finished')));
        return;
      }
      finish(() => resolve({ ...exit, stdout, stderr }));
    });
    if (input) {
      input.on('error', (err) => {
        channel.close();
        finish(() => reject(err));
      });
      input.pipe(channel);
    } else channel.end();
  });
}
