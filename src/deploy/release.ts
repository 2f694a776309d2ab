/**
 * Which version each image of an environment should run, and why: pinned on the command line, a
 * rollback, promoted from another environment (`from:` or `--from`), or the latest. Pure: it reads
 * the config, the versions and the servers the provider reports, so that `--plan` can show it and
 * unit tests can pin every rule. A choice that cannot be made safely is refused (exit 2), never
 * guessed: production must run what staging tested.
 */
import { UsageError } from '../core/errors.js';
import type { DeploymentImageConfig } from '../config/schema.js';
import { choicesHint, latestUsable, requireUsable, rollbackTarget } from '../images/choice.js';
import { parseImageRef } from '../images/naming.js';
import { LABELS, type ImageVersion, type Server } from '../providers/types.js';

export type ReleaseReason =
  | { kind: 'latest' }
  | { kind: 'from'; environment: string }
  | { kind: 'pinned' }
  | { kind: 'rollback'; running: string };

export interface ReleaseTarget {
  version: ImageVersion;
  reason: ReleaseReason;
}

export function describeReason(reason: ReleaseReason): string {
  switch (reason.kind) {
    case 'latest':
      return 'latest';
    case 'from':
      return `from ${reason.environment}`;
    case 'pinned':
      return 'pinned';
    case 'rollback':
      return `rollback from ${reason.running}`;
  }
}

const serversOf = (servers: Server[], environment: string, image?: string) =>
  servers.filter((s) => s.labels[LABELS.environment] === environment && (!image || s.labels[LABELS.image] === image));

/**
 * The version of each image: `overrides` (pins, rollbacks) first, then `from` (the command line's
 * `--from`, else the config's `from:`), else the latest available. Images a warm deploy leaves
 * alone (cold-only) are not promoted, so an empty source cannot block an unrelated deploy.
 */
export function chooseVersions(opts: {
  environment: string;
  deployment: Record<string, DeploymentImageConfig>;
  versions: ImageVersion[];
  /** Servers of every environment of the project: promotion reads the source's. */
  servers: Server[];
  mode: 'warm' | 'cold';
  from?: string;
  overrides?: Record<string, ReleaseTarget>;
}): Record<string, ReleaseTarget | undefined> {
  const targets: Record<string, ReleaseTarget | undefined> = {};
  for (const [image, wanted] of Object.entries(opts.deployment)) {
    const override = opts.overrides?.[image];
    const source = opts.from ?? wanted.from;
    if (override) targets[image] = override;
    else if (source && !(opts.mode === 'warm' && wanted['cold-only'])) targets[image] = promoted(image, source, opts.environment, opts.versions, opts.servers);
    else {
      // Never a version being tested or revoked (images/choice.ts).
      const latest = latestUsable(opts.versions, image).version;
      targets[image] = latest && { version: latest, reason: { kind: 'latest' } };
    }
  }
  return targets;
}

/** The one version that every server of `image` in `source` runs; refused unless that is unambiguous. */
function promoted(image: string, source: string, environment: string, versions: ImageVersion[], servers: Server[]): ReleaseTarget {
  const what = `cannot deploy ${image} to ${environment} from ${source}`;
  if (source === environment) throw new UsageError(`${what}: an environment cannot take its versions from itself`, 'name another environment with --from');
  const running = serversOf(servers, source, image).sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
  if (!running.length) {
    throw new UsageError(`${what}: ${source} has no servers of ${image}`, `deploy ${source} first (provisional deploy ${source}), or choose a version: --pin ${image}@VERSION`);
  }
  const notRunning = running.filter((s) => s.state !== 'running');
  if (notRunning.length) {
    throw new UsageError(
      `${what}: servers of ${image} in ${source} are not running (${notRunning.map((s) => `${s.name}: ${s.state}`).join(', ')})`,
      `deploy ${source} again so that every server is healthy (provisional deploy ${source}), then promote`,
    );
  }
  const onVersion = new Map<string, string[]>();
  for (const s of running) {
    const v = s.labels[LABELS.version] ?? '(no version label)';
    onVersion.set(v, [...(onVersion.get(v) ?? []), s.name]);
  }
  if (onVersion.size > 1) {
    throw new UsageError(
      `${what}: servers of ${image} in ${source} run ${onVersion.size} versions (${[...onVersion].map(([v, names]) => `${v} on ${names.join(', ')}`).join('; ')}): a deploy there is in progress or half done`,
      `finish the deploy of ${source} (provisional deploy ${source}), then promote; or choose a version: --pin ${image}@VERSION`,
    );
  }
  const [name] = onVersion.keys();
  const found = versions.find((v) => v.image === image && v.version === name);
  if (!found) throw new UsageError(`${what}: ${source} runs ${name}, which is not an available version of ${image}`, `choose a version: --pin ${image}@VERSION`);
  // A revoked version is never handed over, even though the source still runs it.
  const version = requireUsable(found, `${what}: ${source} runs ${name}, which cannot be promoted`, image, versions);
  return { version, reason: { kind: 'from', environment: source } };
}

