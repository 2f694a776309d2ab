/**
 * One machine's container: its files (the upper layer of its overlay) and its process tree
 * (`setpriv` -> `unshare` -> `sh` -> `systemd-nspawn --boot` -> the machine's systemd).
 *
 * The overlay is mounted inside a private mount namespace that only the container's processes
 * hold, so it vanishes with them, whatever way they end. `--pdeathsig TERM` asks nspawn to shut
 * the machine down (nspawn kills it) if the emulator's process dies without stopping it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, chown, lstat, mkdir, open, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../providers/local/process.js';

export interface ContainerSpec {
  /** Machine directory: upper/, work/, root/ and console.log live here. */
  dir: string;
  /** Read-only layers, topmost first. */
  lowerDirs: string[];
  hostname: string;
  address: string;
  sshPort: number;
}

const SSHD_CONFIG = (address: string, port: number) =>
  [
    '# Written by the Provisional emulator for this machine.',
    `ListenAddress ${address}:${port}`,
    'PermitRootLogin prohibit-password',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UseDNS no',
    'HostKey /etc/ssh/ssh_host_ed25519_key',
    'HostKey /etc/ssh/ssh_host_ecdsa_key',
    '',
  ].join('\n');

/**
 * Create `rel` (a directory path) in the upper layer with the owner and mode it has in the layers
 * below: overlayfs shows the upper directory's attributes, so a plain mkdir would turn /root 0755.
 */
async function mkdirLikeLower(upper: string, lowerDirs: string[], rel: string, fallbackMode: number): Promise<void> {
  let path = '';
  for (const part of rel.split('/').filter(Boolean)) {
    path = join(path, part);
    const target = join(upper, path);
    if (await lstat(target).catch(() => undefined)) continue;
    let mode = fallbackMode;
    let uid = 0;
    let gid = 0;
    for (const lower of lowerDirs) {
      const st = await lstat(join(lower, path)).catch(() => undefined);
      if (st?.isDirectory()) {
        mode = st.mode & 0o7777;
        uid = st.uid;
        gid = st.gid;
        break;
      }
    }
    await mkdir(target);
    await chmod(target, mode);
    await chown(target, uid, gid);
  }
}

async function writeRootFile(upper: string, lowerDirs: string[], rel: string, content: string, mode: number, dirMode = 0o755): Promise<void> {
  await mkdirLikeLower(upper, lowerDirs, rel.split('/').slice(0, -1).join('/'), dirMode);
  const path = join(upper, rel);
  await writeFile(path, content, { mode });
  await chmod(path, mode);
}

/** The files that make the machine this machine: name, sshd address, host keys, root's keys. */
export async function prepareUpper(spec: ContainerSpec, authorizedKeys: string[]): Promise<void> {
  const upper = join(spec.dir, 'upper');
  for (const sub of ['upper', 'work', 'root']) await mkdir(join(spec.dir, sub), { recursive: true });
  const lower = spec.lowerDirs;
  await writeRootFile(upper, lower, 'etc/hostname', `${spec.hostname}\n`, 0o644);
  await writeRootFile(upper, lower, 'etc/ssh/sshd_config.d/00-provisional-emulator.conf', SSHD_CONFIG(spec.address, spec.sshPort), 0o644);
  await writeRootFile(upper, lower, 'root/.ssh/authorized_keys', authorizedKeys.map((k) => `${k.trim()}\n`).join(''), 0o600, 0o700);
  for (const type of ['ed25519', 'ecdsa']) {
    const key = join(upper, `etc/ssh/ssh_host_${type}_key`);
    await run('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', `root@${spec.hostname}`, '-f', key], {
      timeoutMs: 30_000,
      operation: `generating the ${type} host key of ${spec.hostname}`,
    });
  }
}

/** Boots the machine; the returned process is systemd-nspawn's (its exit is the machine's stop). */
export async function bootContainer(spec: ContainerSpec): Promise<ChildProcess> {
  const root = join(spec.dir, 'root');
  const options = `lowerdir=${spec.lowerDirs.join(':')},upperdir=${join(spec.dir, 'upper')},workdir=${join(spec.dir, 'work')}`;
  const log = await open(join(spec.dir, 'console.log'), 'a');
  const script = [
    // setpriv set the parent-death signal before exec; if the emulator died before that, nobody
    // would stop this machine: the parent must still be the emulator.
    '[ "$PPID" = "$4" ] || exit 98',
    'mount -t overlay overlay -o "$1" "$2" || exit 97',
    'exec systemd-nspawn --quiet --boot --kill-signal=SIGKILL --keep-unit --register=no --link-journal=no --console=pipe --resolv-conf=copy-host --timezone=off -D "$2" --machine="$3" --hostname="$3"',
  ].join('\n');
  const child = spawn(
    'setpriv',
    ['--pdeathsig', 'TERM', '--', 'unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', options, root, spec.hostname, String(process.pid)],
    { detached: true, stdio: ['ignore', log.fd, log.fd] },
  );
  // The child holds its own copy of the descriptor.
  await log.close();
  return child;
}

/** Pids of every process below `pid` (a container's whole tree, seen from the host). */
export async function descendants(pid: number): Promise<number[]> {
  const parents = new Map<number, number[]>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // Field 4 (ppid) follows the command name, which is in parentheses and may contain spaces.
    const ppid = Number.parseInt(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1] ?? '', 10);
    if (!Number.isFinite(ppid)) continue;
    const list = parents.get(ppid) ?? [];
    list.push(Number(entry));
    parents.set(ppid, list);
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length) {
    for (const child of parents.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

/**
 * Asks the machine to power off as `machinectl poweroff` does: SIGRTMIN+3 to its systemd (the
 * container's PID 1, nspawn's child). Not via nspawn's SIGTERM, which this emulator reserves for
 * its own death (`--pdeathsig TERM` with `--kill-signal=SIGKILL`: a dead emulator's machines are
 * killed at once, even while they boot, when systemd would still ignore a shutdown signal).
 * Returns false if the machine has no init (yet, or any more).
 */
export async function requestPoweroff(nspawnPid: number): Promise<boolean> {
  const SIGRTMIN_PLUS_3 = 37; // Linux: SIGRTMIN is 34
  for (const pid of await descendants(nspawnPid)) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const ppid = Number.parseInt(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1] ?? '', 10);
    if (ppid !== nspawnPid) continue;
    try {
      process.kill(pid, SIGRTMIN_PLUS_3);
      return true;
    } catch {
      return false;
    }
  }
  return false;
}

/** Kills the machine's SSH sessions (sshd's per-connection processes), as a network drop would. */
export async function dropSshSessions(pid: number): Promise<number> {
  let killed = 0;
  for (const child of await descendants(pid)) {
    const cmdline = (await readFile(`/proc/${child}/cmdline`, 'utf8').catch(() => '')).replaceAll('\0', ' ');
    if (/^sshd: \S+@/.test(cmdline) || /^sshd: \S+ \[priv\]/.test(cmdline)) {
      try {
        process.kill(child, 'SIGKILL');
        killed++;
      } catch {
        // Gone already.
      }
    }
  }
  return killed;
}

/** Number of SSH sessions open on the machine. */
export async function sshSessions(pid: number): Promise<number> {
  let count = 0;
  for (const child of await descendants(pid)) {
    const cmdline = (await readFile(`/proc/${child}/cmdline`, 'utf8').catch(() => '')).replaceAll('\0', ' ');
    if (/^sshd: \S+@/.test(cmdline)) count++;
  }
  return count;
}
