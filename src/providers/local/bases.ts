/**
 * The base images: the built-in debian-12 (built from packages) and the configured ones
 * (downloaded). A base is made at most once per machine: under a lock, in a temporary folder that
 * is renamed into place when complete, so that a crash or Ctrl-C never leaves a half base that
 * looks ready.
 *
 * `base update` builds a new generation of a base beside the current one (`<folder>~<stamp>`)
 * and points `<folder>.current` at it; the old one stays, because the versions built on it read
 * its disk as their backing file (and the cache is shared by every project and data directory,
 * so no one process can know that nothing uses it any more).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { timestamp } from '../../images/naming.js';
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

/** Makes a base's files in an empty work folder (debian-base.ts, remote-base.ts; a test's stand-in). */
export type BaseMaker = (ref: string, workDir: string, signal: AbortSignal) => Promise<Omit<BaseRecord, 'ref' | 'buildId' | 'createdAt'>>;

/** A base's identity, recorded as a version's baseId: the digest of its disk (bases made before digests: their build id). */
export function baseIdentity(record: BaseRecord): string {
  return record.digest ?? `build-${record.buildId}`;
}

export class BaseStore {
  constructor(
    private readonly settings: LocalSettings,
    private readonly events: EventSink,
    private readonly maker: BaseMaker = (ref, work, signal) => this.makeFiles(ref, work, signal),
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

  /** The folder of the base's current generation: the first one, or the one `base update` made last. */
  async currentFolder(ref: string): Promise<string> {
    const family = this.folder(ref);
    const pointer = await readFile(`${family}.current`, 'utf8').then((t) => t.trim(), () => '');
    return pointer && /^[^/]+$/.test(pointer) ? join(basesDir(), pointer) : family;
  }

  async ready(ref: string): Promise<ReadyBase | undefined> {
    const dir = await this.currentFolder(ref);
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
          id: ready && baseIdentity(ready.record),
          createdAt: ready?.record.createdAt,
        };
      }),
    );
  }

  /** Build or download the base unless it is ready; waits for another process doing the same. */
  async prepare(ref: string, signal: AbortSignal): Promise<ReadyBase> {
    const existing = await this.ready(ref);
    if (existing) return existing;
    return this.locked(ref, signal, async () => {
      // It may have been made while we waited for the lock.
      const made = await this.ready(ref);
      if (made) return made;
      const dir = await this.currentFolder(ref);
      await this.removeLeftovers(dir);
      return this.make(ref, dir, signal);
    });
  }

  /**
   * `provisional base update`: a new generation of the base from current packages, made beside the
   * current one, which stays for the versions built on it. Only debian-12 is built here; a
   * downloaded base changes with its checksum in config.yml.
   */
  async update(ref: string, signal: AbortSignal): Promise<{ previous?: ReadyBase; current: ReadyBase }> {
    if (ref !== DEBIAN_BASE) {
      this.folder(ref); // an unknown ref says so
      throw new UserFacingError(`${ref} is downloaded, not built: it changes when its url and checksum change in config.yml`, { exitCode: 2 });
    }
    return this.locked(ref, signal, async () => {
      const previous = await this.ready(ref);
      const dir = `${this.folder(ref)}~${timestamp(new Date())}`;
      await this.removeLeftovers(dir);
      const current = await this.make(ref, dir, signal, `rebuilding the base image ${ref} from current packages`);
      // The pointer is written last and atomically: until then every build uses the previous generation.
      const temp = `${this.folder(ref)}.current.${process.pid}.partial`;
      await writeFile(temp, `${basename(dir)}\n`);
      await rename(temp, `${this.folder(ref)}.current`);
      return { previous, current };
    });
  }

  private async locked<T>(ref: string, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    const family = this.folder(ref);
    await mkdir(basesDir(), { recursive: true });
    const lock = await acquireLock(`${family}.lock`, `another process making the base image ${ref}`, {
      timeoutMs: BUILD_LOCK_WAIT_MS,
      signal,
      onWait: (owner) => this.events.emit({ type: 'info', message: `waiting for process ${owner.pid}, which is making the base image ${ref}` }),
    });
    try {
      return await fn();
    } finally {
      await lock.release();
    }
  }

  private async makeFiles(ref: string, work: string, signal: AbortSignal): Promise<Omit<BaseRecord, 'ref' | 'buildId' | 'createdAt'>> {
    return ref === DEBIAN_BASE
      ? (await import('./debian-base.js')).buildDebianBase({
          workDir: work,
          mirrors: await (await import('./mirror.js')).machineMirrors(this.settings.mirror),
          diskSizeGiB: this.settings['disk-size'],
          events: this.events,
          signal,
        })
      : (await import('./remote-base.js')).downloadBase(work, this.settings.bases[ref] as BaseSettings, this.events, signal);
  }

  private async make(ref: string, dir: string, signal: AbortSignal, what?: string): Promise<ReadyBase> {
    const work = `${workPrefix(dir)}${process.pid}-${randomBytes(4).toString('hex')}`;
    await mkdir(work);
    const started = performance.now();
    const stepName = ref === DEBIAN_BASE ? 'base-build' : 'base-download';
    this.events.emit({ type: 'step', step: stepName, message: what ?? (ref === DEBIAN_BASE ? `building the base image ${ref} (once)` : `downloading the base image ${ref} (once)`) });
    try {
      const made = await this.maker(ref, work, signal);
      const digest = await fileDigest(join(work, made.disk));
      const durationMs = Math.round(performance.now() - started);
      const record: BaseRecord = { ref, buildId: randomUUID(), createdAt: new Date().toISOString(), ...made, digest, durationMs };
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

/** sha256 of a base's disk: its identity (a new build from newer packages is another disk). */
async function fileDigest(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}
