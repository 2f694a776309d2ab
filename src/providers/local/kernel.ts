/**
 * Faster direct kernel boot: QEMU can start an uncompressed `vmlinux` ELF at its PVH entry point
 * (https://www.qemu.org/docs/master/system/i386/pvh.html), skipping the real-mode setup and the
 * decompressor of a bzImage. Under TCG, decompressing Debian's XZ kernel takes ~2.7 s of every
 * boot; this does it once, when the base is built. Only used when the ELF has the PVH note
 * (Debian's kernel has CONFIG_PVH=y); otherwise the bzImage is kept.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { run } from './process.js';

const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
/** XEN_ELFNOTE_PHYS32_ENTRY, in a note named "Xen": where QEMU's PVH loader starts the kernel. */
const PVH_NOTE_TYPE = 18;

/** Decompress a bzImage's payload into `target`; false when it is not XZ or has no PVH entry. */
export async function extractPvhKernel(bzImage: string, target: string, signal: AbortSignal): Promise<boolean> {
  const image = await readFile(bzImage);
  const offset = image.indexOf(XZ_MAGIC);
  if (offset < 0) return false;
  const compressed = `${target}.xz`;
  await writeFile(compressed, image.subarray(offset));
  try {
    // --single-stream: the bzImage goes on after the stream (trailing data is not an error then).
    await run('sh', ['-c', 'exec xz -dc --single-stream -- "$1" > "$2"', 'sh', compressed, target], {
      signal,
      timeoutMs: 120_000,
      operation: 'extracting the kernel for PVH boot',
    });
  } catch {
    await rm(target, { force: true });
    return false;
  } finally {
    await rm(compressed, { force: true });
  }
  if (hasPvhNote(await readFile(target))) return true;
  await rm(target, { force: true });
  return false;
}

/** Whether a 64-bit little-endian ELF file has a PT_NOTE with the Xen PVH entry note. */
export function hasPvhNote(elf: Buffer): boolean {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) return false;
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (ph + 56 > elf.length || elf.readUInt32LE(ph) !== 4 /* PT_NOTE */) continue;
    const start = Number(elf.readBigUInt64LE(ph + 8));
    const end = Math.min(elf.length, start + Number(elf.readBigUInt64LE(ph + 32)));
    for (let note = start; note + 12 <= end; ) {
      const nameSize = elf.readUInt32LE(note);
      const descSize = elf.readUInt32LE(note + 4);
      const type = elf.readUInt32LE(note + 8);
      const name = elf.subarray(note + 12, note + 12 + nameSize).toString('latin1').replace(/\0+$/, '');
      if (name === 'Xen' && type === PVH_NOTE_TYPE) return true;
      note += 12 + align4(nameSize) + align4(descSize);
    }
  }
  return false;
}

const align4 = (n: number) => (n + 3) & ~3;
