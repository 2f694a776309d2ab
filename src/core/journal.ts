/**
 * The run journal: before a command creates anything at a provider it writes down what, durably,
 * in the state directory. A normal exit (success, failure or Ctrl-C, all of which clean up) removes
 * the journal; one left by a process that is gone (SIGKILL, out of memory, power loss) tells the
 * next command what may be left at the provider, and `provisional cleanup` removes it.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { stateDir } from './paths.js';
import { processAlive } from './pid.js';

export interface JournalEntry {
  /**
   * What was (or was about to be) created: a machine, a snapshot being made, a complete version
   * that is not the user's yet (marked as being tested until its image tests pass), an endpoint.
   */
  kind: 'machine' | 'snapshot' | 'version' | 'endpoint';
  /** Machine name, version name for a snapshot or version, `ENV/IMAGE` for an endpoint. */
  name: string;
  /** The provider's id, once known. */
  id?: string;
  labels?: Record<string, string>;
}

export interface JournalRecord {
  runId: string;
  project: string;
  provider: string;
  pid: number;
  host: string;
  command: string;
  started: string;
  entries: JournalEntry[];
}

/** A short random id for one command's run: it names the journal and labels what the run creates. */
export function newRunId(): string {
  return randomBytes(4).toString('hex');
}

export function journalDir(project: string): string {
  return join(stateDir(), 'runs', project);
}

export class RunJournal {
  private writing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly path: string,
    readonly record: JournalRecord,
  ) {}

  static async open(project: string, provider: string, runId: string): Promise<RunJournal> {
    const dir = journalDir(project);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const journal = new RunJournal(join(dir, `${runId}.json`), {
      runId,
      project,
      provider,
      pid: process.pid,
      host: hostname(),
      command: process.argv.slice(2).join(' '),
      started: new Date().toISOString(),
      entries: [],
    });
    await journal.flush();
    return journal;
  }

  /** Write an entry down before the thing exists; resolves once it is on disk. */
  async add(entry: JournalEntry): Promise<void> {
    this.record.entries.push(entry);
    await this.flush();
  }

  async update(kind: JournalEntry['kind'], name: string, patch: Partial<JournalEntry>): Promise<void> {
    const entry = this.record.entries.find((e) => e.kind === kind && e.name === name);
    if (entry) Object.assign(entry, patch);
    await this.flush();
  }

  /** The thing is gone (or now belongs to the user, as a finished version does). */
  async remove(kind: JournalEntry['kind'], name: string): Promise<void> {
    this.record.entries = this.record.entries.filter((e) => !(e.kind === kind && e.name === name));
    await this.flush();
  }

  /**
   * The run ended. The journal goes if nothing is left in it; what could not be removed stays
   * written down for `provisional cleanup`.
   */
  async finish(): Promise<void> {
    await this.writing;
    if (!this.record.entries.length) await rm(this.path, { force: true });
  }

  /** Write to a temporary file, fsync, rename: a crash leaves the old journal or the new one. */
  private flush(): Promise<void> {
    const snapshot = JSON.stringify(this.record, null, 2);
    this.writing = this.writing.then(async () => {
      const temp = `${this.path}.tmp`;
      const handle = await open(temp, 'w', 0o600);
      try {
        await handle.writeFile(snapshot);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, this.path);
    });
    return this.writing;
  }
}


/** Journals of this project whose process is gone: runs that did not finish. */
export async function unfinishedRuns(project: string): Promise<JournalRecord[]> {
  const dir = journalDir(project);
  let files: string[];
  try {
    files = (await readdir(dir)).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  const runs: JournalRecord[] = [];
  for (const file of files) {
    try {
      const record = JSON.parse(await readFile(join(dir, file), 'utf8')) as JournalRecord;
      if (record.host !== hostname() || !processAlive(record.pid)) runs.push(record);
    } catch {
      // a journal that cannot be read is reported by cleanup, not here
    }
  }
  return runs;
}

/** Journals of this project whose process still runs (on this host). */
export async function activeRunIds(project: string): Promise<Set<string>> {
  const dir = journalDir(project);
  const ids = new Set<string>();
  let files: string[];
  try {
    files = (await readdir(dir)).filter((f) => f.endsWith('.json'));
  } catch {
    return ids;
  }
  for (const file of files) {
    try {
      const record = JSON.parse(await readFile(join(dir, file), 'utf8')) as JournalRecord;
      if (record.host === hostname() && processAlive(record.pid)) ids.add(record.runId);
    } catch {
      // unreadable: not active as far as we can tell
    }
  }
  return ids;
}

export async function forgetRun(project: string, runId: string): Promise<void> {
  await rm(join(journalDir(project), `${runId}.json`), { force: true });
}
