/**
 * The QEMU tools this provider drives: the system emulator's version and qemu-img operations.
 */
import { run } from './process.js';

export const QEMU_SYSTEM = 'qemu-system-x86_64';
export const QEMU_IMG = 'qemu-img';

/** QEMU option values are comma-separated: a comma inside a value (a path) is written twice. */
export function optionValue(value: string): string {
  return value.replaceAll(',', ',,');
}

let version: Promise<string> | undefined;

/** "7.2.22", from `qemu-system-x86_64 --version`; probed once per process. */
export function qemuVersion(signal?: AbortSignal): Promise<string> {
  version ??= run(QEMU_SYSTEM, ['--version'], { timeoutMs: 10_000, operation: 'finding the QEMU version', signal }).then(
    ({ stdout }) => /version\s+(\d+\.\d+(?:\.\d+)?)/.exec(stdout)?.[1] ?? 'unknown',
    (err: unknown) => {
      version = undefined;
      throw err;
    },
  );
  return version;
}

/**
 * A copy-on-write overlay on `backing`. The backing path is absolute so the overlay can move
 * (it does: a builder's overlay becomes a version) without losing its base.
 */
export async function createOverlay(
  backing: string,
  backingFormat: string,
  overlay: string,
  signal?: AbortSignal,
): Promise<void> {
  if (!backing.startsWith('/')) throw new Error(`backing file must be absolute: ${backing}`);
  await run(QEMU_IMG, ['create', '-q', '-f', 'qcow2', '-F', backingFormat, '-b', backing, overlay], {
    timeoutMs: 60_000,
    operation: 'creating a disk overlay',
    signal,
  });
}

/**
 * Put `overlay` on `backing` instead of its backing chain, copying into it what the chain held
 * beyond `backing` (qemu-img's safe rebase): the same disk, one layer shorter.
 */
export async function rebaseOverlay(overlay: string, backing: string, backingFormat: string, signal?: AbortSignal): Promise<void> {
  await run(QEMU_IMG, ['rebase', '-q', '-f', 'qcow2', '-F', backingFormat, '-b', backing, overlay], { timeoutMs: 10 * 60_000, operation: 'rebasing a disk overlay', signal });
}

export interface ImageInfo {
  format: string;
  virtualSize: number;
  actualSize?: number;
  backingFilename?: string;
}

export async function imageInfo(path: string, signal?: AbortSignal): Promise<ImageInfo> {
  // -U: the image may be open in a running QEMU; we only read the header.
  const { stdout } = await run(QEMU_IMG, ['info', '-U', '--output=json', path], {
    timeoutMs: 30_000,
    operation: `reading ${path}`,
    signal,
  });
  const info = JSON.parse(stdout) as Record<string, unknown>;
  return {
    format: String(info['format']),
    virtualSize: Number(info['virtual-size']),
    actualSize: typeof info['actual-size'] === 'number' ? info['actual-size'] : undefined,
    backingFilename: typeof info['backing-filename'] === 'string' ? info['backing-filename'] : undefined,
  };
}

export async function convertToQcow2(source: string, sourceFormat: string, target: string, signal?: AbortSignal): Promise<void> {
  await run(QEMU_IMG, ['convert', '-q', '-f', sourceFormat, '-O', 'qcow2', source, target], {
    timeoutMs: 30 * 60_000,
    operation: 'converting a disk image',
    signal,
  });
}
