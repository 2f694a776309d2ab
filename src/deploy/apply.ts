/**
 * Carries out an environment plan, create-before-destroy: new servers start in parallel (bounded),
 * each must get healthy (SSH answers, its runtime config and deploy scripts, then the health
 * check), and only then are the old ones destroyed. If anything fails or the user interrupts, the new servers are removed and the old
 * ones keep serving.
 */
import { CleanupStack } from '../core/cleanup.js';
import { UserFacingError } from '../core/errors.js';
import { scoped, type EventSink } from '../core/events.js';
import { sleep } from '../core/wait.js';
import type { DeploymentImageConfig } from '../config/schema.js';
import { LABELS, type LaunchRequest, type Machine, type Provider } from '../providers/types.js';
import { waitForSsh } from '../ssh/client.js';
import { semaphore } from '../core/semaphore.js';
import { newRunId, RunJournal } from '../core/journal.js';
import type { EnvironmentPlan, PlannedServer } from './plan.js';
import type { DeployKeys } from './keys.js';
import { configureServer } from './configure.js';
import type { RuntimeConfig } from './runtime-config.js';

export interface ApplyOptions {
  provider: Provider;
  project: string;
  plan: EnvironmentPlan;
  deployment: Record<string, DeploymentImageConfig>;
  keys: DeployKeys;
  /** Each image's runtime config (env values, deploy scripts) for this environment. */
  runtime: Record<string, RuntimeConfig>;
  /** How long one deploy script may run. */
  scriptTimeoutMs?: number;
  parallel: number;
  events: EventSink;
  signal: AbortSignal;
  /** How long a new server may take to answer SSH. */
  sshTimeoutMs?: number;
}

export interface ApplyResult {
  created: Machine[];
  destroyed: string[];
}

export async function applyPlan(opts: ApplyOptions): Promise<ApplyResult> {
  const { provider, plan, signal } = opts;
  const cleanup = new CleanupStack();
  const created: Machine[] = [];
  const limit = semaphore(Math.max(1, opts.parallel));
  const toCreate = plan.images.flatMap((i) => i.create);
  const journal = await RunJournal.open(opts.project, provider.name, newRunId());
  for (const server of toCreate) await journal.add({ kind: 'machine', name: server.name, labels: launchRequest(server, opts).labels });
  try {
    const started = performance.now();
    let machines: Machine[];
    if (provider.launchMachines && toCreate.length) {
      // The provider batches: one call for all, and either all start or none is left.
      toCreate.forEach((server) => scoped(opts.events, server.name).emit({ type: 'step', step: 'launch', message: `creating from ${server.version.version}` }));
      machines = await provider.launchMachines(toCreate.map((server) => launchRequest(server, opts)), signal);
      for (const machine of machines) {
        created.push(machine);
        cleanup.defer(`new server ${machine.name}`, (s) => provider.destroyMachine(machine, s));
      }
    } else {
      const launched = await Promise.allSettled(
        toCreate.map((server) =>
          limit(async () => {
            scoped(opts.events, server.name).emit({ type: 'step', step: 'launch', message: `creating from ${server.version.version}` });
            const machine = await provider.launchMachine(launchRequest(server, opts), signal);
            created.push(machine);
            cleanup.defer(`new server ${machine.name}`, (s) => provider.destroyMachine(machine, s));
            return machine;
          }),
        ),
      );
      const failed = launched.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      machines = created;
    }
    const healthy = await Promise.allSettled(
      machines.map((machine) => {
        const server = toCreate.find((s) => s.name === machine.name)!;
        return waitHealthy(machine, server, opts, started);
      }),
    );
    const unhealthy = healthy.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (unhealthy) throw unhealthy.reason;
  } catch (err) {
    let failed: string[] = [];
    if (cleanup.size) {
      opts.events.emit({ type: 'warn', message: 'the deploy failed: removing the new servers; the old ones keep running' });
      ({ failed } = await cleanup.unwind(opts.events));
    }
    if (!failed.length) for (const server of toCreate) await journal.remove('machine', server.name);
    await journal.finish();
    throw err;
  }
  // The new servers are the environment's now, no longer a deploy's leftovers.
  for (const server of toCreate) await journal.remove('machine', server.name);
  await journal.finish();
  // Every new server is healthy: now the old ones can go.
  const destroyed: string[] = [];
  for (const image of plan.images) {
    for (const old of image.destroy) {
      const events = scoped(opts.events, old.name);
      events.emit({ type: 'info', message: `destroying ${old.name} (${old.labels[LABELS.version] ?? 'unknown version'})` });
      await provider.destroyMachine(old, signal);
      destroyed.push(old.name);
    }
  }
  return { created, destroyed };
}

