/**
 * The base images: the built-in debian-12 (built from packages) and the configured ones
 * (downloaded). A base is made at most once per machine: under a lock, in a temporary folder that
 * is renamed into place when complete, so that a crash or Ctrl-C never leaves a half base that
 * looks ready.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { EventSink } from '../../core/events.js';
import { UserFacingError } from '../../core/errors.js';
import type { BaseImage } from '../types.js';
import { bootSpecOf, readBaseRecord, type BaseRecord, type BootSpec } from './base-record.js';
import { removeTree, writeJsonAtomic } from './files.js';
import { basesDir } from './layout.js';
import { debianRecipeKey } from './debian-guest.js';
import { acquireLock } from '../../core/lock.js';
import { DEBIAN_BASE, type BaseSettings, type LocalSettings } from './settings.js';

const BUILD_LOCK_WAIT_MS = 60 * 60_000;

export interface ReadyBase {
  ref: string;
  dir: string;
  record: BaseRecord;
  boot: BootSpec;
}

export class BaseStore {
  constructor(
    private readonly settings: LocalSettings,
    private readonly events: EventSink,
  ) {}

  refs(): string[] {
    return [DEBIAN_BASE, ...Object.keys(this.settings.bases)];
  }

  /**
   * The cache folder of a base. A configured base's folder carries its checksum: changing the
   * checksum downloads a new one beside the old, which the versions built on it still use.
   */
  folder(ref: string): string {
    if (ref === DEBIAN_BASE) return join(basesDir(), `${DEBIAN_BASE}@${debianRecipeKey(this.settings['disk-size'])}`);
    const base = this.settings.bases[ref];
    if (!base) {
      throw new UserFacingError(`the local provider has no base image "${ref}" (it has: ${this.refs().join(', ')})`, {
        hint: 'add it under provider.bases in config.yml, with a url and a checksum',
      });
    }
    return join(basesDir(), `${ref}@${base.checksum.slice('sha256:'.length, 'sha256:'.length + 16)}`);
  }

  async ready(ref: string): Promise<ReadyBase | undefined> {
    const dir = this.folder(ref);
    const record = await readBaseRecord(dir);
    return record ? { ref, dir, record, boot: bootSpecOf(dir, record) } : undefined;
  }

  async list(): Promise<BaseImage[]> {
    return Promise.all(
      this.refs().map(async (ref) => {
        const ready = await this.ready(ref);
        return {
          ref,
          description: ref === DEBIAN_BASE ? 'Debian 12 (bookworm), built here from Debian packages' : `downloaded from ${this.settings.bases[ref]!.url}`,
          ready: !!ready,
          sizeBytes: ready?.record.sizeBytes,
        };
      }),
    );
  }

  /** Build or download the base unless it is ready; waits for another process doing the same. */
  async prepare(ref: string, signal: AbortSignal): Promise<ReadyBase> {
    const existing = await this.ready(ref);
    if (existing) return existing;
    const dir = this.folder(ref);
    await mkdir(basesDir(), { recursive: true });
    const lock = await acquireLock(`${dir}.lock`, `another process making the base image ${ref}`, {
      timeoutMs: BUILD_LOCK_WAIT_MS,
      signal,
      onWait: (owner) => this.events.emit({ type: 'info', message: `waiting for process ${owner.pid}, which is making the base image ${ref}` }),
    });
    try {
      // It may have been made while we waited for the lock.
      const made = await this.ready(ref);
      if (made) return made;
      await this.removeLeftovers(dir);
      return await this.make(ref, dir, signal);
    } finally {
      await lock.release();
    }
  }

  private async make(ref: string, dir: string, signal: AbortSignal): Promise<ReadyBase> {
    const work = `${workPrefix(dir)}${process.pid}-${randomBytes(4).toString('hex')}`;
    await mkdir(work);
    const started = performance.now();
    const stepName = ref === DEBIAN_BASE ? 'base-build' : 'base-download';
    this.events.emit({ type: 'step', step: stepName, message: ref === DEBIAN_BASE ? `building the base image ${ref} (once)` : `downloading the base image ${ref} (once)` });
    try {
      const made =
        ref === DEBIAN_BASE
          ? await (await import('./debian-base.js')).buildDebianBase({
              workDir: work,
              mirrors: await (await import('./mirror.js')).machineMirrors(this.settings.mirror),
              diskSizeGiB: this.settings['disk-size'],
              events: this.events,
              signal,
            })
          : await (await import('./remote-base.js')).downloadBase(work, this.settings.bases[ref] as BaseSettings, this.events, signal);
      const durationMs = Math.round(performance.now() - started);
      const record: BaseRecord = { ref, buildId: randomUUID(), createdAt: new Date().toISOString(), ...made, durationMs };
      await writeJsonAtomic(join(work, 'base.json'), record);
      await rename(work, dir);
      this.events.emit({ type: 'step-done', step: stepName, message: `base image ${ref} ready`, durationMs });
      return { ref, dir, record, boot: bootSpecOf(dir, record) };
    } catch (err) {
      await removeTree(work).catch((cleanupErr: unknown) =>
        this.events.emit({ type: 'warn', message: `could not remove ${work}: ${(cleanupErr as Error).message}` }),
      );
      throw err;
    }
  }

  /** Work folders of builds that died (we hold the lock, so none is in progress), and a folder without base.json. */
  private async removeLeftovers(dir: string): Promise<void> {
    const prefix = workPrefix(dir).slice(basesDir().length + 1);
    for (const name of await readdir(basesDir())) {
      if (name.startsWith(prefix)) await removeTree(join(basesDir(), name));
    }
    if (existsSync(dir)) await removeTree(dir);
  }
}

function workPrefix(dir: string): string {
  const slash = dir.lastIndexOf('/');
  return `${dir.slice(0, slash)}/.${dir.slice(slash + 1)}.tmp-`;
}
