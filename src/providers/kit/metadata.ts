/**
 * Kit: one schema and one codec for a version's metadata (ImageVersionMetadata, with the project)
 * wherever a cloud lets us keep it:
 *
 *   metadataToLabels(meta, project) -> { 'provisional-version': ..., ... }   tags / labels
 *   metadataFromLabels(labels, project) -> meta | undefined                 (not ours, or malformed)
 *   metadataToDescription(meta, project) -> 'provisional:{...}'              a free-text field
 *   metadataFromDescription(text, project) -> meta | undefined
 *   patchMetadata(meta, patch) -> meta        the marks (testing, revoked) set or lifted
 *   labelChanges(before, after) -> { set, remove }   what CreateTags/DeleteTags must do
 *
 * Both directions go through `versionMetadataSchema`, so a version a provider lists is always
 * well-formed, and a parent is parsed by images/naming.ts, the one parser of version names.
 * Label values here are free text (EC2 tags); a cloud with stricter label values (Hetzner: 63
 * characters of [A-Za-z0-9._-]) keeps the metadata in a description instead.
 *
 * The base id and the provenance are optional, so that versions built before they were recorded
 * still parse; a malformed provenance is dropped, never the version. As tags, the provenance is
 * JSON cut into values of at most 256 characters (EC2's limit) under `provisional-provenance`,
 * `provisional-provenance-2`, ...: at most PROVENANCE_TAGS of them (EC2 allows 50 tags a
 * resource), the longest script and test lists shortened to fit.
 */
import { z } from 'zod';
import { parseVersionName } from '../../images/naming.js';
import { LABELS, type ImageVersionMetadata, type Provenance, type VersionMetadataPatch } from '../types.js';

const provenanceSchema = z.object({
  commit: z.string().optional(),
  dirty: z.boolean().optional(),
  builderSize: z.string().optional(),
  scripts: z.array(z.string()),
  tests: z.array(z.string()),
});

export const versionMetadataSchema = z.object({
  project: z.string().min(1),
  image: z.string().min(1),
  version: z.string().refine((v) => !!parseVersionName(v), 'not a NAME-YYYYMMDDHHMMSS version name'),
  parent: z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('base'), ref: z.string().min(1) }),
    z.object({ kind: z.literal('image'), image: z.string().min(1), version: z.string().min(1) }),
  ]),
  inputHash: z.string(),
  toolVersion: z.string(),
  createdAt: z.string(),
  testing: z.string().min(1).optional(),
  revoked: z.object({ reason: z.string(), at: z.string().min(1) }).optional(),
  baseId: z.string().min(1).optional().catch(undefined),
  provenance: provenanceSchema.optional().catch(undefined),
});

/** Label keys of the metadata beside LABELS.project/image/version. */
export const META_LABELS = {
  parent: 'provisional-parent',
  inputHash: 'provisional-input-hash',
  toolVersion: 'provisional-tool-version',
  createdAt: 'provisional-created-at',
  testing: 'provisional-testing',
  revokedAt: 'provisional-revoked-at',
  revokedReason: 'provisional-revoked-reason',
  baseId: 'provisional-base-id',
  provenance: 'provisional-provenance',
} as const;

/** EC2: 256 characters a tag value; and no more than this many tags for the provenance (of 50 a resource). */
export const TAG_VALUE_MAX = 256;
export const PROVENANCE_TAGS = 8;

const DESCRIPTION_PREFIX = 'provisional:';

function ours(value: unknown, project: string): ImageVersionMetadata | undefined {
  const parsed = versionMetadataSchema.safeParse(value);
  if (!parsed.success || parsed.data.project !== project) return undefined;
  const { project: _project, baseId, provenance, ...meta } = parsed.data;
  // Absent marks are absent keys, so that metadata compares equal however it travelled; and a
  // version built before the base id and provenance were recorded reads back as it was written.
  if (meta.testing === undefined) delete meta.testing;
  if (meta.revoked === undefined) delete meta.revoked;
  return { ...meta, ...(baseId ? { baseId } : {}), ...(provenance ? { provenance } : {}) };
}

/** The metadata with the patch's marks set (a value) or lifted (null); the rest unchanged. */
export function patchMetadata<T extends ImageVersionMetadata>(meta: T, patch: VersionMetadataPatch): T {
  const next = { ...meta };
  if (patch.testing === null) delete next.testing;
  else if (patch.testing !== undefined) next.testing = patch.testing;
  if (patch.revoked === null) delete next.revoked;
  else if (patch.revoked !== undefined) next.revoked = { ...patch.revoked };
  return next;
}

