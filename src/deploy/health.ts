/**
 * When a new server is healthy: SSH answers with the deploy key, its runtime config and deploy
 * scripts ran, then the image's health check (a command over SSH, an HTTP GET through the SSH
 * connection, or both) passed `passes` times in a row. Only then may it join an endpoint.
 */
import { throwIfAborted, UserFacingError } from '../core/errors.js';
import { scoped, type EventSink } from '../core/events.js';
import { sleep } from '../core/wait.js';
import type { DeploymentImageConfig } from '../config/schema.js';
import type { Machine } from '../providers/types.js';
import { waitForSsh, type SshSession } from '../ssh/client.js';
import { httpGetOverSsh } from '../ssh/http.js';
import { configureServer } from './configure.js';
import type { RuntimeConfig } from './runtime-config.js';

export type HealthCheck = NonNullable<DeploymentImageConfig['health-check']>;

export interface HealthOptions {
  privateKey: string;
  check?: HealthCheck;
  runtime?: RuntimeConfig;
  events: EventSink;
  signal: AbortSignal;
  sshTimeoutMs: number;
  scriptTimeoutMs: number;
  /** Pause between checks. */
  intervalMs?: number;
}

export async function waitHealthy(machine: Machine, opts: HealthOptions): Promise<void> {
  const started = performance.now();
  const { check } = opts;
  const events = scoped(opts.events, machine.name);
  events.emit({ type: 'step', step: 'health', message: check ? 'waiting for SSH and the health check' : 'waiting for SSH' });
  const ssh = await waitForSsh(machine.ssh, opts.privateKey, { timeoutMs: opts.sshTimeoutMs, signal: opts.signal, what: `SSH on ${machine.name}` });
  try {
    if (opts.runtime) await configureServer(ssh, opts.runtime, { server: machine.name, events, signal: opts.signal, scriptTimeoutMs: opts.scriptTimeoutMs });
    if (check) await passChecks(ssh, machine, check, opts);
  } finally {
    ssh.close();
  }
  events.emit({
    type: 'step-done',
    step: 'health',
    message: check ? `healthy (SSH and ${check.passes} health checks in a row)` : 'healthy (SSH answers)',
    durationMs: Math.round(performance.now() - started),
  });
}

/** Checks until `passes` in a row succeed, or the timeout passes (then the last failure is the message). */
async function passChecks(ssh: SshSession, machine: Machine, check: HealthCheck, opts: HealthOptions): Promise<void> {
  const deadline = performance.now() + check.timeout * 1000;
  let inRow = 0;
  for (let attempt = 1; ; attempt++) {
    const failure = await checkOnce(ssh, check, Math.max(1000, deadline - performance.now()), opts.signal);
    inRow = failure ? 0 : inRow + 1;
    if (inRow >= check.passes) return;
    if (performance.now() >= deadline) {
      throw new UserFacingError(
        `${machine.name} did not get healthy: the health check ${failure ? 'still failed' : `passed only ${inRow} times in a row of ${check.passes}`} after ${check.timeout} s (${attempt} tries${failure ? `; last: ${failure}` : ''})`,
        { hint: 'the old servers were left running; fix the image or the health-check and deploy again' },
      );
    }
    await sleep(Math.min(failure ? 2000 : (opts.intervalMs ?? 1000), Math.max(0, deadline - performance.now())), opts.signal);
  }
}

/** One round of the check: undefined when it passed, else what failed. */
export async function checkOnce(ssh: SshSession, check: HealthCheck, timeoutMs: number, signal: AbortSignal): Promise<string | undefined> {
  if (check.command) {
    const r = await ssh.exec(check.command, { signal, timeoutMs }).catch((err: Error) => ({ code: -1, stdout: '', stderr: err.message }));
    throwIfAborted(signal);
    if (r.code !== 0) return `\`${check.command}\`: ${(r.stderr || r.stdout).trim().split('\n').pop() || `status ${r.code}`}`;
  }
  if (check.http) {
    const { port, path, status } = check.http;
    const what = `GET ${path} on port ${port}`;
    try {
      const answer = await httpGetOverSsh(ssh, port, path, { timeoutMs: Math.min(timeoutMs, 10_000), signal });
      if (answer.status !== status) return `${what}: status ${answer.status}, not ${status}`;
    } catch (err) {
      if (signal.aborted) throw err;
      return `${what}: ${(err as Error).message}`;
    }
  }
  return undefined;
}
