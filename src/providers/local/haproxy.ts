/**
 * One HAProxy (Debian's) per local endpoint, daemonised so that it outlives the command, found
 * again by its pid file and the config path on its command line. Members change through its
 * runtime API (the admin socket: add server, set server state drain/maint, del server), never by
 * restarting it, so no connection is dropped; the config file is rewritten with every change as
 * well, so that a HAProxy started again (after a crash or a reboot) has the same members. A
 * change of the listener itself is a seamless reload: the new process takes the listening sockets
 * from the old one (-x) and the old one finishes its connections (-sf).
 */
import { connect } from 'node:net';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ProviderError } from '../../core/errors.js';
import { sleep } from '../../core/wait.js';
import { socketPath } from './layout.js';
import { processMatches, run } from './process.js';

export const HAPROXY = 'haproxy';
export const BACKEND = 'members';

/** The admin socket of the HAProxy in `dir`: 97 bytes at most, as HAProxy binds a temporary name beside it (it refuses longer paths). */
export const adminSocket = (dir: string): string => socketPath(dir, 'admin.sock', 'haproxy', 97);

export interface HaproxyMember {
  /** The HAProxy server name (the machine id). */
  server: string;
  host: string;
  port: number;
}

export interface HaproxySetup {
  dir: string;
  /** The admin socket (short enough for a socket address). */
  socket: string;
  address: string;
  port: number;
  protocol: 'http' | 'tcp';
  health?: { path: string; status: number };
  members: HaproxyMember[];
}

const CONFIG = 'haproxy.cfg';
/**
 * A member is checked every 5 s (1 s once a check failed), each check given 30 s to answer; 6
 * failures in a row take it out, 2 passes put it back. A dead member (refused, reset) is out within
 * seconds, a slow one (a busy, software-emulated machine) stays: deploy found it healthy before it
 * joined, and taking out every slow member would leave none (requests to a dead one are retried on
 * another meanwhile). In the e2e on a loaded TCG host, 10 s and 3 failures took all members out.
 */
export const CHECK = 'check inter 5s fastinter 1s downinter 5s fall 6 rise 2';
const PID = 'haproxy.pid';

export function renderConfig(setup: HaproxySetup): string {
  const check = setup.protocol === 'http' && setup.health ? [`  option httpchk GET ${setup.health.path}`, `  http-check expect status ${setup.health.status}`] : [];
  return [
    '# Written by Provisional: members change through the admin socket; this file follows them.',
    'global',
    `  stats socket ${setup.socket} mode 600 level admin expose-fd listeners`,
    '  hard-stop-after 5m',
    'defaults',
    `  mode ${setup.protocol}`,
    '  timeout connect 5s',
    // Servers under load (software-emulated machines) may take seconds to answer a check.
    '  timeout check 30s',
    '  timeout client 60s',
    '  timeout server 60s',
    // A connection refused by a member that just went away is retried on another one.
    '  retries 3',
    '  option redispatch',
    ...(setup.protocol === 'http' ? ['  retry-on conn-failure empty-response response-timeout'] : []),
    'frontend endpoint',
    `  bind ${setup.address}:${setup.port}`,
    `  default_backend ${BACKEND}`,
    `backend ${BACKEND}`,
    '  balance roundrobin',
    ...check,
    ...setup.members.map((m) => `  server ${m.server} ${m.host}:${m.port} ${CHECK}`),
    '',
  ].join('\n');
}

export async function writeConfig(setup: HaproxySetup): Promise<void> {
  await writeFile(join(setup.dir, `${CONFIG}.new`), renderConfig(setup));
  await run(HAPROXY, ['-c', '-q', '-f', join(setup.dir, `${CONFIG}.new`)], { timeoutMs: 30_000, operation: 'checking the HAProxy config' });
  await writeFile(join(setup.dir, CONFIG), renderConfig(setup));
  await rm(join(setup.dir, `${CONFIG}.new`), { force: true });
}

