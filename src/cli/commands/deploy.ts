/** `provisional deploy [ENV] [--cold] [--plan] [--from ENV] [--pin IMAGE@VERSION]`, and the engine `rollback` shares. */
import { applyPlan } from '../../deploy/apply.js';
import { environmentState, pickEnvironment } from '../../deploy/environment.js';
import { deployKeys, runtimeConfigKey } from '../../core/project-keys.js';
import { isEmptyPlan, planEnvironment, type DeployMode, type EnvironmentPlan } from '../../deploy/plan.js';
import { describeReason, resolvePins, type ReleaseTarget } from '../../deploy/release.js';
import { loadRuntimeConfig, runtimeConfigLabel, type RuntimeConfig } from '../../deploy/runtime-config.js';
import { ConfigError, UsageError, UserFacingError } from '../../core/errors.js';
import { DEFAULT_DRAIN_S, endpointProblems, imageEndpoint } from '../../deploy/endpoint.js';
import { describeEndpoint, endpointJson, endpointsJson } from '../endpoints.js';
import { acquireLock, lockPath } from '../../core/lock.js';
import type { EndpointStatus, ImageVersion, Provider, Server } from '../../providers/types.js';
import type { DeploymentImageConfig } from '../../config/schema.js';
import { LABELS } from '../../providers/types.js';
import { tee } from '../../core/events.js';
import { newRunId } from '../../core/journal.js';
import { openBuildLog } from '../build-log.js';
import { loadProject, openProvider, type CommandContext } from '../context.js';

export interface DeployOptions {
  cold?: boolean;
  plan?: boolean;
  from?: string;
  pin?: string[];
  parallel: number;
}

export function run(ctx: CommandContext, env: string | undefined, opts: DeployOptions): Promise<number> {
  return deploy(ctx, env, {
    mode: opts.cold ? 'cold' : 'warm',
    planOnly: !!opts.plan,
    parallel: opts.parallel,
    from: opts.from,
    overrides: (versions, _servers, deployment) => resolvePins(opts.pin ?? [], Object.keys(deployment), versions),
  });
}

export async function deploy(
  ctx: CommandContext,
  env: string | undefined,
  opts: {
    mode: DeployMode;
    planOnly: boolean;
    parallel: number;
    only?: string[];
    /** Rollback: act only on the images that `overrides` chose a version for. */
    onlyOverridden?: boolean;
    from?: string;
    /** Versions chosen on the command line (pins, rollback targets), by image. */
    overrides?: (versions: ImageVersion[], servers: Server[], deployment: Record<string, DeploymentImageConfig>) => Record<string, ReleaseTarget>;
  },
): Promise<number> {
  const config = await loadProject(ctx);
  const environment = pickEnvironment(config, env);
  if (opts.from !== undefined) pickEnvironment(config, opts.from);
  let deployment = Object.fromEntries(Object.entries(config.deployments[environment]!).filter(([image]) => !opts.only || opts.only.includes(image)));
  if (opts.only?.some((image) => !deployment[image])) {
    throw new UsageError(`${environment} deploys no image "${opts.only.find((image) => !deployment[image])}"`, `images here: ${Object.keys(config.deployments[environment]!).join(', ')}`);
  }
  const runtime: Record<string, RuntimeConfig> = {};
  const configLabels: Record<string, string | undefined> = {};
  const key = await runtimeConfigKey(config.project);
  for (const image of Object.keys(deployment)) {
    runtime[image] = await loadRuntimeConfig(config, environment, image);
    configLabels[image] = runtimeConfigLabel(runtime[image], key);
  }
  const lock = await acquireLock(lockPath(config.project, 'env', environment), `environment ${environment}`);
  let provider: Provider | undefined;
  try {
    provider = await openProvider(ctx, config);
    // Every environment's servers: promotion reads the source environment's.
    const { servers, versions } = await environmentState(provider, config, undefined, ctx.signal);
    const overrides = opts.overrides?.(versions, servers, deployment);
    if (opts.onlyOverridden) deployment = Object.fromEntries(Object.entries(deployment).filter(([image]) => overrides?.[image]));
    const plan = planEnvironment({ environment, deployment, versions, servers, mode: opts.mode, from: opts.from, overrides, configLabels });
    const missing = plan.missing.filter((image) => opts.mode === 'cold' || !deployment[image]!['cold-only']);
    if (missing.length) {
      throw new UserFacingError(`cannot deploy ${environment}: no version of ${missing.join(', ')} to deploy`, {
        hint: `build ${missing.length > 1 ? 'them' : 'it'} first: provisional image update`,
      });
    }
    // An endpoint another program's port would refuse: exit 2 before anything is created.
    const endpointIssues = await endpointProblems(provider, config.project, environment, deployment, ctx.signal);
    if (endpointIssues.length) throw new ConfigError(endpointIssues.map((p) => config.problem(['deployments', environment, p.image, 'endpoint'], p.message)));
    printPlan(ctx, plan, opts.planOnly, await plannedEndpoints(provider, config.project, environment, deployment, ctx.signal), servers);
    const withEndpoints = Object.values(deployment).some((d) => d.endpoint !== undefined);
    // With an endpoint, even a deploy with no server to replace makes sure it exists and has every server.
    if (opts.planOnly || (isEmptyPlan(plan) && !withEndpoints)) return 0;
    const keys = await deployKeys(config.project);
    // The deploy scripts' output is logged as build scripts' is (secrets redacted, mode 0600).
    const log = await openBuildLog(config.project, `deploy-${environment}`, newRunId(), ctx.redactor);
    const result = await applyPlan({ provider, project: config.project, plan, deployment, runtime, keys, parallel: opts.parallel, events: tee(ctx.reporter, log.sink), signal: ctx.signal })
      .catch((err: unknown) => {
        ctx.reporter.emit({ type: 'warn', message: `full log: ${log.path}` });
        throw err;
      })
      .finally(() => log.close());
    if (ctx.globals.json) {
      ctx.reporter.printJson({ type: 'deployed', environment, created: result.created.map((m) => m.name), destroyed: result.destroyed, images: releases(plan), endpoints: endpointsJson(result.endpoints, result.created) });
    } else {
      ctx.reporter.print(`${environment}: created ${result.created.length}, destroyed ${result.destroyed.length}`);
      for (const [image, status] of Object.entries(result.endpoints)) ctx.reporter.print(`  ${image}: ${describeEndpoint(status, servers.concat(result.created as Server[]))}`);
    }
    return 0;
  } finally {
    await provider?.close?.();
    await lock.release();
  }
}

