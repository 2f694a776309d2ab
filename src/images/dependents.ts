/**
 * The "built on it" rule, in one place: a version whose metadata names another as its parent must
 * not outlive it (its history would point nowhere, and the local provider's disk would be
 * unreadable). `image delete` checks it before asking, and every provider's deleteImageVersion
 * checks it again, so that no caller can skip it.
 */
import { UserFacingError } from '../core/errors.js';
import type { ImageVersion, ImageVersionMetadata } from '../providers/types.js';

/** Versions of `all` built on one of `doomed` that are not themselves doomed. */
export function versionsBuiltOn<T extends Pick<ImageVersionMetadata, 'version' | 'parent'>>(doomed: Pick<ImageVersionMetadata, 'version'>[], all: T[]): T[] {
  const names = new Set(doomed.map((v) => v.version));
  return all.filter((v) => v.parent.kind === 'image' && names.has(v.parent.version) && !names.has(v.version));
}

/** Throws, naming the dependents, when a version of `doomed` has versions built on it. */
export function refuseIfBuiltOn(doomed: Pick<ImageVersion, 'version'>[], all: Pick<ImageVersionMetadata, 'version' | 'parent'>[], hint = 'delete those versions first'): void {
  const dependents = versionsBuiltOn(doomed, all);
  if (!dependents.length) return;
  throw new UserFacingError(
    `cannot delete ${doomed.map((v) => v.version).join(', ')}: ${dependents.map((d) => d.version).join(', ')} ${dependents.length > 1 ? 'are' : 'is'} built on it`,
    { hint },
  );
}
