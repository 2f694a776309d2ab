/**
 * Keys authorised on deployed servers: the project's deploy key (kept in the state directory,
 * mode 0600, used by health checks and `provisional ssh`) and the user's own public key, so that
 * plain `ssh` works too.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { stateDir } from './paths.js';
import { generateKeyPair } from '../ssh/client.js';

export interface DeployKeys {
  privateKey: string;
  privateKeyPath: string;
  /** authorized_keys content: one key a line. */
  authorizedKeys: string;
}

export async function deployKeys(project: string, userKeyPath?: string): Promise<DeployKeys> {
  const dir = join(stateDir(), 'keys', project);
  const privateKeyPath = join(dir, 'id_ed25519');
  let privateKey: string;
  let publicKey: string;
  if (existsSync(privateKeyPath)) {
    privateKey = await readFile(privateKeyPath, 'utf8');
    publicKey = (await readFile(`${privateKeyPath}.pub`, 'utf8')).trim();
  } else {
    const pair = generateKeyPair(`provisional-deploy-${project}`);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFile(privateKeyPath, pair.privateKey, { mode: 0o600, flag: 'wx' });
    await writeFile(`${privateKeyPath}.pub`, `${pair.publicKey}\n`, { mode: 0o644 });
    await chmod(privateKeyPath, 0o600);
    privateKey = pair.privateKey;
    publicKey = pair.publicKey;
  }
  const lines = [publicKey];
  const userKey = userKeyPath ?? join(homedir(), '.ssh', 'id_ed25519.pub');
  if (existsSync(userKey)) lines.push((await readFile(userKey, 'utf8')).trim());
  return { privateKey, privateKeyPath, authorizedKeys: `${lines.join('\n')}\n` };
}

/**
 * The key of the runtime-config labels (see runtime-config.ts), next to the deploy key. It never
 * leaves this machine: with it lost, the next warm deploy sees every config as changed and
 * replaces the servers once, which is safe.
 */
export async function runtimeConfigKey(project: string): Promise<Buffer> {
  const dir = join(stateDir(), 'keys', project);
  const path = join(dir, 'config-hmac.key');
  if (existsSync(path)) return readFile(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  try {
    await writeFile(path, key, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    // Another deploy of this project made it first: use theirs.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readFile(path);
    throw err;
  }
  return key;
}
