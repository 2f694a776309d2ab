/**
 * Which versions may be chosen, in one place: "latest" for a deploy, the parent of a build, a
 * rollback target, what a `from:` promotion hands over, a version named with `--pin` or `--to`.
 * A version counts only when it is complete, its image tests passed (no `testing` mark) and it is
 * not revoked. Asking for one that does not count by name is refused with the reason (exit 2).
 */
import { UsageError } from '../core/errors.js';
import { byNewest } from './naming.js';
import type { ImageVersion } from '../providers/types.js';

/** Why a version cannot be chosen, or undefined when it can. */
export function unusableReason(v: ImageVersion): string | undefined {
  if (v.revoked) return `revoked${v.revoked.at ? ` on ${v.revoked.at.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}` : ''}${v.revoked.reason ? `: ${v.revoked.reason}` : ''}`;
  if (v.testing) return `being tested (run ${v.testing})`;
  if (v.status !== 'available') return v.status;
  return undefined;
}

export const usable = (v: ImageVersion): boolean => unusableReason(v) === undefined;

/** The versions of `image` that may be chosen, newest first. */
export function usableVersions(versions: ImageVersion[], image: string): ImageVersion[] {
  return versions.filter((v) => v.image === image && usable(v)).sort(byNewest);
}

/** The newest version that may be chosen, and the newer revoked ones it passes over (to say so). */
export function latestUsable(versions: ImageVersion[], image: string): { version?: ImageVersion; passedOver: ImageVersion[] } {
  const version = usableVersions(versions, image)[0];
  const passedOver = versions.filter((v) => v.image === image && v.revoked && (!version || v.version > version.version)).sort(byNewest);
  return { version, passedOver };
}

/** The version a rollback from `running` goes to: the newest usable one older than it. */
export function rollbackTarget(versions: ImageVersion[], image: string, running: string): ImageVersion | undefined {
  return usableVersions(versions, image).find((v) => v.version < running);
}

/** A version named on the command line (`what`, e.g. `--pin app@...`): exactly it, or exit 2 with why not. */
export function requireUsable(v: ImageVersion, what: string, image: string, versions: ImageVersion[]): ImageVersion {
  const why = unusableReason(v);
  if (why) throw new UsageError(`${what}: ${v.version} is ${why}`, choicesHint(image, versions));
  return v;
}

export function choicesHint(image: string, versions: ImageVersion[]): string {
  return `versions of ${image} that can be used: ${usableVersions(versions, image).map((v) => v.version).join(', ') || '(none)'}`;
}

/** "(newer x-1 is revoked: why)" for messages that pass over revoked versions. */
export function describePassedOver(passedOver: ImageVersion[]): string {
  return passedOver.map((v) => `${v.version} is ${unusableReason(v)}`).join('; ');
}