/** Labels (tags) to write and to delete to go from one label set to another. */
export function labelChanges(before: Record<string, string>, after: Record<string, string>): { set: Record<string, string>; remove: string[] } {
  const set = Object.fromEntries(Object.entries(after).filter(([k, v]) => before[k] !== v));
  return { set, remove: Object.keys(before).filter((k) => !(k in after)) };
}

export function metadataToLabels(meta: ImageVersionMetadata, project: string): Record<string, string> {
  return {
    [LABELS.project]: project,
    [LABELS.image]: meta.image,
    [LABELS.version]: meta.version,
    [META_LABELS.parent]: meta.parent.kind === 'image' ? `image:${meta.parent.version}` : `base:${meta.parent.ref}`,
    [META_LABELS.inputHash]: meta.inputHash,
    [META_LABELS.toolVersion]: meta.toolVersion,
    [META_LABELS.createdAt]: meta.createdAt,
    ...(meta.testing ? { [META_LABELS.testing]: meta.testing } : {}),
    ...(meta.revoked ? { [META_LABELS.revokedAt]: meta.revoked.at, [META_LABELS.revokedReason]: meta.revoked.reason } : {}),
    ...(meta.baseId ? { [META_LABELS.baseId]: meta.baseId } : {}),
    ...(meta.provenance ? provenanceToLabels(meta.provenance) : {}),
  };
}

function provenanceKey(index: number): string {
  return index === 0 ? META_LABELS.provenance : `${META_LABELS.provenance}-${index + 1}`;
}

function provenanceToLabels(provenance: Provenance): Record<string, string> {
  const text = JSON.stringify(fitProvenance(provenance, TAG_VALUE_MAX * PROVENANCE_TAGS));
  const labels: Record<string, string> = {};
  for (let i = 0; i * TAG_VALUE_MAX < text.length; i++) labels[provenanceKey(i)] = text.slice(i * TAG_VALUE_MAX, (i + 1) * TAG_VALUE_MAX);
  return labels;
}

/** Shortens the longer of the script and test lists (ending it with "… (N more)") until the JSON fits. */
export function fitProvenance(provenance: Provenance, maxChars: number): Provenance {
  const fitted = { ...provenance, scripts: [...provenance.scripts], tests: [...provenance.tests] };
  const dropped = { scripts: 0, tests: 0 };
  const render = () => ({
    ...fitted,
    scripts: dropped.scripts ? [...fitted.scripts, `… (${dropped.scripts} more)`] : fitted.scripts,
    tests: dropped.tests ? [...fitted.tests, `… (${dropped.tests} more)`] : fitted.tests,
  });
  while (JSON.stringify(render()).length > maxChars && (fitted.scripts.length || fitted.tests.length)) {
    const list = fitted.scripts.length >= fitted.tests.length ? 'scripts' : 'tests';
    fitted[list].pop();
    dropped[list]++;
  }
  return render();
}

function provenanceFromLabels(labels: Record<string, string | undefined>): unknown {
  let text = '';
  for (let i = 0; labels[provenanceKey(i)] !== undefined; i++) text += labels[provenanceKey(i)];
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export function metadataFromLabels(labels: Record<string, string | undefined>, project: string): ImageVersionMetadata | undefined {
  const parent = labels[META_LABELS.parent] ?? '';
  const parentVersion = parent.startsWith('image:') ? parent.slice('image:'.length) : undefined;
  return ours(
    {
      project: labels[LABELS.project],
      image: labels[LABELS.image],
      version: labels[LABELS.version],
      parent: parentVersion !== undefined
        ? { kind: 'image', image: parseVersionName(parentVersion)?.image, version: parentVersion }
        : { kind: 'base', ref: parent.replace(/^base:/, '') },
      inputHash: labels[META_LABELS.inputHash] ?? '',
      toolVersion: labels[META_LABELS.toolVersion] ?? '',
      createdAt: labels[META_LABELS.createdAt] ?? '',
      testing: labels[META_LABELS.testing] || undefined,
      revoked: labels[META_LABELS.revokedAt] ? { at: labels[META_LABELS.revokedAt], reason: labels[META_LABELS.revokedReason] ?? '' } : undefined,
      baseId: labels[META_LABELS.baseId],
      provenance: provenanceFromLabels(labels),
    },
    project,
  );
}

export function metadataToDescription(meta: ImageVersionMetadata, project: string): string {
  return `${DESCRIPTION_PREFIX}${JSON.stringify({ ...meta, project })}`;
}

export function metadataFromDescription(text: string | null | undefined, project: string): ImageVersionMetadata | undefined {
  if (!text?.startsWith(DESCRIPTION_PREFIX)) return undefined;
  try {
    return ours(JSON.parse(text.slice(DESCRIPTION_PREFIX.length)), project);
  } catch {
    return undefined;
  }
}