/** The pid of this endpoint's HAProxy, if it runs. */
export async function runningPid(dir: string): Promise<number | undefined> {
  const pid = Number((await readFile(join(dir, PID), 'utf8').catch(() => '')).trim());
  return pid > 0 && (await processMatches(pid, join(dir, CONFIG))) ? pid : undefined;
}

/** Start HAProxy on the written config; with `replacing`, a seamless reload of that process. */
export async function start(setup: HaproxySetup, replacing?: number): Promise<void> {
  const args = ['-D', '-f', join(setup.dir, CONFIG), '-p', join(setup.dir, PID)];
  if (replacing) args.push('-x', setup.socket, '-sf', String(replacing));
  try {
    await run(HAPROXY, args, { timeoutMs: 30_000, operation: 'starting HAProxy' });
  } catch (err) {
    throw new ProviderError({ provider: 'local', operation: `starting HAProxy on ${setup.address}:${setup.port}`, message: (err as Error).message, cause: err });
  }
  for (let waited = 0; !(await runningPid(setup.dir)); waited += 50) {
    if (waited > 10_000) throw new ProviderError({ provider: 'local', operation: 'starting HAProxy', message: `no HAProxy runs for ${setup.dir} after 10 s` });
    await sleep(50);
  }
}

/** SIGUSR1 (finish open connections, then exit), and SIGTERM if it is still there after `graceMs`. */
export async function stop(dir: string, graceMs = 5000): Promise<void> {
  const pid = await runningPid(dir);
  if (!pid) return;
  process.kill(pid, 'SIGUSR1');
  for (let waited = 0; await runningPid(dir); waited += 100) {
    if (waited === graceMs) process.kill(pid, 'SIGTERM');
    if (waited > graceMs + 5000) throw new ProviderError({ provider: 'local', operation: 'stopping HAProxy', message: `process ${pid} did not exit` });
    await sleep(100);
  }
}

/** One command on the admin socket; resolves with its answer. */
export function admin(socket: string, command: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const conn = connect({ path: socket });
    let answer = '';
    const timer = setTimeout(() => conn.destroy(new Error(`HAProxy did not answer "${command}" within ${timeoutMs} ms`)), timeoutMs);
    conn.setEncoding('utf8');
    conn.on('data', (chunk: string) => (answer += chunk));
    conn.on('error', (err) => {
      clearTimeout(timer);
      reject(new ProviderError({ provider: 'local', operation: `HAProxy: ${command}`, message: err.message, cause: err }));
    });
    conn.on('end', () => {
      clearTimeout(timer);
      resolve(answer.trim());
    });
    conn.write(`${command}\n`);
  });
}

/** A command whose answer must not be an error (HAProxy answers errors as text). */
export async function adminOk(socket: string, command: string): Promise<string> {
  const answer = await admin(socket, command);
  if (/^(No such|Unknown|Require|Can't|Cannot|.*not found|.*invalid|.*error)/im.test(answer)) {
    throw new ProviderError({ provider: 'local', operation: `HAProxy: ${command}`, message: answer.split('\n')[0]! });
  }
  return answer;
}

export interface ServerStat {
  server: string;
  /** UP, DOWN, DRAIN, MAINT, "no check", "UP 1/2"... */
  status: string;
  /** Open connections. */
  current: number;
}

/** The members as HAProxy sees them (`show stat`, CSV). */
export async function serverStats(socket: string): Promise<ServerStat[]> {
  const lines = (await admin(socket, 'show stat')).split('\n').filter(Boolean);
  const header = lines.shift()?.replace(/^# /, '').split(',') ?? [];
  const col = (name: string) => header.indexOf(name);
  return lines
    .map((line) => line.split(','))
    .filter((f) => f[col('pxname')] === BACKEND && f[col('svname')] !== 'BACKEND')
    .map((f) => ({ server: f[col('svname')]!, status: f[col('status')]!, current: Number(f[col('scur')] ?? 0) }));
}
