/**
 * A configured base: a disk image (typically a distribution's cloud image) downloaded and verified,
 * plus an optional kernel and initrd for direct kernel boot. Without a kernel, machines boot it
 * through its own boot loader (SeaBIOS firmware).
 */
import { chmod, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { EventSink } from '../../core/events.js';
import { UserFacingError } from '../../core/errors.js';
import type { BaseRecord } from './base-record.js';
import { downloadVerified } from './download.js';
import { imageInfo } from './qemu.js';
import type { BaseSettings } from './settings.js';

/** Formats used as they are; anything else qemu-img can read would need converting first. */
const DIRECT_FORMATS = new Set(['qcow2', 'raw']);

export async function downloadBase(
  work: string,
  base: BaseSettings,
  events: EventSink,
  signal: AbortSignal,
): Promise<Omit<BaseRecord, 'ref' | 'buildId' | 'createdAt'>> {
  const fetched = join(work, 'disk.download');
  events.emit({ type: 'info', message: `downloading ${base.url}` });
  await downloadVerified({ url: base.url, checksum: base.checksum, dest: fetched, events, signal });
  const info = await imageInfo(fetched, signal);
  if (!DIRECT_FORMATS.has(info.format)) {
    throw new UserFacingError(`${base.url} is a ${info.format} image; the local provider takes qcow2 or raw disk images`);
  }
  if (info.backingFilename) {
    throw new UserFacingError(`${base.url} is an overlay on ${info.backingFilename}; a base must be a whole disk image`);
  }
  const disk = `disk.${info.format}`;
  await rename(fetched, join(work, disk));
  // Versions built on it read it as a backing file: it must never change.
  await chmod(join(work, disk), 0o444);

  const record: Omit<BaseRecord, 'ref' | 'buildId' | 'createdAt'> = {
    disk,
    format: info.format,
    sizeBytes: (await stat(join(work, disk))).blocks * 512,
    source: { url: base.url, checksum: base.checksum },
  };
  if (base.kernel) {
    await downloadVerified({ ...base.kernel, dest: join(work, 'vmlinuz'), events, signal });
    record.kernel = 'vmlinuz';
    record.append = base.append ?? 'root=/dev/vda1 rw console=ttyS0';
  }
  if (base.initrd) {
    await downloadVerified({ ...base.initrd, dest: join(work, 'initrd.img'), events, signal });
    record.initrd = 'initrd.img';
  }
  return record;
}
