/**
 * What a deploy will do to one environment: which servers to create (from which version), which
 * to destroy, which to keep. Pure: it reads the config, the versions and the servers that the
 * provider reports (by their labels), and changes nothing, so `--plan` is this function printed.
 */
import type { DeploymentImageConfig } from '../config/schema.js';
import { byNewest } from '../images/naming.js';
import { LABELS, type ImageVersion, type Server } from '../providers/types.js';

export type DeployMode = 'warm' | 'cold';

export interface PlannedServer {
  name: string;
  image: string;
  version: ImageVersion;
}

export interface ImagePlan {
  image: string;
  /** The version servers of this image should run. */
  target?: ImageVersion;
  create: PlannedServer[];
  destroy: Server[];
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
  servers: Server[];
  mode: DeployMode;
  /** Versions to deploy instead of the latest (rollback), by image. */
  pin?: Record<string, ImageVersion>;
}): EnvironmentPlan {
  const { environment } = opts;
  const images: ImagePlan[] = [];
  const missing: string[] = [];
  for (const [image, wanted] of Object.entries(opts.deployment).sort(([a], [b]) => a.localeCompare(b))) {
    const target =
      opts.pin?.[image] ?? opts.versions.filter((v) => v.image === image && v.status === 'available').sort(byNewest)[0];
    const current = opts.servers
      .filter((s) => s.labels[LABELS.environment] === environment && s.labels[LABELS.image] === image)
      .sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
    if (!target) {
      missing.push(image);
      images.push({ image, create: [], destroy: [], keep: current, note: 'no version to deploy' });
      continue;
    }
    if (opts.mode === 'warm' && wanted['cold-only']) {
      images.push({ image, target, create: [], destroy: [], keep: current, note: 'cold-only: left alone by a warm deploy' });
      continue;
    }
    // Dead servers are always replaced; in a cold deploy, servers are kept whatever they run.
    const alive = current.filter((s) => s.state !== 'dead');
    const dead = current.filter((s) => s.state === 'dead');
    const upToDate = alive.filter((s) => opts.mode === 'cold' || s.labels[LABELS.version] === target.version);
    const outdated = alive.filter((s) => !upToDate.includes(s));
    const keep = upToDate.slice(0, wanted.servers);
    const destroy = [...dead, ...outdated, ...upToDate.slice(wanted.servers)];
    // Create-before-destroy: new servers take indices that no current server holds.
    const taken = new Set(current.map((s) => serverIndex(s.name, image, environment)).filter((i) => i !== undefined));
    const create: PlannedServer[] = [];
    for (let index = 1; keep.length + create.length < wanted.servers; index++) {
      if (!taken.has(index)) create.push({ name: serverName(image, index, environment), image, version: target });
    }
    images.push({ image, target, create, destroy, keep });
  }
  return { environment, images, missing };
}

export function isEmptyPlan(plan: EnvironmentPlan): boolean {
  return plan.images.every((i) => !i.create.length && !i.destroy.length);
}
