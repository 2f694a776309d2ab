/**
 * The Debian bookworm root file system that every emulated machine boots from: built once with
 * mmdebstrap (the local provider's mirrors and sources) and cached, read-only, as the bottom layer
 * of every machine's overlay. No kernel (containers share the host's), no network configuration
 * (containers share the host's network), just systemd and sshd.
 */
import { existsSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheDir } from '../../core/paths.js';
import { debianSources, SUITE } from '../../providers/local/debian-base.js';
import { DPKG_EXCLUDES, MASK_UNITS, REMOVE_FILES } from '../../providers/local/debian-guest.js';
import { machineMirrors } from '../../providers/local/mirror.js';
import { acquireLock } from '../../core/lock.js';
import { run } from '../../providers/local/process.js';
import { removeTree } from '../../providers/local/files.js';

/** On top of minbase: an init and an SSH server (which brings scp and sftp, for Packer's uploads). */
export const ROOTFS_PACKAGES = ['systemd-sysv', 'openssh-server', 'procps'];

/** Bump when the recipe changes, so that an old cached tree is not reused. */
const RECIPE = 1;

export function emulatorCacheDir(): string {
  return join(cacheDir(), 'emulator');
}

/** Path of the cached rootfs (a finished tree has `.provisional-rootfs` at its top). */
export function rootfsDir(): string {
  return join(emulatorCacheDir(), `debian-12-rootfs-v${RECIPE}`);
}

export interface RootfsOptions {
  signal?: AbortSignal;
  /** Progress lines (mmdebstrap's phases). */
  onProgress?: (line: string) => void;
}

/** The cached rootfs, built first if missing (about a minute); safe to call from parallel processes. */
export async function ensureRootfs(opts: RootfsOptions = {}): Promise<string> {
  const dir = rootfsDir();
  if (existsSync(join(dir, '.provisional-rootfs'))) return dir;
  await mkdir(emulatorCacheDir(), { recursive: true });
  const lock = await acquireLock(`${dir}.lock`, 'the emulator rootfs lock', { timeoutMs: 20 * 60_000, signal: opts.signal });
  try {
    if (existsSync(join(dir, '.provisional-rootfs'))) return dir;
    const partial = `${dir}.partial`;
    await removeTree(partial);
    const mirrors = await machineMirrors(undefined);
    opts.onProgress?.(`building the emulator's Debian ${SUITE} rootfs from ${mirrors.mirror}`);
    await run(
      'unshare',
      [
        '--mount',
        '--propagation',
        'private',
        'mmdebstrap',
        '--variant=minbase',
        '--mode=root',
        '--format=directory',
        `--include=${ROOTFS_PACKAGES.join(',')}`,
        '--aptopt=APT::Install-Recommends "false"',
        ...DPKG_EXCLUDES.map((o) => `--dpkgopt=${o}`),
        SUITE,
        partial,
        debianSources(mirrors).join('\n'),
      ],
      {
        signal: opts.signal,
        timeoutMs: 30 * 60_000,
        termGraceMs: 10_000,
        operation: 'building the emulator rootfs (mmdebstrap)',
        onLine: (line) => {
          if (line.startsWith('I: ')) opts.onProgress?.(line.slice(3));
        },
      },
    );
    for (const file of REMOVE_FILES) await rm(join(partial, file), { force: true });
    // Each machine gets its own machine-id (systemd makes one when the file is empty) and host keys.
    await writeFile(join(partial, 'etc/machine-id'), '');
    await writeFile(join(partial, 'etc/hostname'), 'debian\n');
    // The host's network is the container's: nothing in the machine may configure it.
    await writeFile(join(partial, 'etc/resolv.conf'), '');
    await run('chroot', [partial, 'systemctl', 'mask', ...MASK_UNITS, 'systemd-networkd.service', 'systemd-resolved.service'], {
      timeoutMs: 60_000,
      operation: 'masking units in the emulator rootfs',
    });
    await writeFile(join(partial, '.provisional-rootfs'), `${new Date().toISOString()}\n`);
    await rename(partial, dir);
    return dir;
  } finally {
    await lock.release();
  }
}