/** The version each image goes to and why, as --json shows it. */
function releases(plan: EnvironmentPlan) {
  return plan.images.map((i) => ({ image: i.image, version: i.target?.version ?? null, reason: i.reason ? describeReason(i.reason) : null }));
}

/** Each image's endpoint as the plan shows it: as it is now (undefined: this deploy creates it), with the rollout's settings. */
interface PlannedEndpoint {
  status?: EndpointStatus;
  batch?: number;
  drainS: number;
}

async function plannedEndpoints(provider: Provider, project: string, environment: string, deployment: Record<string, DeploymentImageConfig>, signal: AbortSignal): Promise<Record<string, PlannedEndpoint>> {
  const out: Record<string, PlannedEndpoint> = {};
  for (const [image, config] of Object.entries(deployment)) {
    const endpoint = imageEndpoint(provider, project, environment, image, config);
    if (!endpoint) continue;
    const status = await endpoint.endpoints.status(endpoint.ref, endpoint.spec, signal);
    out[image] = { status, batch: config.rollout?.batch, drainS: config.drain ?? DEFAULT_DRAIN_S };
  }
  return out;
}

function printPlan(ctx: CommandContext, plan: EnvironmentPlan, planOnly: boolean, endpoints: Record<string, PlannedEndpoint>, servers: Server[]): void {
  const endpointLine = (e: PlannedEndpoint) =>
    `${e.status ? describeEndpoint(e.status, servers) : 'new (created by this deploy)'}; ${e.batch ? `replacing ${e.batch} at a time` : 'all replaced at once'}, old servers drained for up to ${e.drainS} s`;
  if (ctx.globals.json) {
    ctx.reporter.printJson({
      type: 'plan',
      environment: plan.environment,
      images: plan.images.map((i) => ({
        image: i.image,
        target: i.target?.version ?? null,
        reason: i.reason ? describeReason(i.reason) : null,
        create: i.create.map((s) => ({ name: s.name, version: s.version.version })),
        destroy: i.destroy.map((s) => ({ name: s.name, version: s.labels[LABELS.version] ?? null, why: i.destroyWhy[s.name] ?? null })),
        keep: i.keep.map((s) => ({ name: s.name, version: s.labels[LABELS.version] ?? null })),
        endpoint: endpoints[i.image] ? { now: endpoints[i.image]!.status ? endpointJson(endpoints[i.image]!.status!, servers) : null, batch: endpoints[i.image]!.batch ?? null, drain: endpoints[i.image]!.drainS } : null,
        note: i.note ?? null,
      })),
    });
    return;
  }
  const lines = [`${planOnly ? 'plan for' : 'deploying'} ${plan.environment}:`];
  for (const i of plan.images) {
    const parts = [
      ...i.create.map((s) => `+ ${s.name} (${s.version.version})`),
      ...i.destroy.map((s) => `- ${s.name} (${s.labels[LABELS.version] ?? '?'}, ${i.destroyWhy[s.name]})`),
      ...i.keep.map((s) => `= ${s.name} (${s.labels[LABELS.version] ?? '?'})`),
    ];
    const release = i.target && i.reason && !i.note ? `: ${i.target.version} (${describeReason(i.reason)})` : '';
    lines.push(`  ${i.image}${release}${i.note ? `: ${i.note}` : ''}`);
    lines.push(...parts.map((p) => `    ${p}`));
    if (endpoints[i.image]) lines.push(`    endpoint: ${endpointLine(endpoints[i.image]!)}`);
  }
  if (isEmptyPlan(plan)) lines.push('  nothing to do: every server runs the version and config it should');
  ctx.reporter.print(lines.join('\n'));
}
