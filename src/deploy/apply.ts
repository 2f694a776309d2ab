/**
 * Carries out an environment plan, create-before-destroy, the same way on every provider. Per
 * image, in batches of `rollout.batch` (default: all at once): launch the batch's new servers
 * (at most `--parallel` in launch at once, across images), wait until each is healthy (see
 * health.ts), attach them to the image's endpoint (created first if needed; an existing one takes
 * changed settings, such as the health check, only once the deploy succeeded), then detach as many old servers (no new
 * connections, drained for `drain` seconds). The endpoint never has fewer healthy members than
 * before the batch.
 *
 * Old servers that left are destroyed only once every batch of the image is done. If anything
 * fails or the user interrupts, the whole rollout is undone, newest first: old servers taken out
 * are attached again, every new server is detached (drained) and destroyed. The endpoint is left
 * as it was before the deploy, whichever batch failed.
 */
import { CleanupStack } from '../core/cleanup.js';
import { scoped, type EventSink } from '../core/events.js';
import type { DeploymentImageConfig } from '../config/schema.js';
import { LABELS, type LaunchRequest, type Machine, type Provider, type Server } from '../providers/types.js';
import { weightedSemaphore } from '../core/semaphore.js';
import { newRunId, RunJournal } from '../core/journal.js';
import type { EndpointStatus } from '../providers/types.js';
import type { EnvironmentPlan, ImagePlan, PlannedServer } from './plan.js';
import type { DeployKeys } from '../core/project-keys.js';
import type { RuntimeConfig } from './runtime-config.js';
import { waitHealthy } from './health.js';
import { attach, DEFAULT_DRAIN_S, detach, ensure, imageEndpoint, type ImageEndpoint } from './endpoint.js';

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
  /** Most servers in launch at once (launch calls of several machines count each). */
  parallel: number;
  events: EventSink;
  signal: AbortSignal;
  /** How long a new server may take to answer SSH. */
  sshTimeoutMs?: number;
  /** Pause between passing health checks (tests shorten it). */
  healthIntervalMs?: number;
}

export interface ApplyResult {
  created: Machine[];
  destroyed: string[];
  /** Each image's endpoint after the deploy, by image. */
  endpoints: Record<string, EndpointStatus>;
}

type Launch = <T>(weight: number, task: () => Promise<T>) => Promise<T>;

export async function applyPlan(opts: ApplyOptions): Promise<ApplyResult> {
  const journal = await RunJournal.open(opts.project, opts.provider.name, newRunId());
  const result: ApplyResult = { created: [], destroyed: [], endpoints: {} };
  const launchSlots = weightedSemaphore(Math.max(1, opts.parallel));
  // One image failing stops the others' rollouts too: each undoes its own rollout.
  const stop = new AbortController();
  const signal = AbortSignal.any([opts.signal, stop.signal]);
  try {
    const outcomes = await Promise.allSettled(
      opts.plan.images.map((image) =>
        rolloutImage(image, { ...opts, signal }, journal, launchSlots, result).catch((err: unknown) => {
          stop.abort();
          throw err;
        }),
      ),
    );
    if (outcomes.some((o) => o.status === 'rejected')) throw firstCause(outcomes);
  } finally {
    await journal.finish();
  }
  return result;
}

/** The failure that stopped the others (they end cancelled), or the interruption. */
function firstCause(outcomes: PromiseSettledResult<unknown>[]): unknown {
  const reasons = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected').map((o) => o.reason as unknown);
  return reasons.find((r) => !(r instanceof Error && r.name === 'CancelledError')) ?? reasons[0];
}

