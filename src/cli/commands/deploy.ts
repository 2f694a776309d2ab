/** `provisional deploy [ENV] [--cold] [--plan]`, and the engine `rollback` shares. */
import { applyPlan } from '../../deploy/apply.js';
import { environmentState, pickEnvironment } from '../../deploy/environment.js';
import { deployKeys } from '../../deploy/keys.js';
import { isEmptyPlan, planEnvironment, type DeployMode, type EnvironmentPlan } from '../../deploy/plan.js';
import { UserFacingError } from '../../core/errors.js';
import { acquireLock, lockPath } from '../../core/lock.js';
import type { ImageVersion, Server } from '../../providers/types.js';
import type { DeploymentImageConfig } from '../../config/schema.js';
import { LABELS } from '../../providers/types.js';
import { loadProject, openProvider, type CommandContext } from '../context.js';

export interface DeployOptions {
  cold?: boolean;
  plan?: boolean;
  parallel: number;
}

export function run(ctx: CommandContext, env: string | undefined, opts: DeployOptions): Promise<number> {
  return deploy(ctx, env, { mode: opts.cold ? 'cold' : 'warm', planOnly: !!opts.plan, parallel: opts.parallel });
}

export async function deploy(
  ctx: CommandContext,
  env: string | undefined,
  opts: { mode: DeployMode; planOnly: boolean; parallel: number; only?: string[]; pin?: (versions: ImageVersion[], servers: Server[], deployment: Record<string, DeploymentImageConfig>) => Record<string, ImageVersion> },
): Promise<number> {
  const config = await loadProject(ctx);
  const environment = pickEnvironment(config, env);
  const lock = await acquireLock(lockPath(config.project, 'env', environment), `environment ${environment}`);
  const provider = await openProvider(ctx, config);
  try {
    const { servers, versions } = await environmentState(provider, config, environment, ctx.signal);
    const deployment = Object.fromEntries(
      Object.entries(config.deployments[environment]!).filter(([image]) => !opts.only || opts.only.includes(image)),
    );
    const plan = planEnvironment({ environment, deployment, versions, servers, mode: opts.mode, pin: opts.pin?.(versions, servers, deployment) });
    const missing = plan.missing.filter((image) => opts.mode === 'cold' || !deployment[image]!['cold-only']);
    if (missing.length) {
      throw new UserFacingError(`cannot deploy ${environment}: no version of ${missing.join(', ')} to deploy`, {
        hint: `build ${missing.length > 1 ? 'them' : 'it'} first: provisional image update`,
      });
    }
    printPlan(ctx, plan, opts.planOnly);
    if (opts.planOnly || isEmptyPlan(plan)) return 0;
    const keys = await deployKeys(config.project);
    const result = await applyPlan({ provider, project: config.project, plan, deployment, keys, parallel: opts.parallel, events: ctx.reporter, signal: ctx.signal });
    if (ctx.globals.json) ctx.reporter.printJson({ type: 'deployed', environment, created: result.created.map((m) => m.name), destroyed: result.destroyed });
    else ctx.reporter.print(`${environment}: created ${result.created.length}, destroyed ${result.destroyed.length}`);
    return 0;
  } finally {
    await provider.close?.();
    await lock.release();
  }
}

function printPlan(ctx: CommandContext, plan: EnvironmentPlan, planOnly: boolean): void {
  if (ctx.globals.json) {
    ctx.reporter.printJson({
      type: 'plan',
      environment: plan.environment,
      images: plan.images.map((i) => ({
        image: i.image,
        target: i.target?.version ?? null,
        create: i.create.map((s) => ({ name: s.name, version: s.version.version })),
        destroy: i.destroy.map((s) => ({ name: s.name, version: s.labels[LABELS.version] ?? null })),
        keep: i.keep.map((s) => ({ name: s.name, version: s.labels[LABELS.version] ?? null })),
        note: i.note ?? null,
      })),
    });
    return;
  }
  const lines = [`${planOnly ? 'plan for' : 'deploying'} ${plan.environment}:`];
  for (const i of plan.images) {
    const parts = [
      ...i.create.map((s) => `+ ${s.name} (${s.version.version})`),
      ...i.destroy.map((s) => `- ${s.name} (${s.labels[LABELS.version] ?? '?'}${s.state === 'dead' ? ', dead' : ''})`),
      ...i.keep.map((s) => `= ${s.name} (${s.labels[LABELS.version] ?? '?'})`),
    ];
    lines.push(`  ${i.image}${i.note ? `: ${i.note}` : ''}`);
    lines.push(...parts.map((p) => `    ${p}`));
  }
  if (isEmptyPlan(plan)) lines.push('  nothing to do: every server runs the version it should');
  ctx.reporter.print(lines.join('\n'));
}
