/** Helpers for the emulator tests: SSH keys, and what a machine could leave behind on the host. */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../../src/providers/local/process.js';

export interface KeyPair {
  publicKey: string;
  privateKey: string;
  /** A file holding the private key (for clients that read one, such as Packer or ssh). */
  privateKeyPath: string;
  cleanup(): Promise<void>;
}

export async function makeKeyPair(): Promise<KeyPair> {
  const dir = await mkdtemp(join(tmpdir(), 'emulator-key-'));
  const path = join(dir, 'id_ed25519');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'emulator-test', '-f', path], { timeoutMs: 30_000, operation: 'ssh-keygen' });
  return {
    publicKey: (await readFile(`${path}.pub`, 'utf8')).trim(),
    privateKey: await readFile(path, 'utf8'),
    privateKeyPath: path,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Overlay mounts (in any process's mount namespace) whose upper or lower directories are under `dir`. */
export async function overlayMountsBelow(dir: string): Promise<string[]> {
  const found = new Set<string>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const mounts = await readFile(`/proc/${entry}/mounts`, 'utf8').catch(() => '');
    for (const line of mounts.split('\n')) if (line.startsWith('overlay ') && line.includes(dir)) found.add(line);
  }
  return [...found];
}

/** Pids of systemd-nspawn processes whose machine lives under `dir`. */
export { nspawnProcesses as nspawnPids } from '../../../src/emulators/machines/pool.js';
