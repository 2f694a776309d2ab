/**
 * The shared engine of the fault matrix: every row of matrix.ts becomes one test that runs the
 * real CLI against a FaultTarget, interrupts or faults it, and then checks the same things for
 * every provider (checks.ts): nothing left at the provider, no version lost, the old servers still
 * serving, a clear exit code, and the canary in no output or log.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { startCli, type CliResult, type CliRun } from '../helpers/cli.js';
import { BUILD_STEPS, TESTED_BUILD_STEPS, describeCase, type BuildStep, type TestedBuildStep, type ConcurrentCase, type FaultCase, type MatrixCase, type SignalCase } from './matrix.js';
import { recordResult, type CaseResult } from './results.js';
import { findLeftovers, findLeaks, stackTraceIn, versionsLost, type Baseline } from './checks.js';
import type { FaultTarget } from './target.js';

/** Output modes taken in turn, so that the canary is looked for in each of them. */
const OUTPUT_MODES: string[][] = [[], ['--json'], ['--debug'], ['--json', '--debug'], ['--verbose']];

export interface Transcript {
  /** Every CLI call of the case: its arguments and what it printed. */
  calls: { args: string[]; pid?: number; result: CliResult }[];
}

/** A command's --json result: its last line (events, such as a warning about runs to clean up, may come first). */
function resultDocument(stdout: string): unknown {
  return JSON.parse(stdout.trim().split('\n').at(-1)!);
}

export class CaseContext<T extends FaultTarget> {
  readonly transcript: Transcript = { calls: [] };
  constructor(readonly target: T) {}

  start(args: string[], env: NodeJS.ProcessEnv = {}): CliRun {
    const run = startCli(args, { cwd: this.target.project.dir, env: { ...this.target.env, ...env } });
    void run.done.then((result) => this.transcript.calls.push({ args, pid: run.child.pid, result }));
    return run;
  }

