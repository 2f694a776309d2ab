/**
 * An image's inputs: its scripts, its files, its tests, its config and the resolved parent. Their hash decides
 * whether `image update` must rebuild; it is stored with every version.
 */
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';

export interface ImageDirs {
  /** config/provisional/<image>/scripts */
  scriptsDir: string;
  /** config/provisional/<image>/files */
  filesDir: string;
  /** config/provisional/<image>/tests: run on a server booted from each new version */
  testsDir?: string;
}

export interface InputEntry {
  /** Path relative to the image directory, with forward slashes. */
  path: string;
  kind: 'file' | 'dir' | 'symlink';
  mode: number;
  /** sha256 of the content (files) or link target (symlinks). */
  digest?: string;
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

/** Every entry under `root`, sorted, so that the hash does not depend on directory order. */
export async function listTree(root: string, prefix: string): Promise<InputEntry[]> {
  if (!(await exists(root))) return [];
  const out: InputEntry[] = [];
  const walk = async (dir: string, rel: string) => {
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      const abs = join(dir, e.name);
      const relPath = `${rel}/${e.name}`;
      const st = await lstat(abs);
      if (st.isSymbolicLink()) {
        out.push({ path: relPath, kind: 'symlink', mode: 0o777, digest: sha256(await readlink(abs)) });
      } else if (st.isDirectory()) {
        out.push({ path: relPath, kind: 'dir', mode: st.mode & 0o7777 });
        await walk(abs, relPath);
      } else if (st.isFile()) {
        out.push({ path: relPath, kind: 'file', mode: st.mode & 0o7777, digest: sha256(await readFile(abs)) });
      }
    }
  };
  await walk(root, prefix);
  return out;
}

/** The scripts of an image, in the order they run: lexical. */
export async function listScripts(scriptsDir: string): Promise<string[]> {
  if (!(await exists(scriptsDir))) return [];
  return (await readdir(scriptsDir)).sort();
}

export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Canonical JSON: keys sorted, so that key order in the YAML does not change the hash. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * The input hash. `parent` is what the build starts from: the provider base ref, or the parent
 * image's version name, so a new parent version means a new hash and a rebuild.
 */
export async function inputHash(opts: {
  imageConfig: unknown;
  dirs: ImageDirs;
  parent: string;
}): Promise<string> {
  // No tests/ adds nothing, so versions built before image tests existed keep their hash.
  const entries = [
    ...(await listTree(opts.dirs.scriptsDir, 'scripts')),
    ...(await listTree(opts.dirs.filesDir, 'files')),
    ...(opts.dirs.testsDir ? await listTree(opts.dirs.testsDir, 'tests') : []),
  ];
  // Only a file's executable bit matters to a build; umask differences between clones must not.
  const normalised = entries.map((e) => ({ ...e, mode: e.kind === 'file' ? (e.mode & 0o111 ? 0o755 : 0o644) : 0 }));
  return sha256(canonicalJson({ v: 1, config: opts.imageConfig, parent: opts.parent, entries: normalised }));
}
