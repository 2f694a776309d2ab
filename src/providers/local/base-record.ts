/**
 * base.json, written last into a base's folder: its presence is what makes the base ready.
 * And the boot description a machine needs, whether it starts from a base or from a version
 * (which keeps a copy, so it boots the same even if the settings change later).
 */
import { join } from 'node:path';
import { readJson } from './files.js';

export interface BaseRecord {
  ref: string;
  /** Unique per build or download: a version built on a base that was since rebuilt is unusable. */
  buildId: string;
  createdAt: string;
  /** File names inside the base folder. */
  disk: string;
  format: string;
  kernel?: string;
  initrd?: string;
  append?: string;
  sizeBytes: number;
  /** Where it came from (mirror and suite, or URL and checksum). */
  source: Record<string, string>;
  /** sha256 of the disk, `sha256:<hex>` (bases made before it was recorded have none). */
  digest?: string;
  /** How long it took to build or download. */
  durationMs?: number;
}

/** Everything needed to boot a disk that descends from a base. Paths are absolute. */
export interface BootSpec {
  baseRef: string;
  baseBuildId: string;
  /** The base's own disk (the bottom of every backing chain). */
  baseDisk: string;
  kernel?: string;
  initrd?: string;
  append?: string;
}

export async function readBaseRecord(dir: string): Promise<BaseRecord | undefined> {
  return readJson<BaseRecord>(join(dir, 'base.json'));
}

export function bootSpecOf(dir: string, record: BaseRecord): BootSpec {
  return {
    baseRef: record.ref,
    baseBuildId: record.buildId,
    baseDisk: join(dir, record.disk),
    kernel: record.kernel ? join(dir, record.kernel) : undefined,
    initrd: record.initrd ? join(dir, record.initrd) : undefined,
    append: record.append,
  };
}