/** `--pin IMAGE@VERSION` (VERSION the full name or the stamp): exactly that version, or exit 2. */
export function resolvePins(refs: string[], images: string[], versions: ImageVersion[]): Record<string, ReleaseTarget> {
  const pins: Record<string, ReleaseTarget> = {};
  for (const ref of refs) {
    const { image, version } = parseImageRef(ref);
    if (!version) throw new UsageError(`--pin ${ref}: name a version`, `--pin ${image}@VERSION (the full name or just the stamp, as \`image list\` shows)`);
    if (!images.includes(image)) throw new UsageError(`--pin ${ref}: this environment deploys no image "${image}"`, `images here: ${images.join(', ') || '(none)'}`);
    if (pins[image]) throw new UsageError(`--pin ${ref}: ${image} is pinned twice`, 'give one --pin per image');
    const found = versions.find((v) => v.version === version);
    if (!found || found.image !== image) throw new UsageError(`--pin ${ref}: ${version} is not a version of ${image}`, choicesHint(image, versions));
    pins[image] = { version: requireUsable(found, `--pin ${ref}`, image, versions), reason: { kind: 'pinned' } };
  }
  return pins;
}

/**
 * Rollback: for IMAGE, or every image with servers in `environment` (cold-only ones only when
 * named), the version just before the newest one running, or `to`. The environment's current
 * runtime config comes with it, as with any deploy; no other environment is touched.
 */
export function rollbackTargets(opts: {
  environment: string;
  image?: string;
  to?: string;
  deployment: Record<string, DeploymentImageConfig>;
  versions: ImageVersion[];
  servers: Server[];
}): Record<string, ReleaseTarget> {
  const { environment, image } = opts;
  if (opts.to && !image) throw new UsageError('--to names a version of one image: give the IMAGE too', 'provisional rollback ENV IMAGE --to VERSION');
  const eligible = (name: string) => !!opts.deployment[name] && (name === image || !opts.deployment[name]!['cold-only']);
  const running = serversOf(opts.servers, environment, image).filter((s) => eligible(s.labels[LABELS.image]!));
  const images = image ? [image] : [...new Set(running.map((s) => s.labels[LABELS.image]!))].sort();
  if (!images.length) throw new UsageError(`no servers run in ${environment}: nothing to roll back`);
  const targets: Record<string, ReleaseTarget> = {};
  for (const name of images) {
    const current = running.filter((s) => s.labels[LABELS.image] === name).map((s) => s.labels[LABELS.version]!).sort().pop();
    if (opts.to) {
      const wanted = parseImageRef(`${name}@${opts.to}`).version;
      const found = opts.versions.find((v) => v.image === name && v.version === wanted);
      if (!found) throw new UsageError(`no version ${wanted} of ${name}`, choicesHint(name, opts.versions));
      targets[name] = { version: requireUsable(found, `--to ${opts.to}`, name, opts.versions), reason: { kind: 'rollback', running: current ?? 'nothing' } };
      continue;
    }
    if (!current) throw new UsageError(`no servers of ${name} run in ${environment}: nothing to roll back`);
    const previous = rollbackTarget(opts.versions, name, current);
    if (!previous) throw new UsageError(`${name} in ${environment} runs ${current}, and there is no older version to roll back to (revoked ones and ones being tested do not count)`);
    targets[name] = { version: previous, reason: { kind: 'rollback', running: current } };
  }
  return targets;
}