function launchRequest(server: PlannedServer, opts: ApplyOptions): LaunchRequest {
  const config = opts.deployment[server.image]!;
  const index = Number(/(\d+)\.[^.]+$/.exec(server.name)?.[1] ?? 1);
  return {
    name: server.name,
    source: { kind: 'version', version: server.version },
    authorizedKey: opts.keys.authorizedKeys,
    labels: {
      [LABELS.project]: opts.project,
      [LABELS.role]: 'server',
      [LABELS.environment]: opts.plan.environment,
      [LABELS.image]: server.image,
      [LABELS.version]: server.version.version,
      ...(server.config ? { [LABELS.config]: server.config } : {}),
    },
    options: {
      size: config.size,
      region: config.region,
      // Several servers of one image cannot share a host port: server N takes HOST+N-1.
      ports: config.ports?.map((p) => {
        const [host, guest] = p.split(':').map(Number);
        return `${host! + index - 1}:${guest}`;
      }),
    },
  };
}

async function waitHealthy(machine: Machine, server: PlannedServer, opts: ApplyOptions, started: number): Promise<void> {
  const config: DeploymentImageConfig = opts.deployment[server.image]!;
  const events = scoped(opts.events, machine.name);
  events.emit({ type: 'step', step: 'health', message: config['health-check'] ? 'waiting for SSH and the health check' : 'waiting for SSH' });
  const ssh = await waitForSsh(machine.ssh, opts.keys.privateKey, {
    timeoutMs: opts.sshTimeoutMs ?? 300_000,
    signal: opts.signal,
    what: `SSH on ${machine.name}`,
  });
  try {
    const runtime = opts.runtime[server.image];
    if (runtime) await configureServer(ssh, runtime, { server: machine.name, events, signal: opts.signal, scriptTimeoutMs: opts.scriptTimeoutMs ?? 1_800_000 });
    const check = config['health-check'];
    const deadline = performance.now() + (check?.timeout ?? 0) * 1000;
    for (let attempt = 1; check; attempt++) {
      const r = await ssh.exec(check.command, { signal: opts.signal, timeoutMs: Math.max(1000, deadline - performance.now()) }).catch((err: Error) => ({
        code: -1,
        stdout: '',
        stderr: err.message,
      }));
      if (r.code === 0) break;
      if (performance.now() >= deadline) {
        throw new UserFacingError(
          `${machine.name} did not get healthy: \`${check.command}\` still failed after ${check.timeout} s (${attempt} tries; last: ${(r.stderr || r.stdout).trim().split('\n').pop() || `status ${r.code}`})`,
          { hint: 'the old servers were left running; fix the image or the health-check and deploy again' },
        );
      }
      await sleep(Math.min(2000, Math.max(0, deadline - performance.now())), opts.signal);
    }
  } finally {
    ssh.close();
  }
  events.emit({
    type: 'step-done',
    step: 'health',
    message: config['health-check'] ? 'healthy (SSH and health check)' : 'healthy (SSH answers)',
    durationMs: Math.round(performance.now() - started),
  });
}
