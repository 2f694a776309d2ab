/**
 * File helpers for the local store: atomic JSON writes, and removing trees that a chroot build
 * may still have file systems mounted in (removing through a bind mount of /dev would delete the
 * host's device nodes).
 */
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { run } from './process.js';

/** Write JSON so that readers see either the old file or the whole new one, never a part. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.partial`;
  try {
    await writeFile(temp, `${JSON.stringify(value, null, 2)}\n`, { flag: 'wx' });
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

export async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Mount points at or below `dir`, deepest first (from /proc/self/mountinfo). */
export async function mountsBelow(dir: string): Promise<string[]> {
  let info: string;
  try {
    info = await readFile('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const prefix = dir.replace(/\/+$/, '');
  return info
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((m): m is string => !!m)
    .map((m) => m.replace(/\\(\d{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8))))
    .filter((m) => m === prefix || m.startsWith(`${prefix}/`))
    .sort((a, b) => b.length - a.length);
}

/**
 * Remove a directory tree that may contain a chroot. Anything still mounted below it is
 * unmounted first (lazily), and `rm --one-file-system` refuses to cross into a mount that
 * could not be, so a leftover bind mount can never make us delete the host's files.
 */
export async function removeTree(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  for (const mount of await mountsBelow(dir)) {
    await run('umount', ['--lazy', mount], { timeoutMs: 30_000, operation: `unmounting ${mount}` }).catch(() => undefined);
  }
  await run('rm', ['-rf', '--one-file-system', '--', dir], { timeoutMs: 5 * 60_000, operation: `removing ${dir}` });
}