async function rolloutImage(image: ImagePlan, opts: ApplyOptions, journal: RunJournal, launchSlots: Launch, result: ApplyResult): Promise<void> {
  const { provider, signal } = opts;
  const config = opts.deployment[image.image]!;
  const endpoint = imageEndpoint(provider, opts.project, opts.plan.environment, image.image, config);
  const drainMs = (config.drain ?? DEFAULT_DRAIN_S) * 1000;
  const created = endpoint ? await ensureEndpoint(endpoint, image, journal, opts) : false;
  // Undoes the whole rollout of this image, newest first, if any batch fails.
  const undo = new CleanupStack();
  const ctx: BatchContext = { endpoint, drainMs, journal, launchSlots, result, opts, undo };
  // Old servers out of the endpoint, destroyed once every batch is in.
  const retired: Server[] = [];
  const journaled: string[] = [];
  try {
    // Old servers leave in this order: dead ones first (they serve nobody), then the oldest names.
    const old = [...image.destroy].sort((a, b) => Number(b.state === 'dead') - Number(a.state === 'dead'));
    const batchSize = Math.max(1, config.rollout?.batch ?? image.create.length);
    for (let i = 0; i < image.create.length; i += batchSize) {
      const batch = image.create.slice(i, i + batchSize);
      // The last batch takes every old server left (a scale-down has more old than new).
      const leaving = i + batchSize >= image.create.length ? old.splice(0) : old.splice(0, batch.length);
      for (const server of batch) {
        await journal.add({ kind: 'machine', name: server.name, labels: launchRequest(server, opts).labels });
        journaled.push(server.name);
      }
      await replaceBatch(batch, leaving, ctx);
      retired.push(...leaving);
    }
    // Nothing new (scale-down, dead servers only): the old still leave through the endpoint.
    if (old.length) {
      const leaving = old.splice(0);
      await replaceBatch([], leaving, ctx);
      retired.push(...leaving);
    }
  } catch (err) {
    if (undo.size) {
      opts.events.emit({ type: 'warn', message: 'the deploy failed: removing the new servers; the old ones keep running' });
      const { failed } = await undo.unwind(opts.events);
      if (failed.length) throw err; // the journal keeps naming them, for `cleanup`
    }
    for (const name of journaled) await journal.remove('machine', name);
    // An endpoint this deploy created, and that nothing joined, goes with the deploy.
    if (endpoint && created) await removeIfEmpty(endpoint, journal, opts.events);
    throw err;
  }
  // The new servers are the environment's now, no longer a deploy's leftovers.
  for (const name of journaled) await journal.remove('machine', name);
  for (const old of retired) {
    scoped(opts.events, old.name).emit({ type: 'info', message: `destroying ${old.name} (${old.labels[LABELS.version] ?? 'unknown version'})` });
    if (endpoint && old.state === 'dead') await detach(endpoint, [old], 0, signal);
    await provider.destroyMachine(old, signal);
    result.destroyed.push(old.name);
  }
  if (endpoint) {
    if (created) await journal.remove('endpoint', endpointName(endpoint));
    // Every server passed the image's health check now: the endpoint takes it (and any other change).
    else await ensure(endpoint, signal);
    const status = await endpoint.endpoints.status(endpoint.ref, endpoint.spec, signal);
    if (status) result.endpoints[image.image] = status;
  }
}

const endpointName = (endpoint: ImageEndpoint) => `${endpoint.ref.environment}/${endpoint.ref.image}`;

async function removeIfEmpty(endpoint: ImageEndpoint, journal: RunJournal, events: EventSink): Promise<void> {
  const signal = AbortSignal.timeout(120_000);
  try {
    const status = await endpoint.endpoints.status(endpoint.ref, endpoint.spec, signal);
    if (status?.members.length) return journal.remove('endpoint', endpointName(endpoint));
    events.emit({ type: 'info', message: `cleaning up: endpoint ${endpointName(endpoint)}, created by this deploy` });
    await endpoint.endpoints.remove(endpoint.ref, endpoint.spec, signal);
    await journal.remove('endpoint', endpointName(endpoint));
  } catch (err) {
    events.emit({ type: 'warn', message: `could not remove endpoint ${endpointName(endpoint)}: ${(err as Error).message} (provisional cleanup will)` });
  }
}

/**
 * Create the endpoint if needed (journaled until the deploy succeeds, so that a killed first
 * deploy's endpoint is found by `cleanup`), and attach kept servers that are not members.
 * Returns whether this deploy created it.
 */