  async cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
    return this.start(args, env).done;
  }

  async ok(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
    const r = await this.cli(args, env);
    assert.equal(r.code, 0, `provisional ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r;
  }

  /** Versions the CLI lists: name -> status. */
  async versions(): Promise<Map<string, string>> {
    const r = await this.ok(['image', 'list', '--json']);
    const doc = resultDocument(r.stdout) as { images: { versions: { version: string; status: string; testing?: string }[] }[] };
    // A version still marked as being tested is not available: its tests never passed.
    return new Map(doc.images.flatMap((i) => i.versions.map((v) => [v.version, v.testing ? `being tested by run ${v.testing}` : v.status] as const)));
  }

  async baseline(): Promise<Baseline> {
    // Let what the preparation started settle (instances of a rollback terminating) first.
    for (const deadline = Date.now() + 30_000; (await this.target.busy()) && Date.now() < deadline; ) await delay(250);
    return { inventory: await this.target.inventory(), versions: await this.versions() };
  }
}

/** The regular expression that tells a build step began, in any output mode. */
function stepPattern(step: BuildStep | TestedBuildStep | 'launch'): RegExp {
  const text: Record<BuildStep | TestedBuildStep, string> = {
    launch: 'launching builder from|creating from',
    ssh: 'waiting for SSH…',
    upload: 'uploading files and scripts…',
    script: 'sleeping',
    clean: 'removing build leftovers',
    stop: 'waiting for the builder to stop…',
    snapshot: '\\] saving app-',
    distribute: '\\] copying app-',
    destroy: 'removing the builder…',
    'test-launch': 'launching a test server from',
    'test-ssh': 'waiting for SSH on the test server…',
    // The image test prints it, then sleeps (FAULT_TEST_SLOW): the signal lands while it runs.
    test: 'test sleeping',
    tested: 'passed its \\d+ tests?',
  };
  return step === 'script' ? /(?<!test )sleeping/ : step === 'test' ? /test sleeping/ : new RegExp(`"type":"step","step":"${step}"|${text[step]}`);
}

function commandArgs(command: SignalCase['command'] | FaultCase['command']): string[] {
  switch (command) {
    case 'build':
      return ['image', 'create', 'app'];
    case 'build-timed':
      return ['image', 'create', 'timed'];
    case 'build-tested':
      return ['image', 'create', 'tested'];
    case 'cold':
      return ['deploy', 'cold', '--cold'];
    case 'warm':
      return ['deploy', 'staging'];
  }
}

/**
 * Before a deploy case: `staging` runs an older version of app than the newest (so that a warm
 * deploy has something to replace), and `cold` has no server.
 */
async function prepare<T extends FaultTarget>(ctx: CaseContext<T>, command: string): Promise<void> {
  if (command === 'warm') {
    const servers = (resultDocument((await ctx.ok(['server', 'list', 'staging', '--json'])).stdout) as { servers: { version: string }[] }).servers as { version: string }[];
    const versions = [...(await ctx.versions()).keys()].filter((v) => v.startsWith('app-')).sort();
    const newest = versions.at(-1)!;
    if (!servers.length || servers.some((s) => s.version === newest)) await ctx.ok(['rollback', 'staging', 'app', '--to', versions[0]!]);
  }
  if (command === 'cold') {
    const servers = (resultDocument((await ctx.ok(['server', 'list', 'cold', '--json'])).stdout) as { servers: unknown[] }).servers as unknown[];
    if (servers.length) await ctx.ok(['destroy', 'cold', '--yes']);
  }
}

/** Resolves once the running command announced the step `at` (its event or line); rejects if it ended before. */
async function reach(run: CliRun, command: string, at: string, timeoutMs: number): Promise<void> {
  if (command === 'build' || command === 'build-timed' || command === 'build-tested') return run.waitFor(stepPattern(at as BuildStep), timeoutMs);
  switch (at) {
    case 'plan':
      return run.waitFor(/"type":"plan"|deploying (staging|cold):/, timeoutMs);
    case 'launch':
      return run.waitFor(stepPattern('launch'), timeoutMs);
    case 'health':
      return run.waitFor(HEALTH_STARTED, timeoutMs);
    case 'destroy-old':
      return run.waitFor(/destroying app\d+\.staging/, timeoutMs);
    case 'deploy-script':
      return run.waitFor(/deploy sleeping/, timeoutMs);
  }
  throw new Error(`unknown point ${at}`);
}

const HEALTH_STARTED = /"type":"step","step":"health"|\] waiting for SSH(?: and the health check)?…/;
const HEALTH_DONE = /healthy \(SSH/;
const INTERRUPTED = /interrupted: cleaning up/;

/**
 * What the command printed before the signal landed: with SIGINT, everything before its
 * "interrupted" notice (in the stream that carries the steps: stdout with --json, else stderr);
 * with SIGKILL, everything (pipes are written synchronously, so nothing printed is lost).
 */
function printedBeforeLanding(r: CliResult, signal: SignalCase['signal'], json: boolean): string {
  const stream = json ? r.stdout : r.stderr;
  if (signal === 'SIGKILL') return stream;
  const at = stream.search(INTERRUPTED);
  if (at < 0) throw new Error(`SIGINT never landed: no "interrupted" notice (exit ${r.code})\n${r.stderr}`);
  return stream.slice(0, at);
}

/** Where the last match of `pattern` in `text` begins, or -1. */
function lastMatch(text: string, pattern: RegExp): number {
  let at = -1;
  for (const m of text.matchAll(new RegExp(pattern.source, 'g'))) at = m.index!;
  return at;
}

/**
 * Why the signal did not land at `at`, or undefined when it did. The case saw the step begin
 * before it sent the signal; what the command printed before the signal landed must not show a
 * later step begun (nor, with --json, this step's end). A deploy's plan is followed within
 * milliseconds by the launch (local files only, nothing at the provider yet), so a signal at the
 * plan may land at either, not later.
 */
function missedStep(c: SignalCase, before: string, json: boolean): string | undefined {
  const began = (pattern: RegExp) => new RegExp(pattern.source).test(before);
  if (c.command === 'build' || c.command === 'build-tested') {
    const steps: readonly (BuildStep | TestedBuildStep)[] = c.command === 'build' ? BUILD_STEPS : TESTED_BUILD_STEPS;
    const later = steps.slice(steps.indexOf(c.at as BuildStep) + 1).find((s) => began(stepPattern(s)));
    if (later) return `the ${later} step had begun`;
    const start = lastMatch(before, stepPattern(c.at as BuildStep));
    if (json && start >= 0 && before.slice(start).includes(`"type":"step-done","step":"${c.at}"`)) return `the ${c.at} step had ended`;
    return undefined;
  }
  const destroying = /destroying app\d+\.staging/;
  switch (c.at) {
    case 'plan':
    case 'launch':
      return began(HEALTH_STARTED) ? 'the health checks had begun' : undefined;
    case 'health': {
      const started = before.match(new RegExp(HEALTH_STARTED.source, 'g'))?.length ?? 0;
      const done = before.match(new RegExp(HEALTH_DONE.source, 'g'))?.length ?? 0;
      if (done >= started || began(destroying)) return 'every new server was already healthy';
      return undefined;
    }
    case 'deploy-script':
      // The deploy script sleeps after `deploy sleeping`: its end, or the server healthy, means the signal came late.
      return began(/deploy\/10-deploy\.sh done|healthy \(SSH/) || began(destroying) ? 'the deploy script had ended' : undefined;
    case 'destroy-old':
      return undefined; // the last point: that the command had not ended is checked by its exit
  }
  return `unknown point ${c.at}`;
}

function withTimeout<V>(promise: Promise<V>, ms: number, what: string): Promise<V> {
  // Unref'd: a pending time limit must not keep the test process alive once the matrix is done.
  return Promise.race([promise, delay(ms, undefined, { ref: false }).then(() => Promise.reject(new Error(`${what} took longer than ${ms / 1000} s`)))]);
}

/**
 * A signal case passes only if its signal landed while the command was at the step it names:
 * the case waits for that step's event, sends the signal, and then fails if the command ended
 * before the signal landed (it finished, or exited otherwise) or if its output shows the signal
 * landed at another step.
 */
async function runSignalCase<T extends FaultTarget>(ctx: CaseContext<T>, c: SignalCase, mode: string[], result: CaseResult): Promise<void> {
  const { target } = ctx;
  await prepare(ctx, c.command);
  const before = await ctx.baseline();
  const env = c.at === 'script' ? { FAULT_SLOW: '60' } : c.at === 'deploy-script' ? { DEPLOY_SLOW: '60' } : c.at === 'test' ? { FAULT_TEST_SLOW: '60' } : {};
  const run = ctx.start([...mode, ...commandArgs(c.command)], env);
  const limit = target.slow ? 240_000 : 90_000;
  try {
    await reach(run, c.command, c.at, limit);
  } catch (err) {
    run.child.kill('SIGKILL');
    throw err;
  }
  run.child.kill(c.signal);
  result.injected = 1;
  const r = await withTimeout(run.done, limit, `provisional ${commandArgs(c.command).join(' ')} after ${c.signal}`);
  const json = mode.includes('--json');
  // After these points the work is saved: the command may finish it (exit 0) once interrupted.
  const committed = c.at === 'destroy-old' || ((c.command === 'build' || c.command === 'build-tested') && (c.at === 'destroy' || c.at === 'distribute'));
  if (c.signal === 'SIGKILL') assert.equal(r.code, null, `the command ended (exit ${r.code}) before SIGKILL landed\n${r.stderr}`);
  // SIGINT: the notice of the CLI's handler proves it landed while the command ran (throws if absent).
  const missed = missedStep(c, printedBeforeLanding(r, c.signal, json), json);
  assert.equal(missed, undefined, `${c.signal} did not land at ${c.at}: ${missed}\n${json ? r.stdout : r.stderr}`);
  if (c.signal === 'SIGINT') assert.ok(r.code === 130 || (committed && r.code === 0), `exit ${r.code} after SIGINT (expected 130)\n${r.stderr}`);
  if (c.signal === 'SIGINT') {
    assert.ok(!stackTraceIn(r.stderr, mode), `a stack trace after SIGINT:\n${r.stderr}`);
    // Ctrl-C cleans up by itself: nothing for the reaper.
    const dry = await ctx.ok(['cleanup', '--dry-run']);
    assert.match(dry.stdout, /nothing to clean up/, `SIGINT left something for cleanup:\n${dry.stdout}`);
  } else {
    const cleanup = await ctx.ok(['cleanup', '--yes']);
    // Killed during the image tests: the test server and the version being tested are what cleanup must find.
    if (c.at === 'test') assert.match(cleanup.stdout + cleanup.stderr, /removed [^\n]*provisional-test-tested-[^\n]*version tested-\d{14}/, `cleanup did not find the test server and the untested version:\n${cleanup.stdout}\n${cleanup.stderr}`);
    // Killed while a new server ran its deploy scripts: that server is what cleanup must find.
    if (c.at === 'deploy-script') assert.match(cleanup.stdout + cleanup.stderr, /removed app\d+\.staging/, `cleanup did not find the new server:\n${cleanup.stdout}\n${cleanup.stderr}`);
  }
  await checkAfter(ctx, before, result, { command: c.command, committed, killed: c.signal === 'SIGKILL' });
}

async function runFaultCase<T extends FaultTarget>(ctx: CaseContext<T>, c: FaultCase<T>, mode: string[], result: CaseResult): Promise<void> {
  const { target } = ctx;
  await prepare(ctx, c.command);
  const before = await ctx.baseline();
  const fired = target.faultsFired();
  let r: CliResult;
  try {
    c.inject?.(target);
    const run = ctx.start([...mode, ...commandArgs(c.command)], c.env);
    if (c.during) {
      await reach(run, c.command, c.during.at, target.slow ? 240_000 : 90_000);
      await c.during.act(target);
    }
    r = await withTimeout(run.done, target.slow ? 600_000 : 240_000, `provisional ${commandArgs(c.command).join(' ')}`);
  } finally {
    target.clearFaults();
    c.restore?.(target);
  }
  const firedNow = target.faultsFired() - fired;
  result.injected = Math.max(1, firedNow + (c.during ? 1 : 0));
  const output = `${r.stdout}\n${r.stderr}`;
  if (c.expect === 'success') {
    assert.equal(r.code, 0, `a transient fault did not end in success:\n${output}`);
    if (c.minFired) assert.ok(firedNow >= c.minFired, `the fault fired ${firedNow} times, expected at least ${c.minFired}`);
  } else {
    assert.ok(r.code === 1 || r.code === 2, `exit ${r.code}, expected 1 or 2:\n${output}`);
    if (c.message) assert.match(output, c.message);
    assert.ok(!stackTraceIn(output, mode), `a stack trace:\n${output}`);
    assert.doesNotMatch(output, /^(\d\d:\d\d:\d\d )?internal error:|this is a bug in provisional/m); // the CLI's own marker of a bug, not EC2's "An internal error"
  }
  const dry = await ctx.ok(['cleanup', '--dry-run']);
  assert.match(dry.stdout, /nothing to clean up/, `the failed command left something for cleanup:\n${dry.stdout}`);
  await checkAfter(ctx, before, result, { command: c.command, committed: c.expect === 'success' && r.code === 0, killed: false });
}

async function runConcurrentCase<T extends FaultTarget>(ctx: CaseContext<T>, c: ConcurrentCase, mode: string[], result: CaseResult): Promise<void> {
  await prepare(ctx, c.command);
  const before = await ctx.baseline();
  const args = commandArgs(c.command);
  const runs = [ctx.start([...mode, ...args]), ctx.start([...mode, ...args])];
  const results = await withTimeout(Promise.all(runs.map((r) => r.done)), ctx.target.slow ? 600_000 : 240_000, 'two commands at once');
  result.injected = 1;
  const winners = results.filter((r) => r.code === 0);
  assert.equal(winners.length, 1, `expected one to proceed and one to refuse: exits ${results.map((r) => r.code).join(', ')}\n${results.map((r) => r.stdout + r.stderr).join('\n---\n')}`);
  const loser = results.findIndex((r) => r.code !== 0);
  const winnerPid = runs[1 - loser]!.child.pid;
  const said = `${results[loser]!.stdout}\n${results[loser]!.stderr}`;
  assert.ok(results[loser]!.code === 1 || results[loser]!.code === 2, `the refused one exited ${results[loser]!.code}`);
  assert.match(said, new RegExp(`is busy: \`provisional [^\`]*${args.join(' ')}[^\`]*\` \\(pid ${winnerPid} `), 'the refusal names the first command and its pid');
  await checkAfter(ctx, before, result, { command: c.command, committed: true, killed: false });
}

