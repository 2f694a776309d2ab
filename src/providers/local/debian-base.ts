/**
 * Builds the debian-12 base from Debian packages: mmdebstrap into a directory, a few files to make
 * it boot under QEMU (debian-guest.ts), then `mkfs.ext4 -d` turns the directory into a disk image
 * (no loop mounts, no boot loader: machines boot its kernel directly).
 *
 * mmdebstrap runs inside its own mount namespace (`unshare --mount`): the /proc, /sys and /dev it
 * mounts into the chroot vanish with it, even if it is killed.
 */
import { chmod, copyFile, mkdir, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import type { EventSink } from '../../core/events.js';
import { UserFacingError } from '../../core/errors.js';
import type { DebianMirrors } from './mirror.js';
import { run } from './process.js';
import { removeTree } from './files.js';
import { convertToQcow2 } from './qemu.js';
import { extractPvhKernel } from './kernel.js';
import {
  DEBIAN_APPEND,
  DEBIAN_PACKAGES,
  DPKG_EXCLUDES,
  EARLY_FILES,
  ENABLE_UNITS,
  GUEST_FILES,
  MASK_UNITS,
  REMOVE_FILES,
  SUITE,
  type GuestFile,
} from './debian-guest.js';
import type { BaseRecord } from './base-record.js';

export { SUITE };

export interface DebianBuildOptions {
  /** An empty work directory; the finished files are left in it (disk.qcow2, vmlinuz, initrd.img). */
  workDir: string;
  mirrors: DebianMirrors;
  diskSizeGiB: number;
  events: EventSink;
  signal: AbortSignal;
}

/** sources.list lines for mmdebstrap (which also leaves them in the image for the scripts' apt-get). */
export function debianSources(mirrors: DebianMirrors): string[] {
  const lines = [`deb ${mirrors.mirror} ${SUITE} main`, `deb ${mirrors.mirror} ${SUITE}-updates main`];
  if (mirrors.security) lines.push(`deb ${mirrors.security} ${SUITE}-security main`);
  return lines;
}

/** mmdebstrap's own hook that runs dpkg under eatmydata during the build only (no fsync per file), then removes itself. */
export const EATMYDATA_HOOKS = '/usr/share/mmdebstrap/hooks/eatmydata';

export function mmdebstrapArgs(rootDir: string, earlyDir: string, mirrors: DebianMirrors, eatmydata = false): string[] {
  return [
    '--variant=minbase',
    ...(eatmydata ? [`--hook-directory=${EATMYDATA_HOOKS}`] : []),
    '--mode=root',
    '--format=directory',
    `--include=${DEBIAN_PACKAGES.join(',')}`,
    '--aptopt=APT::Install-Recommends "false"',
    ...DPKG_EXCLUDES.map((opt) => `--dpkgopt=${opt}`),
    // Files the packages' own scripts must already see (the initramfs configuration).
    `--setup-hook=cp -a ${shellQuote(earlyDir)}/. "$1/"`,
    SUITE,
    rootDir,
    debianSources(mirrors).join('\n'),
  ];
}

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

export async function buildDebianBase(opts: DebianBuildOptions): Promise<Omit<BaseRecord, 'ref' | 'buildId' | 'createdAt'>> {
  const { workDir, events, signal } = opts;
  if (process.getuid?.() !== 0) {
    throw new UserFacingError('building the debian-12 base needs root (mmdebstrap installs packages into a chroot)', {
      hint: 'run the first build as root, or configure a downloaded base under provider.bases',
    });
  }
  const rootDir = join(workDir, 'root');
  const earlyDir = join(workDir, 'early');
  await writeGuestFiles(earlyDir, EARLY_FILES);

  events.emit({ type: 'info', message: `installing Debian ${SUITE} from ${opts.mirrors.mirror} (about a minute)` });
  await run('unshare', ['--mount', '--propagation', 'private', 'mmdebstrap', ...mmdebstrapArgs(rootDir, earlyDir, opts.mirrors, existsSync(EATMYDATA_HOOKS))], {
    signal,
    timeoutMs: 30 * 60_000,
    termGraceMs: 10_000,
    operation: 'building the debian-12 base (mmdebstrap)',
    // mmdebstrap reports its phases as "I: ..." lines: show them; the rest is apt's detail.
    onLine: (line) => {
      if (line.startsWith('I: ') && !line.startsWith('I: running --')) events.emit({ type: 'info', message: line.slice(3) });
      else if (line.trim()) events.emit({ type: 'debug', message: line });
    },
  });

  await writeGuestFiles(rootDir, GUEST_FILES);
  for (const file of REMOVE_FILES) await rm(join(rootDir, file), { force: true });
  const chroot = (args: string[]) =>
    run('chroot', [rootDir, ...args], { signal, timeoutMs: 60_000, operation: `configuring the debian-12 base (${args.join(' ')})` });
  await chroot(['systemctl', 'enable', ...ENABLE_UNITS]);
  await chroot(['systemctl', 'mask', ...MASK_UNITS]);

  const boot = join(rootDir, 'boot');
  const entries = await readdir(boot);
  const kernel = entries.find((f) => f.startsWith('vmlinuz-'));
  const initrd = entries.find((f) => f.startsWith('initrd.img-'));
  if (!kernel || !initrd) throw new UserFacingError(`the debian-12 build produced no kernel or initramfs in /boot (found: ${entries.join(', ')})`);
  // The uncompressed kernel boots ~2.7 s faster under TCG (kernel.ts); the bzImage is the fallback.
  const pvh = await extractPvhKernel(join(boot, kernel), join(workDir, 'vmlinux'), signal);
  if (!pvh) await copyFile(join(boot, kernel), join(workDir, 'vmlinuz'));
  await copyFile(join(boot, initrd), join(workDir, 'initrd.img'));

  events.emit({ type: 'info', message: 'making the disk image' });
  const raw = join(workDir, 'disk.raw');
  await writeFile(raw, '');
  await truncate(raw, opts.diskSizeGiB * 1024 ** 3);
  // -d copies the tree into the new file system: no loop device, no mount.
  await run('mkfs.ext4', ['-q', '-F', '-L', 'root', '-d', rootDir, raw], {
    signal,
    timeoutMs: 10 * 60_000,
    operation: 'making the debian-12 file system',
  });
  const disk = join(workDir, 'disk.qcow2');
  await convertToQcow2(raw, 'raw', disk, signal);
  await rm(raw, { force: true });
  await removeTree(rootDir);
  await rm(earlyDir, { recursive: true, force: true });
  // Every version built on this base reads it as a backing file: it must never change again.
  await chmod(disk, 0o444);
  const sizeBytes = (await stat(disk)).blocks * 512;
  return {
    disk: 'disk.qcow2',
    format: 'qcow2',
    kernel: pvh ? 'vmlinux' : 'vmlinuz',
    initrd: 'initrd.img',
    append: DEBIAN_APPEND,
    sizeBytes,
    source: { mirror: opts.mirrors.mirror, suite: SUITE },
  };
}

async function writeGuestFiles(root: string, files: GuestFile[]): Promise<void> {
  for (const file of files) {
    const path = join(root, file.path);
    await mkdir(join(path, '..'), { recursive: true });
    // Replace rather than write through: /etc/resolv.conf may be a symlink to the host's.
    await rm(path, { force: true });
    await writeFile(path, file.content, { mode: file.mode ?? 0o644 });
    if (file.mode) await chmod(path, file.mode);
  }
}
