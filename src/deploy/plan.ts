/**
 * What a deploy will do to one environment: which servers to create (from which version, and why
 * that version), which to destroy (and why), which to keep. Pure: it reads the config, the
 * versions and the servers that the provider reports (by their labels), and changes nothing, so
 * `--plan` is this function printed.
 */
import type { DeploymentImageConfig } from '../config/schema.js';
import { LABELS, type ImageVersion, type Server } from '../providers/types.js';
import { chooseVersions, type ReleaseReason, type ReleaseTarget } from './release.js';

export type DeployMode = 'warm' | 'cold';
export type DestroyReason = 'dead' | 'older version' | 'other version' | 'config changed' | 'scaled down';

export interface PlannedServer {
  name: string;
  image: string;
  version: ImageVersion;
  /** The runtime-config label, if any. */
  config?: string;
}

export interface ImagePlan {
  image: string;
  /** The version servers of this image should run. */
  target?: ImageVersion;
  /** Why that version: latest, from another environment, pinned, rollback. */
  reason?: ReleaseReason;
  /** The runtime-config label new servers get (a keyed hash; undefined when there is no runtime config). */
  config?: string;
  create: PlannedServer[];
  destroy: Server[];
  /** Why each destroyed server goes, by name. */
  destroyWhy: Record<string, DestroyReason>;
  keep: Server[];
  /** Why this image is left alone, when it is. */
  note?: string;
}

export interface EnvironmentPlan {
  environment: string;
  images: ImagePlan[];
  /** Images that have no version to deploy: a cold deploy refuses; a warm one reports. */
  missing: string[];
}

export function serverName(image: string, index: number, environment: string): string {
  return `${image}${index}.${environment}`;
}

/** The index in `app3.staging`, or undefined for a name of another shape. */
export function serverIndex(name: string, image: string, environment: string): number | undefined {
  const m = new RegExp(`^${image}(\\d+)\\.${environment}$`).exec(name);
  return m ? Number(m[1]) : undefined;
}

export function planEnvironment(opts: {
  environment: string;
  deployment: Record<string, DeploymentImageConfig>;
  versions: ImageVersion[];
  /** Servers the provider reports; those of other environments are read only by promotion. */
  servers: Server[];
  mode: DeployMode;
  /** `--from ENV`: promote every image from there, whatever the config says. */
  from?: string;
  /** Versions chosen on the command line (pins, rollbacks), by image. */
  overrides?: Record<string, ReleaseTarget>;
  /** The runtime-config label each image's servers should carry (see runtime-config.ts). */
  configLabels?: Record<string, string | undefined>;
}): EnvironmentPlan {
  const { environment } = opts;
  const images: ImagePlan[] = [];
  const missing: string[] = [];
  const targets = chooseVersions(opts);
  for (const [image, wanted] of Object.entries(opts.deployment).sort(([a], [b]) => a.localeCompare(b))) {
    const chosen = targets[image];
    const target = chosen?.version;
    const config = opts.configLabels?.[image];
    const current = opts.servers
      .filter((s) => s.labels[LABELS.environment] === environment && s.labels[LABELS.image] === image)
      .sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
    if (opts.mode === 'warm' && wanted['cold-only'] && !opts.overrides?.[image]) {
      if (!target) missing.push(image);
      images.push({ image, target, reason: chosen?.reason, config, create: [], destroy: [], destroyWhy: {}, keep: current, note: 'cold-only: left alone by a warm deploy' });
      continue;
    }
    if (!target) {
      missing.push(image);
      images.push({ image, create: [], destroy: [], destroyWhy: {}, keep: current, note: 'no version to deploy' });
      continue;
    }
    // Dead servers are always replaced; in a cold deploy, servers are kept whatever they run.
    const destroyWhy: Record<string, DestroyReason> = {};
    const upToDate: Server[] = [];
    for (const s of current) {
      const why = s.state === 'dead' ? 'dead' : opts.mode === 'cold' ? undefined : outdated(s, target, config);
      if (why) destroyWhy[s.name] = why;
      else upToDate.push(s);
    }
    const keep = upToDate.slice(0, wanted.servers);
    for (const s of upToDate.slice(wanted.servers)) destroyWhy[s.name] = 'scaled down';
    const destroy = current.filter((s) => destroyWhy[s.name]);
    // Create-before-destroy: new servers take indices that no current server holds.
    const taken = new Set(current.map((s) => serverIndex(s.name, image, environment)).filter((i) => i !== undefined));
    const create: PlannedServer[] = [];
    for (let index = 1; keep.length + create.length < wanted.servers; index++) {
      if (!taken.has(index)) create.push({ name: serverName(image, index, environment), image, version: target, config });
    }
    images.push({ image, target, reason: chosen.reason, config, create, destroy, destroyWhy, keep });
  }
  return { environment, images, missing };
}

/** Why a live server must be replaced in a warm deploy, or undefined when it runs what it should. */
function outdated(server: Server, target: ImageVersion, config: string | undefined): DestroyReason | undefined {
  const version = server.labels[LABELS.version];
  if (version !== target.version) return version && version < target.version ? 'older version' : 'other version';
  // No label and no runtime config are the same thing: servers from before runtime config stay.
  if ((server.labels[LABELS.config] ?? '') !== (config ?? '')) return 'config changed';
  return undefined;
}

export function isEmptyPlan(plan: EnvironmentPlan): boolean {
  return plan.images.every((i) => !i.create.length && !i.destroy.length);
}
