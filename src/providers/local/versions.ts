/**
 * Image versions on disk: images/<image>/<version>.qcow2, the builder's overlay kept as it was
 * (copy-on-write over what it was built from, so it holds only what its scripts changed), and
 * <version>.json beside it. The JSON is written last: a version without it is incomplete and is
 * not listed. Listing reads only the JSON files (no qemu-img per version), so it stays fast with
 * thousands of versions; it knows each version's backing file from there too.
 */
import { chmod, copyFile, mkdir, rename, rm, stat } from 'node:fs/promises';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserFacingError, throwIfAborted } from '../../core/errors.js';
import type { ImageVersion, ImageVersionMetadata, VersionMetadataPatch } from '../types.js';
import { patchMetadata } from '../kit/metadata.js';
import type { BootSpec } from './base-record.js';
import { readJson, writeJsonAtomic } from './files.js';
import { imageDir, imagesDir, versionFiles } from './layout.js';

export interface VersionRecord extends ImageVersion {
  local: {
    /** The disk this version's qcow2 is an overlay on (a base disk or the parent version's qcow2). */
    backing: string;
    boot: BootSpec;
  };
}

/**
 * Every complete version of the project, from the JSON files alone. Synchronous on purpose:
 * fs.promises.readFile costs four thread-pool round trips per file, which made 1,000 versions take
 * ~400 ms on a busy machine; plain reads take a tenth of that, and nothing else runs meanwhile.
 */
export async function listVersionRecords(project: string): Promise<VersionRecord[]> {
  const root = imagesDir(project);
  const records: VersionRecord[] = [];
  for (const image of listDir(root)) {
    for (const file of listDir(join(root, image))) {
      if (!file.endsWith('.json')) continue;
      try {
        const record = JSON.parse(readFileSync(join(root, image, file), 'utf8')) as VersionRecord;
        if (typeof record.version === 'string') records.push(record);
      } catch {
        // Removed meanwhile, or not ours: not a version.
      }
    }
  }
  return records;
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** The contract's view of a record (the local details stay inside the provider). */
export function toImageVersion(record: VersionRecord): ImageVersion {
  const { local: _local, ...version } = record;
  return version;
}

export async function readVersionRecord(project: string, image: string, version: string): Promise<VersionRecord | undefined> {
  return readJson<VersionRecord>(versionFiles(project, image, version).meta);
}

export interface SaveVersionRequest {
  project: string;
  meta: ImageVersionMetadata;
  /** The stopped builder's overlay; it is moved, not copied. */
  overlay: string;
  backing: string;
  boot: BootSpec;
  signal: AbortSignal;
}

/** Turn a stopped builder's overlay into a version; resolves once the version is complete. */
export async function saveVersion(req: SaveVersionRequest): Promise<ImageVersion> {
  throwIfAborted(req.signal);
  const { disk, meta: metaFile } = versionFiles(req.project, req.meta.image, req.meta.version);
  if (existsSync(disk) || existsSync(metaFile)) {
    throw new UserFacingError(`version ${req.meta.version} of ${req.meta.image} exists already`);
  }
  await mkdir(imageDir(req.project, req.meta.image), { recursive: true });
  const partial = `${disk}.partial`;
  try {
    await moveFile(req.overlay, partial);
    // Later machines and versions read it as a backing file: it must never change again.
    await chmod(partial, 0o444);
    const sizeBytes = (await stat(partial)).blocks * 512;
    await rename(partial, disk);
    const record: VersionRecord = {
      ...req.meta,
      id: disk,
      status: 'available',
      sizeBytes,
      local: { backing: req.backing, boot: req.boot },
    };
    await writeJsonAtomic(metaFile, record);
    return toImageVersion(record);
  } catch (err) {
    await rm(partial, { force: true });
    if (!existsSync(metaFile)) await rm(disk, { force: true });
    throw err;
  }
}

/** The marks are in the version's JSON: rewritten atomically (the disk never changes). */
export async function updateVersionRecord(project: string, version: Pick<ImageVersion, 'image' | 'version'>, patch: VersionMetadataPatch): Promise<ImageVersion> {
  const record = await readVersionRecord(project, version.image, version.version);
  if (!record) throw new UserFacingError(`version ${version.version} of ${version.image} no longer exists`);
  const updated = patchMetadata(record, patch);
  await writeJsonAtomic(versionFiles(project, version.image, version.version).meta, updated);
  return toImageVersion(updated);
}

/** rename(), or copy and remove when the two are on different file systems. */
async function moveFile(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    await copyFile(from, to);
    await rm(from);
  }
}

/**
 * Delete a version, unless other versions or machines use its disk as their backing file (their
 * disks would be unreadable without it). Idempotent.
 */
export async function deleteVersion(
  project: string,
  version: Pick<ImageVersion, 'image' | 'version'>,
  machineUsers: (disk: string) => Promise<string[]>,
): Promise<void> {
  const { disk, meta } = versionFiles(project, version.image, version.version);
  const dependents = (await listVersionRecords(project))
    .filter((r) => r.local?.backing === disk)
    .map((r) => r.version)
    .sort();
  const machines = await machineUsers(disk);
  if (dependents.length || machines.length) {
    const parts = [
      dependents.length ? `version${dependents.length > 1 ? 's' : ''} ${dependents.join(', ')} ${dependents.length > 1 ? 'are' : 'is'} built on it` : '',
      machines.length ? `machine${machines.length > 1 ? 's' : ''} ${machines.join(', ')} run${machines.length > 1 ? '' : 's'} from it` : '',
    ].filter(Boolean);
    throw new UserFacingError(`cannot delete ${version.version}: ${parts.join('; ')}`, {
      hint: dependents.length ? 'delete the versions built on it first' : 'destroy those machines first',
    });
  }
  // Metadata first: from then on the version is not listed, even if removing the disk fails.
  await rm(meta, { force: true });
  await rm(disk, { force: true });
  await rm(`${disk}.partial`, { force: true });
}

/**
 * Leftovers of snapshots that never finished (a crash between moving the disk and writing its
 * metadata): a disk or a partial file without a <version>.json. Removed unless `dryRun`.
 */
export async function removeHalfMadeVersions(project: string, versionNames: string[], dryRun: boolean): Promise<string[]> {
  const wanted = new Set(versionNames);
  const found: string[] = [];
  const root = imagesDir(project);
  for (const image of listDir(root)) {
    const files = listDir(join(root, image));
    for (const file of files) {
      const m = /^(.+?)\.(qcow2(?:\.partial)?|json\..+\.partial)$/.exec(file);
      if (!m || !wanted.has(m[1]!) || files.includes(`${m[1]}.json`)) continue;
      found.push(`half-made version file ${join(root, image, file)}`);
      if (!dryRun) await rm(join(root, image, file), { force: true });
    }
  }
  return found;
}
