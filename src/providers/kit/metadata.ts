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
 */
import { z } from 'zod';
import { parseVersionName } from '../../images/naming.js';
import { LABELS, type ImageVersionMetadata, type VersionMetadataPatch } from '../types.js';

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
} as const;

const DESCRIPTION_PREFIX = 'provisional:';

function ours(value: unknown, project: string): ImageVersionMetadata | undefined {
  const parsed = versionMetadataSchema.safeParse(value);
  if (!parsed.success || parsed.data.project !== project) return undefined;
  const { project: _project, ...meta } = parsed.data;
  // Absent marks are absent keys, so that metadata compares equal however it travelled.
  if (meta.testing === undefined) delete meta.testing;
  if (meta.revoked === undefined) delete meta.revoked;
  return meta;
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
  };
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