/** The checks every case ends with; fills `result` and fails the test on any finding. */
async function checkAfter<T extends FaultTarget>(
  ctx: CaseContext<T>,
  before: Baseline,
  result: CaseResult,
  how: { command: string; committed: boolean; killed: boolean },
): Promise<void> {
  await delay(50); // the transcript gets each call once its process closed
  result.leftovers = await findLeftovers(ctx.target, before, how, ctx.transcript);
  const after = await ctx.versions();
  result.versionsLost = versionsLost(before.versions, after);
  const halfMade = [...after].filter(([, status]) => status !== 'available').map(([v, s]) => `${v} listed as ${s}`);
  result.leftovers.push(...halfMade);
  if (how.command === 'cold' && how.committed) await ctx.ok(['destroy', 'cold', '--yes']);
  if (result.leftovers.length) {
    // Leave the next case a clean provider, so that one leak is reported once.
    await ctx.cli(['cleanup', '--yes']);
  }
  assert.deepEqual(result.leftovers, [], 'left behind');
  assert.deepEqual(result.versionsLost, [], 'versions lost');
}

export interface MatrixOptions {
  /** Per-case timeout (ms). */
  caseTimeoutMs: number;
}

/**
 * One `describe` per provider: the setup (v1 of app, staging deployed from it, then v2), every
 * case, and a last look at the whole state directory for the canary.
 */
