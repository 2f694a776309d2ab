/**
 * Whether an image must be rebuilt, in one place: its inputs (scripts, files, config, parent
 * version: images/inputs.ts) and, for an image built on a provider base, what that base resolves
 * to now. A version's input hash leaves the base's identity out, so that versions built before it
 * was recorded keep their hash; the identity is compared on its own, and a version without one
 * counts as "unknown", never as "moved" (no mass rebuild after an upgrade).
 */
import type { ImageVersionMetadata } from '../providers/types.js';

export type BaseState =
  | { kind: 'same' }
  | { kind: 'moved'; from: string; to: string }
  /** The version did not record its base's identity, or the base cannot be resolved now. */
  | { kind: 'unknown' };

export function baseState(recorded: string | undefined, current: string | undefined): BaseState {
  if (!recorded || !current) return { kind: 'unknown' };
  return recorded === current ? { kind: 'same' } : { kind: 'moved', from: recorded, to: current };
}

export type RebuildDecision =
  | { rebuild: false; why: string }
  | { rebuild: true; why: string };

/**
 * The hash with resolved bases: `latest` is the image's newest version, `hash` its current input
 * hash, `base` (images built on a provider base only) the base's ref and what it resolves to now.
 */
export function rebuildDecision(
  latest: Pick<ImageVersionMetadata, 'version' | 'inputHash' | 'baseId' | 'parent'> | undefined,
  hash: string,
  base?: { ref: string; identity: string },
  parentVersion?: string,
): RebuildDecision {
  if (!latest) return { rebuild: true, why: 'no version yet' };
  if (latest.inputHash !== hash) {
    // The parent's version is one of the inputs: name it when it is what changed (it may not be all).
    const was = latest.parent;
    const note = was.kind === 'image' && parentVersion && was.version !== parentVersion ? ` (${was.image} has a new version: ${parentVersion})` : '';
    return { rebuild: true, why: `inputs changed since ${latest.version}${note}` };
  }
  if (base) {
    const state = baseState(latest.baseId, base.identity);
    if (state.kind === 'moved') return { rebuild: true, why: `base ${base.ref} moved: ${shortId(state.from)} -> ${shortId(state.to)}` };
  }
  return { rebuild: false, why: `${latest.version} was built from the same inputs` };
}

/**
 * The provider base at the bottom of a version's chain (children record the base id of the chain
 * they were built on), and whether it moved since: what `image list` and `image show` mark.
 * `current` maps a base ref to what it resolves to now.
 */
export function chainBaseState(
  version: Pick<ImageVersionMetadata, 'parent' | 'baseId'>,
  byName: Map<string, Pick<ImageVersionMetadata, 'parent' | 'baseId'>>,
  current: Map<string, string | undefined>,
): { ref: string; state: BaseState } | undefined {
  let v: Pick<ImageVersionMetadata, 'parent' | 'baseId'> | undefined = version;
  for (let hops = 0; v && v.parent.kind === 'image' && hops < 1000; hops++) v = byName.get(v.parent.version);
  if (!v || v.parent.kind !== 'base') return undefined;
  return { ref: v.parent.ref, state: baseState(version.baseId, current.get(v.parent.ref)) };
}

/** A local base's digest, shortened for a line of text (cloud ids are short already). */
export function shortId(id: string): string {
  return /^sha256:[0-9a-f]{64}$/.test(id) ? id.slice(0, 'sha256:'.length + 12) : id;
}
