/**
 * What every fault case checks afterwards: nothing left at the provider or on disk, the old
 * servers still serving, no version lost, no stack trace, and no secret in any output or log.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { Transcript } from './runner.js';
import type { FaultTarget, Inventory } from './target.js';

export interface Baseline {
  inventory: Inventory;
  /** Version name -> status, as `image list --json` showed them. */
  versions: Map<string, string>;
}

/** Versions listed and available before that are gone or unavailable now. */
export function versionsLost(before: Map<string, string>, after: Map<string, string>): string[] {
  return [...before]
    .filter(([, status]) => status === 'available')
    .filter(([version]) => after.get(version) !== 'available')
    .map(([version]) => `${version} (${after.get(version) ?? 'gone'})`);
}

/** A Node stack trace (allowed only under --debug). */
export function stackTraceIn(text: string, mode: string[]): boolean {
  return !mode.includes('--debug') && /^(\d\d:\d\d:\d\d )?\s+at .+:\d+:\d+\)?$/m.test(text); // lines may carry a timestamp
}

async function files(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const out: string[] = [];
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await files(path)));
    else out.push(path);
  }
  return out;
}

/** The environment a command deploys to. */
function environmentOf(command: string): string | undefined {
  return command === 'warm' ? 'staging' : command === 'cold' ? 'cold' : undefined;
}

function diff(target: FaultTarget, before: Baseline, after: Inventory, how: { command: string; committed: boolean }): string[] {
  const found: string[] = [];
  const known = new Set(before.inventory.machines.map((m) => m.id));
  const env = environmentOf(how.command);
  for (const m of after.machines.filter((m) => !known.has(m.id))) {
    if (how.committed && m.env && m.env === env) continue;
    found.push(`${m.env ? 'server' : 'builder'} ${m.name} (${m.id}${m.running ? ', running' : ''})`);
  }
  // Servers that ran when the case began (one a previous step was still terminating is not one of them).
  const oldServers = before.inventory.machines.filter((m) => m.env && m.running);
  for (const old of oldServers) {
    const now = after.machines.find((m) => m.id === old.id);
    // A committed warm deploy replaces staging's servers; everything else must leave them be.
    if (how.committed && old.env === env) continue;
    if (!now || !now.running) found.push(`old server ${old.name} (${old.id}) ${now ? 'no longer running' : 'destroyed'}`);
  }
  if (how.committed && env === 'staging' && !after.machines.some((m) => m.env === 'staging' && m.running)) found.push('staging has no running server');
  const temporaries = new Set(before.inventory.temporaries);
  found.push(...after.temporaries.filter((t) => !temporaries.has(t)));
  return found.map((f) => `${target.provider}: ${f}`);
}

/**
 * What the case left behind, once the provider settled (a destroyed droplet's machine, a
 * terminating instance take a moment): polled until nothing is found or the time is up.
 */
export async function findLeftovers(
  target: FaultTarget,
  before: Baseline,
  how: { command: string; committed: boolean; killed: boolean },
  transcript: Transcript,
): Promise<string[]> {
  const deadline = Date.now() + (target.slow ? 60_000 : 30_000);
  let found: string[];
  for (;;) {
    const busy = await target.busy();
    found = diff(target, before, await target.inventory(), how);
    if ((!found.length && !busy) || Date.now() > deadline) break;
    await delay(500);
  }
  const runs = await files(join(target.stateDir, 'runs'));
  found.push(...runs.filter((f) => f.endsWith('.json')).map((f) => `run journal ${f}`));
  // A killed process cannot release its lock (the next command takes a stale one over); one that
  // exited by itself, whatever its exit code, must have.
  const exited = new Set(transcript.calls.filter((c) => c.result.code !== null).map((c) => c.pid));
  for (const lock of await files(join(target.stateDir, 'locks'))) {
    const holder = JSON.parse(await readFile(lock, 'utf8').catch(() => '{}')) as { pid?: number };
    if (exited.has(holder.pid)) found.push(`lock ${lock} of pid ${holder.pid}, which exited`);
  }
  return found;
}

/** Where a secret showed up: CLI output of the given transcripts and, with `logs`, every build log. */
export async function findLeaks(target: FaultTarget, transcripts: Transcript[], opts: { logs?: boolean } = {}): Promise<string[]> {
  const leaks: string[] = [];
  const look = (where: string, text: string) => {
    for (const secret of target.secrets) if (text.includes(secret)) leaks.push(`${where} shows ${secret.slice(0, 6)}…`);
  };
  for (const t of transcripts) {
    for (const call of t.calls) {
      look(`stdout of provisional ${call.args.join(' ')}`, call.result.stdout);
      look(`stderr of provisional ${call.args.join(' ')}`, call.result.stderr);
    }
  }
  if (opts.logs) {
    const logs = await files(join(target.stateDir, 'logs'));
    let printed = 0;
    for (const log of logs) {
      const text = await readFile(log, 'utf8');
      look(log, text);
      if (text.includes('canary: [redacted]')) printed++;
      const mode = (await stat(log)).mode & 0o777;
      if (mode !== 0o600) leaks.push(`${log} has mode ${mode.toString(8)}, not 600`);
    }
    // The scripts print the canary: if no log shows it redacted, the check above proved nothing.
    if (!printed) leaks.push(`no build log (of ${logs.length}) shows the canary redacted`);
  }
  return leaks;
}
