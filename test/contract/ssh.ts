/**
 * Just enough SSH for the contract suite, straight on ssh2 (it tests providers, not src/ssh).
 */
import ssh2, { type Client } from 'ssh2';
import type { SshEndpoint } from '../../src/providers/types.js';

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function sshConnect(endpoint: SshEndpoint, privateKey: string, readyTimeoutMs = 15_000): Promise<Client> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    client
      .on('ready', () => resolve(client))
      .on('error', (err) => {
        client.end();
        reject(err);
      })
      .connect({ host: endpoint.host, port: endpoint.port, username: endpoint.user, privateKey, readyTimeout: readyTimeoutMs });
  });
}

export function sshExec(client: Client, command: string, timeoutMs = 60_000): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`"${command}" did not finish within ${timeoutMs} ms`)), timeoutMs);
    client.exec(command, (err, channel) => {
      if (err) {
        clearTimeout(timer);
        return reject(err);
      }
      let stdout = '';
      let stderr = '';
      let code: number | null = null;
      channel.on('data', (d: Buffer) => (stdout += d.toString()));
      channel.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      channel.on('exit', (c: number | null) => (code = c));
      channel.on('close', () => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  });
}

/**
 * Polls until SSH accepts the key and runs a command; throws after `timeoutMs` with the last error.
 * Each attempt is short: QEMU's user-mode network accepts a forwarded connection at once, even
 * while the guest is still booting, and such an attempt only ends at its own timeout.
 */
export async function waitForSsh(endpoint: SshEndpoint, privateKey: string, timeoutMs: number, attemptMs = 5000): Promise<Client> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const client = await sshConnect(endpoint, privateKey, attemptMs);
      const probe = await sshExec(client, 'true', 30_000);
      if (probe.code === 0) return client;
      client.end();
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`SSH on ${endpoint.host}:${endpoint.port} did not answer within ${timeoutMs / 1000} s: ${(last as Error)?.message ?? 'no answer'}`);
}

/** Ask the guest to power off; the connection usually drops before an answer comes. */
export async function powerOff(client: Client): Promise<void> {
  await sshExec(client, 'systemctl poweroff --no-block || poweroff', 10_000).catch(() => undefined);
  client.end();
}