async function ensureEndpoint(endpoint: ImageEndpoint, image: ImagePlan, journal: RunJournal, opts: ApplyOptions): Promise<boolean> {
  const before = await endpoint.endpoints.status(endpoint.ref, endpoint.spec, opts.signal);
  if (!before) await journal.add({ kind: 'endpoint', name: endpointName(endpoint), labels: { [LABELS.environment]: endpoint.ref.environment, [LABELS.image]: endpoint.ref.image } });
  // An existing endpoint keeps its settings (its health check) until the new servers passed the
  // new ones: a changed check applied first could take every old server out (see rolloutImage).
  const status = before ?? (await ensure(endpoint, opts.signal));
  scoped(opts.events, image.image).emit({ type: 'info', message: `endpoint ${status.kind} ${status.address ? `at ${status.address}` : '(its address comes with the first server that joins)'}${before ? '' : ' (new)'}` });
  // An endpoint added to an environment whose servers already run: the healthy ones join it.
  const members = new Set(status.members.map((m) => m.machineId));
  await attach(endpoint, image.keep.filter((s) => s.state === 'running' && !members.has(s.id)), opts.signal);
  return !before;
}

interface BatchContext {
  endpoint?: ImageEndpoint;
  drainMs: number;
  journal: RunJournal;
  launchSlots: Launch;
  result: ApplyResult;
  opts: ApplyOptions;
  /** The image's rollout undo steps: each batch adds its own. */
  undo: CleanupStack;
}

/** One batch: its new servers healthy and in, then as many old ones out (drained, not yet destroyed). */
async function replaceBatch(batch: PlannedServer[], leaving: Server[], ctx: BatchContext): Promise<void> {
  const { endpoint, drainMs, opts, undo } = ctx;
  const machines = await launchHealthy(batch, undo, ctx);
  if (!endpoint) return;
  if (machines.length) {
    undo.defer(`new members ${machines.map((m) => m.name).join(', ')}`, (s) => detach(endpoint, machines, drainMs, s));
    await attach(endpoint, machines, opts.signal);
  }
  const live = leaving.filter((s) => s.state !== 'dead');
  if (live.length) {
    undo.defer(`old members ${live.map((m) => m.name).join(', ')} back in the endpoint`, (s) => attach(endpoint, live, s));
    for (const s of live) scoped(opts.events, s.name).emit({ type: 'info', message: `leaving the endpoint (drained for up to ${drainMs / 1000} s)` });
    await detach(endpoint, live, drainMs, opts.signal);
  }
}

/** Launch in calls of at most `--parallel` machines (each holding that many launch slots), and wait until each is healthy. */
async function launchHealthy(batch: PlannedServer[], cleanup: CleanupStack, ctx: BatchContext): Promise<Machine[]> {
  const { opts } = ctx;
  const per = Math.max(1, opts.parallel);
  const calls: PlannedServer[][] = [];
  for (let i = 0; i < batch.length; i += per) calls.push(batch.slice(i, i + per));
  const healthy = await Promise.allSettled(
    calls.map(async (call) => {
      const machines = await ctx.launchSlots(call.length, async () => {
        for (const server of call) scoped(opts.events, server.name).emit({ type: 'step', step: 'launch', message: `creating from ${server.version.version}` });
        return opts.provider.launchMachines(call.map((server) => launchRequest(server, opts)), opts.signal);
      });
      for (const machine of machines) {
        ctx.result.created.push(machine);
        cleanup.defer(`new server ${machine.name}`, (s) => opts.provider.destroyMachine(machine, s));
      }
      await Promise.all(
        machines.map((machine, i) =>
          waitHealthy(machine, {
            privateKey: opts.keys.privateKey,
            check: opts.deployment[call[i]!.image]!['health-check'],
            runtime: opts.runtime[call[i]!.image],
            events: opts.events,
            signal: opts.signal,
            sshTimeoutMs: opts.sshTimeoutMs ?? 300_000,
            scriptTimeoutMs: opts.scriptTimeoutMs ?? 1_800_000,
            intervalMs: opts.healthIntervalMs,
          }),
        ),
      );
      return machines;
    }),
  );
  const failed = healthy.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    // Removed ones are not the deploy's result.
    ctx.result.created = ctx.result.created.filter((m) => !batch.some((s) => s.name === m.name));
    throw failed.reason;
  }
  return healthy.flatMap((r) => (r as PromiseFulfilledResult<Machine[]>).value);
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
