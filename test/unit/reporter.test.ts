/** The reporter when not on a terminal (logs, CI): every line stamped, and no long silence during a step. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Reporter, PLAIN_PROGRESS_MS, type ReporterClock } from '../../src/cli/reporter.js';
import { Redactor } from '../../src/core/redact.js';

/** A clock that moves only when told, firing its timers on the way. */
function fakeClock(start = Date.UTC(2026, 10, 30, 12, 0, 0)) {
  let now = start;
  const timers = new Set<{ ms: number; next: number; fn: () => void }>();
  const clock: ReporterClock = {
    now: () => now,
    every(ms, fn) {
      const timer = { ms, next: now + ms, fn };
      timers.add(timer);
      return () => timers.delete(timer);
    },
  };
  const advance = (ms: number) => {
    const end = now + ms;
    for (;;) {
      const due = [...timers].filter((t) => t.next <= end).sort((a, b) => a.next - b.next)[0];
      if (!due) break;
      now = due.next;
      due.next += due.ms;
      due.fn();
    }
    now = end;
  };
  return { clock, advance, timers };
}

function plainReporter(clock: ReporterClock, redactor = new Redactor()) {
  const lines: string[] = [];
  let pending = '';
  const stderr = {
    write(chunk: string) {
      pending += chunk;
      const parts = pending.split('\n');
      pending = parts.pop()!;
      lines.push(...parts);
      return true;
    },
  } as unknown as NodeJS.WriteStream;
  const stdout = { write: () => true } as unknown as NodeJS.WriteStream;
  return { reporter: new Reporter({ mode: 'plain', verbose: false, redactor, stderr, stdout, clock }), lines };
}

const stampOf = (line: string) => /^(\d\d):(\d\d):(\d\d) /.exec(line);
const secondsOf = (line: string) => {
  const [, h, m, s] = stampOf(line)!.map(Number);
  return h! * 3600 + m! * 60 + s!;
};

describe('reporter, not on a terminal', () => {
  it('stamps every line, the first ones and notices included', () => {
    const { clock } = fakeClock();
    const { reporter, lines } = plainReporter(clock);
    reporter.emit({ type: 'info', message: 'provider: local QEMU' });
    reporter.message('error: two problems\n  first\n  second');
    reporter.emit({ type: 'step', scope: 'app', step: 'ssh', message: 'waiting for SSH' });
    reporter.close();
    assert.equal(lines.length, 5);
    for (const line of lines) assert.ok(stampOf(line), `no timestamp: ${JSON.stringify(line)}`);
    assert.equal(lines[0], '12:00:00 provider: local QEMU');
    assert.equal(lines[4], '12:00:00 [app] waiting for SSH…');
  });

  it('prints a progress line at least every 15 s while a step runs, with its elapsed time', () => {
    const { clock, advance } = fakeClock();
    const { reporter, lines } = plainReporter(clock);
    reporter.emit({ type: 'step', scope: 'app', step: 'ssh', message: 'waiting for SSH' });
    advance(100_000);
    reporter.emit({ type: 'step-done', scope: 'app', step: 'ssh', durationMs: 100_000 });
    advance(60_000); // nothing runs now: silence is fine
    reporter.close();
    const ssh = lines.filter((l) => l.includes('waiting for SSH'));
    assert.match(ssh[0]!, /^12:00:00 \[app\] waiting for SSH…$/);
    assert.match(ssh.at(-1)!, /^12:01:40 \[app\] waiting for SSH: done in 100 s$/);
    assert.ok(ssh.slice(1, -1).every((l) => /\[app\] waiting for SSH… \d+ s$/.test(l)), ssh.join('\n'));
    const times = ssh.map(secondsOf);
    for (let i = 1; i < times.length; i++) assert.ok(times[i]! - times[i - 1]! <= PLAIN_PROGRESS_MS / 1000, `a gap of ${times[i]! - times[i - 1]!} s:\n${ssh.join('\n')}`);
    assert.ok(ssh.some((l) => / 45 s$/.test(l)) || ssh.some((l) => / 4\d s$/.test(l)), ssh.join('\n'));
    assert.equal(lines.length, ssh.length, 'no line after the step ended');
  });

  it('a step whose own output keeps coming gets no extra line; each running step is followed on its own', () => {
    const { clock, advance } = fakeClock();
    const { reporter, lines } = plainReporter(clock);
    reporter.emit({ type: 'step', scope: 'app', step: 'script', message: 'running 10-app.sh' });
    reporter.emit({ type: 'step', scope: 'db', step: 'ssh', message: 'waiting for SSH' });
    for (let i = 0; i < 6; i++) {
      advance(5_000);
      reporter.emit({ type: 'output', scope: 'app', source: '10-app.sh', stream: 'stdout', line: `step ${i}` });
    }
    reporter.close();
    assert.equal(lines.filter((l) => l.includes('[app] running 10-app.sh…')).length, 1, lines.join('\n'));
    const db = lines.filter((l) => l.includes('[db] waiting for SSH'));
    assert.deepEqual(db.map((l) => l.slice(9)), ['[db] waiting for SSH…', '[db] waiting for SSH… 15 s', '[db] waiting for SSH… 30 s']);
  });

  it('redacts secrets in progress lines too', () => {
    const { clock, advance } = fakeClock();
    const redactor = new Redactor();
    redactor.add('s3cr3t-value');
    const { reporter, lines } = plainReporter(clock, redactor);
    reporter.emit({ type: 'step', step: 'launch', message: 'creating with s3cr3t-value' });
    advance(20_000);
    reporter.close();
    assert.ok(lines.length >= 2);
    assert.ok(lines.every((l) => !l.includes('s3cr3t-value')), lines.join('\n'));
  });
});