export function defineFaultMatrix<T extends FaultTarget>(title: string, open: () => Promise<T>, cases: MatrixCase<T>[], opts: MatrixOptions): void {
  describe(title, { timeout: 60 * 60_000 }, () => {
    let target: T;
    const outputs: Transcript[] = [];
    const run = async (name: string, kind: CaseResult['kind'], body: (ctx: CaseContext<T>, result: CaseResult) => Promise<void>) => {
      const ctx = new CaseContext(target);
      outputs.push(ctx.transcript);
      const result: CaseResult = { provider: target.provider, name, kind, injected: 0, leftovers: [], versionsLost: [], leaks: [], passed: false, durationMs: 0 };
      const started = Date.now();
      try {
        await body(ctx, result);
        await delay(50); // let the last transcript entries land
        result.leaks = await findLeaks(target, [ctx.transcript]);
        assert.deepEqual(result.leaks, [], 'the canary or a secret leaked');
        result.passed = true;
      } catch (err) {
        result.error = (err as Error).message.split('\n').slice(0, 3).join(' ');
        throw err;
      } finally {
        result.durationMs = Date.now() - started;
        recordResult(result);
      }
    };

    before(async () => {
      target = await open();
    });
    after(async () => {
      if (!target) return;
      const ctx = new CaseContext(target);
      await ctx.cli(['destroy', 'staging', '--yes']).catch(() => undefined);
      await ctx.cli(['destroy', 'cold', '--yes']).catch(() => undefined);
      await target.close();
    });

    it('setup: app v1, staging deployed from it, then app v2', { timeout: opts.caseTimeoutMs * 2 }, () =>
      run('setup', 'canary', async (ctx) => {
        await ctx.ok(['image', 'create', 'app']);
        await ctx.ok(['deploy', 'staging', '--cold']);
        await ctx.ok(['--json', 'image', 'create', 'app']);
        assert.ok((await ctx.target.inventory()).machines.some((m) => m.env === 'staging' && m.running));
      }),
    );

    // PROVISIONAL_FAULT_ONLY=regexp runs only the matching cases (the setup and the canary always run).
    const only = process.env.PROVISIONAL_FAULT_ONLY ? new RegExp(process.env.PROVISIONAL_FAULT_ONLY) : undefined;
    cases.forEach((c, i) => {
      const mode = OUTPUT_MODES[i % OUTPUT_MODES.length]!;
      const name = describeCase(c);
      if (only && !only.test(name)) return;
      it(`${name}${mode.length ? ` [${mode.join(' ')}]` : ''}`, { timeout: opts.caseTimeoutMs }, () =>
        run(name, c.kind, (ctx, result) =>
          c.kind === 'signal' ? runSignalCase(ctx, c, mode, result) : c.kind === 'fault' ? runFaultCase(ctx, c, mode, result) : runConcurrentCase(ctx, c, mode, result),
        ),
      );
    });

    it('the canary is in no output, --json or --debug trace, and no build log (mode 0600)', () =>
      run('canary in every output and log', 'canary', async (_ctx, result) => {
        result.leaks = await findLeaks(target, outputs, { logs: true });
        assert.deepEqual(result.leaks, []);
      }),
    );
  });
}

export { BUILD_STEPS };
