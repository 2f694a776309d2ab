import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir, hostname } from 'node:os';
import { join } from 'node:path';
import { acquireLock, LockedError } from '../../src/core/lock.js';
import { CleanupStack } from '../../src/core/cleanup.js';
import { poll } from '../../src/core/wait.js';
import { CancelledError } from '../../src/core/errors.js';
import { Redactor } from '../../src/core/redact.js';
import { openBuildLog } from '../../src/cli/build-log.js';

describe('locks', () => {
  it('refuse a second holder, naming the first, and take over a stale lock', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'provisional-lock-'));
    try {
      const path = join(dir, 'image-app.lock');
      const lock = await acquireLock(path, 'image app');
      await assert.rejects(acquireLock(path, 'image app'), (err: Error) => {
        assert.ok(err instanceof LockedError);
        assert.match(err.message, new RegExp(`image app is busy: .*pid ${process.pid}`));
        return true;
      });
      await lock.release();
      // A lock left by a process that no longer exists is taken over.
      writeFileSync(path, JSON.stringify({ pid: 2 ** 22 + 12345, host: hostname(), command: 'image create app', since: 'then' }));
      const again = await acquireLock(path, 'image app');
      assert.equal(JSON.parse(readFileSync(path, 'utf8')).pid, process.pid);
      await again.release();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('cleanup stack', () => {
  it('undoes in reverse order, reports failures and goes on', async () => {
    const done: string[] = [];
    const stack = new CleanupStack();
    stack.defer('a', async () => void done.push('a'));
    const forget = stack.defer('b', async () => void done.push('b'));
    stack.defer('c', async () => {
      throw new Error('boom');
    });
    stack.defer('d', async () => void done.push('d'));
    forget();
    const warnings: string[] = [];
    const { failed } = await stack.unwind({ emit: (e) => e.type === 'warn' && warnings.push(e.message) });
    assert.deepEqual(done, ['d', 'a']);
    assert.deepEqual(failed, ['c']);
    assert.match(warnings[0]!, /could not clean up c: boom/);
  });
});

describe('poll', () => {
  it('returns the first value, times out with what it waited for, and stops on abort', async () => {
    let n = 0;
    assert.equal(await poll(async () => (++n >= 3 ? n : undefined), { what: 'x', timeoutMs: 5000, intervalMs: 1 }), 3);
    await assert.rejects(poll(async () => undefined, { what: 'SSH on the builder', timeoutMs: 50, intervalMs: 10 }), /waiting for SSH on the builder/);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 20);
    await assert.rejects(poll(async () => undefined, { what: 'x', timeoutMs: 5000, intervalMs: 5, signal: controller.signal }), CancelledError);
  });
});

describe('build log', () => {
  it('is written with mode 0600 and redacted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'provisional-log-'));
    const saved = process.env.PROVISIONAL_STATE_DIR;
    process.env.PROVISIONAL_STATE_DIR = dir;
    try {
      const redactor = new Redactor();
      redactor.add('hunter2-secret');
      const log = await openBuildLog('proj', 'app', 'abcd', redactor);
      log.sink.emit({ type: 'output', source: '10-a.sh', stream: 'stdout', line: 'password is hunter2-secret' });
      await log.close();
      assert.equal(statSync(log.path).mode & 0o777, 0o600);
      const text = readFileSync(log.path, 'utf8');
      assert.match(text, /10-a\.sh \| password is \[redacted\]/);
      assert.ok(!text.includes('hunter2'));
    } finally {
      process.env.PROVISIONAL_STATE_DIR = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('run journal', () => {
  it('is written durably, keeps what was not removed, and tells dead runs from live ones', async () => {
    const { RunJournal, unfinishedRuns, activeRunIds } = await import('../../src/core/journal.js');
    const dir = mkdtempSync(join(tmpdir(), 'provisional-journal-'));
    const saved = process.env.PROVISIONAL_STATE_DIR;
    process.env.PROVISIONAL_STATE_DIR = dir;
    try {
      const journal = await RunJournal.open('proj', 'local', 'run1');
      await journal.add({ kind: 'machine', name: 'builder-1' });
      await journal.update('machine', 'builder-1', { id: 'm-1' });
      const onDisk = JSON.parse(readFileSync(join(dir, 'runs', 'proj', 'run1.json'), 'utf8'));
      assert.deepEqual(onDisk.entries, [{ kind: 'machine', name: 'builder-1', id: 'm-1' }]);
      assert.equal(statSync(join(dir, 'runs', 'proj', 'run1.json')).mode & 0o777, 0o600);
      assert.ok((await activeRunIds('proj')).has('run1'));
      assert.deepEqual(await unfinishedRuns('proj'), []);
      await journal.finish();
      assert.ok(existsSync(join(dir, 'runs', 'proj', 'run1.json')), 'a journal with entries left must stay');
      // The same journal as a dead process would have left it.
      writeFileSync(join(dir, 'runs', 'proj', 'run1.json'), JSON.stringify({ ...onDisk, pid: 2 ** 22 + 4242 }));
      assert.deepEqual((await unfinishedRuns('proj')).map((r) => r.runId), ['run1']);
      const clean = await RunJournal.open('proj', 'local', 'run2');
      await clean.add({ kind: 'snapshot', name: 'v1' });
      await clean.remove('snapshot', 'v1');
      await clean.finish();
      assert.ok(!existsSync(join(dir, 'runs', 'proj', 'run2.json')));
    } finally {
      process.env.PROVISIONAL_STATE_DIR = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
