/**
 * `image create` and `image update`: decide what to build, in dependency order, in parallel where
 * images do not depend on each other, skipping images whose inputs did not change.
 */
import { UserFacingError } from '../core/errors.js';
import { scoped, tee, type EventSink } from '../core/events.js';
import { acquireLock, lockPath, type Lock } from '../core/lock.js';
import { newRunId, RunJournal } from '../core/journal.js';
import { imageDirs, type ProjectConfig } from '../config/load.js';
import { DEFAULT_TEST_TIMEOUT_S } from '../config/schema.js';
import { inputHash } from '../images/inputs.js';
import { describePassedOver, latestUsable } from '../images/choice.js';
import { rebuildDecision } from '../images/base-drift.js';
import { gitState, provenanceOf, type GitState } from '../images/provenance.js';
import type { ImageVersion, ImageVersionMetadata, Provider, SourceImage } from '../providers/types.js';
import { buildImage } from './pipeline.js';
import { semaphore } from '../core/semaphore.js';

export type BuildOutcome =
  | { image: string; status: 'built'; version: ImageVersion; durationMs: number }
  | { image: string; status: 'skipped'; version: ImageVersion; reason: string }
  | { image: string; status: 'failed'; error: Error; log?: string }
  | { image: string; status: 'not-run'; reason: string };

export interface UpdateOptions {
  config: ProjectConfig;
  provider: Provider;
  /** Images to consider; every image when undefined. */
  images?: string[];
  /** Build even when inputs did not change (`image create`, `--force`). */
  force: boolean;
  parallel: number;
  toolVersion: string;
  events: EventSink;
  signal: AbortSignal;
  /** A log file for each build (the CLI keeps them under the state directory). */
  openLog?: (image: string, runId: string) => Promise<{ sink: EventSink; path: string; close(): Promise<void> }>;
}

export async function updateImages(opts: UpdateOptions): Promise<BuildOutcome[]> {
  const { config, provider } = opts;
  const targets = config.graph.order(opts.images);
  const versions = await provider.listImageVersions(opts.signal);
  // The versions a build may start from or compare with: never one being tested or revoked (images/choice.ts).
  const latest = (image: string) => latestUsable(versions, image);
  const taken = new Set(versions.map((v) => v.version));
  const outcomes = new Map<string, Promise<BuildOutcome>>();
  const limit = semaphore(Math.max(1, opts.parallel));
  // Asked once per command: every version built now records the same commit.
  let git: Promise<GitState> | undefined;
  // Outcomes in the order their per-image lines were printed, so that the summary reads the same way.
  const finished: BuildOutcome[] = [];
  const settle = (outcome: BuildOutcome): BuildOutcome => {
    finished.push(outcome);
    return outcome;
  };

  const runOne = async (image: string): Promise<BuildOutcome> => {
    const parentImage = config.graph.parentOf(image);
    // A parent in this run must finish first; its new version is what this image builds on.
    const parentOutcome = parentImage ? await outcomes.get(parentImage) : undefined;
    if (parentOutcome && (parentOutcome.status === 'failed' || parentOutcome.status === 'not-run')) {
      return settle({ image, status: 'not-run', reason: `its parent ${parentImage} did not build` });
    }
    return limit(async () => {
      if (opts.signal.aborted) return settle({ image, status: 'not-run', reason: 'interrupted' });
      const started = performance.now();
      const runId = newRunId();
      const log = await opts.openLog?.(image, runId);
      const events = scoped(log ? tee(opts.events, log.sink) : opts.events, image);
      // Two commands must never build the same image at once (they would race for its version).
      let lock: Lock | undefined;
      try {
        lock = await acquireLock(lockPath(config.project, 'image', image), `image ${image}`);
        const imageConfig = config.images[image]!;
        let source: SourceImage;
        let parent: ImageVersionMetadata['parent'];
        let parentKey: string;
        let base: { ref: string; identity: string } | undefined;
        let baseId: string | undefined;
        if (parentImage) {
          const { version: parentVersion, passedOver } = latest(parentImage);
          if (!parentVersion) {
            throw new UserFacingError(`${image} is built from ${parentImage}, which has no version yet${passedOver.length ? ` that is not revoked (${describePassedOver(passedOver)})` : ''}`, {
              hint: passedOver.length
                ? `rebuild ${parentImage} (provisional image update ${parentImage} --force), or lift the mark: provisional image restore ${parentImage}@VERSION`
                : `run: provisional image create ${parentImage}   (or \`provisional image update\` to build every image in order)`,
            });
          }
          if (passedOver.length) events.emit({ type: 'info', message: `${image}: parent ${parentVersion.version}, the newest version of ${parentImage} that is not revoked (${describePassedOver(passedOver)})` });
          source = { kind: 'version', version: parentVersion };
          parent = { kind: 'image', image: parentImage, version: parentVersion.version };
          parentKey = `image:${parentVersion.version}`;
          // The chain's base: a child records what its parent was built on.
          baseId = parentVersion.baseId;
        } else {
          const ref = imageConfig['base-image'];
          parent = { kind: 'base', ref };
          parentKey = `base:${ref}`;
          const prepared = await provider.prepareBase(ref, opts.signal);
          source = prepared;
          base = { ref, identity: prepared.identity };
          baseId = prepared.identity;
        }
        const dirs = imageDirs(config, image);
        const hash = await inputHash({ imageConfig, dirs, parent: parentKey });
        const { version: current, passedOver: revoked } = latest(image);
        const decision = rebuildDecision(current, hash, base, parent.kind === 'image' ? parent.version : undefined);
        if (!opts.force && !decision.rebuild && current) {
          events.emit({ type: 'info', message: `${image} is up to date: ${decision.why} (use --force to rebuild)` });
          return settle({ image, status: 'skipped', version: current, reason: 'inputs unchanged' });
        }
        if (!opts.force) {
          const note = revoked.length ? ` (${describePassedOver(revoked)})` : '';
          events.emit({ type: 'info', message: `${image}: ${decision.why}${note}` });
        }
        const options = imageConfig.size ? { size: imageConfig.size } : undefined;
        git ??= gitState(config.projectDir);
        const provenance = await provenanceOf(await git, dirs, provider.sizeOf(options));
        const journal = await RunJournal.open(config.project, provider.name, runId);
        const version = await buildImage({
          journal,
          provider,
          project: config.project,
          image,
          dirs,
          source,
          parent,
          inputHash: hash,
          baseId,
          provenance,
          toolVersion: opts.toolVersion,
          runId,
          env: imageConfig.env,
          buildTimeoutMs: imageConfig['build-timeout'] * 1000,
          scriptTimeoutMs: imageConfig['script-timeout'] * 1000,
          testTimeoutMs: (imageConfig['test-timeout'] ?? DEFAULT_TEST_TIMEOUT_S) * 1000,
          options,
          regions: imageConfig.regions,
          events,
          signal: opts.signal,
          takenVersions: taken,
        });
        versions.push(version);
        const durationMs = Math.round(performance.now() - started);
        events.emit({ type: 'result', message: `built ${version.version} in ${(durationMs / 1000).toFixed(1)} s`, data: version });
        return settle({ image, status: 'built', version, durationMs });
      } catch (err) {
        return settle({ image, status: 'failed', error: err as Error, log: log?.path });
      } finally {
        await lock?.release();
        if (log) {
          opts.events.emit({ type: 'debug', scope: image, message: `full log: ${log.path}` });
          await log.close();
        }
      }
    });
  };

  for (const image of targets) outcomes.set(image, runOne(image));
  await Promise.all(targets.map((t) => outcomes.get(t)!));
  return finished;
}
