/**
 * Where the local provider keeps things:
 *
 *   cacheDir()/bases/<ref>/                       a ready base (base.json written last), shared by projects
 *   cacheDir()/bases/<ref>.lock                   held while one process builds or downloads it
 *   dataDir()/local/<project>/images/<image>/     <version>.qcow2 + <version>.json (json last)
 *   dataDir()/local/<project>/machines/<id>/      overlay.qcow2, machine.json, qmp.sock, qemu.pid, serial.log
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { cacheDir, dataDir } from '../../core/paths.js';
import { UserFacingError } from '../../core/errors.js';

/** Names used as single path components must not be able to climb out of their folder. */
function component(kind: string, name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name) || name.includes('..')) {
    throw new UserFacingError(`the local provider cannot use ${kind} "${name}" as a file name`);
  }
  return name;
}

export const basesDir = (): string => join(cacheDir(), 'bases');
export const baseDir = (ref: string): string => join(basesDir(), component('base', ref));
export const baseLockFile = (ref: string): string => join(basesDir(), `${component('base', ref)}.lock`);

export const projectDir = (project: string): string => join(dataDir(), 'local', component('project', project));
export const imagesDir = (project: string): string => join(projectDir(project), 'images');
export const imageDir = (project: string, image: string): string => join(imagesDir(project), component('image', image));
export const machinesDir = (project: string): string => join(projectDir(project), 'machines');
export const machineDir = (project: string, id: string): string => join(machinesDir(project), component('machine', id));

export function versionFiles(project: string, image: string, version: string): { disk: string; meta: string } {
  const dir = imageDir(project, image);
  const name = component('version', version);
  return { disk: join(dir, `${name}.qcow2`), meta: join(dir, `${name}.json`) };
}

/**
 * A Unix socket in `dir`, unless that path is too long for a socket address (108 bytes on
 * Linux, less what the program listening needs: `maxBytes`); then in a short private folder,
 * named by a hash of the path. Not an abstract socket: Node and QEMU disagree on their address
 * length across versions, so a file path is portable.
 */
export function socketPath(dir: string, file: string, kind: string, maxBytes = 100): string {
  const path = join(dir, file);
  if (Buffer.byteLength(path) <= maxBytes) return path;
  return join(`/tmp/provisional-${kind}-${process.getuid?.() ?? 0}`, `${createHash('sha256').update(dir).digest('hex').slice(0, 24)}.sock`);
}
