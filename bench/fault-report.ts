/**
 * Figures of the fault matrix (test/faults/): cases run, faults injected, resources left behind
 * (must be 0), versions lost (must be 0), secrets leaked (must be 0), per provider; printed and
 * written to bench/RESULTS-faults.md.
 *
 *   node dist/bench/fault-report.js                     runs the matrix (local beside the emulators), then reports
 *   node dist/bench/fault-report.js --only digitalocean runs one provider's file
 *   node dist/bench/fault-report.js --from a.ndjson ... reports results written earlier
 *                                                       (PROVISIONAL_FAULT_RESULTS=a.ndjson node --test dist/test/faults/)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CaseResult } from '../test/faults/results.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const FAULTS_DIR = join(HERE, '../test/faults');
const OUT = join(HERE, '../../bench/RESULTS-faults.md');

/**
 * Two lanes at once: local QEMU (CPU-bound) beside the two emulators one after the other (they wait
 * on delays; two machine pools started in the same second have failed to boot containers here).
 */
async function runMatrix(only?: string): Promise<{ files: string[]; wallMs: number; failed: boolean }> {
  const file = join(mkdtempSync(join(tmpdir(), 'provisional-fault-report-')), 'results.ndjson');
  const tests = readdirSync(FAULTS_DIR)
    .filter((f) => f.endsWith('.test.js') && (!only || f.startsWith(only)))
    .map((f) => join(FAULTS_DIR, f));
  const lanes = [tests.filter((t) => t.endsWith('local.test.js')), tests.filter((t) => !t.endsWith('local.test.js'))].filter((l) => l.length);
  const started = performance.now();
  const codes = await Promise.all(
    lanes.map(
      (lane) =>
        new Promise<number | null>((resolve) =>
          spawn(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', ...lane], {
            env: { ...process.env, PROVISIONAL_FAULT_RESULTS: file },
            stdio: ['ignore', 'inherit', 'inherit'],
          }).on('close', resolve),
        ),
    ),
  );
  const wallMs = performance.now() - started;
  const failed = codes.some((c) => c !== 0);
  if (failed) console.error(`the matrix had failures (node --test exited ${codes.join(', ')}); the figures below show them`);
  return { files: [file], wallMs, failed };
}

function read(files: string[]): CaseResult[] {
  return files.flatMap((f) =>
    readFileSync(f, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as CaseResult),
  );
}

interface Figures {
  cases: number;
  passed: number;
  signals: number;
  faultCases: number;
  concurrent: number;
  injected: number;
  leftovers: number;
  versionsLost: number;
  leaks: number;
  seconds: number;
}

function figures(results: CaseResult[]): Figures {
  const cases = results.filter((r) => r.name !== 'setup' && r.kind !== 'canary');
  return {
    cases: cases.length,
    passed: cases.filter((r) => r.passed).length,
    signals: cases.filter((r) => r.kind === 'signal').length,
    faultCases: cases.filter((r) => r.kind === 'fault').length,
    concurrent: cases.filter((r) => r.kind === 'concurrent').length,
    injected: cases.reduce((n, r) => n + r.injected, 0),
    leftovers: results.reduce((n, r) => n + r.leftovers.length, 0),
    versionsLost: results.reduce((n, r) => n + r.versionsLost.length, 0),
    leaks: results.reduce((n, r) => n + r.leaks.length, 0),
    seconds: Math.round(results.reduce((n, r) => n + r.durationMs, 0) / 1000),
  };
}

function report(results: CaseResult[], wallMs?: number): string {
  const providers = [...new Set(results.map((r) => r.provider))];
  const rows = [...providers.map((p) => [p, figures(results.filter((r) => r.provider === p))] as const), ['total', figures(results)] as const];
  const lines = [
    '## Fault matrix (test/faults/)',
    '',
    'Signals at every build step and deploy point, API and script faults, two commands at once, and a canary',
    'secret, against the DigitalOcean and EC2 emulators and local QEMU (a subset there: every build step still',
    'gets a signal). Produced by `node dist/bench/fault-report.js`.',
    '',
    '| provider | cases run | passed | signal cases | fault cases | concurrent | faults injected | resources left behind (must be 0) | versions lost (must be 0) | secrets leaked (must be 0) | case time |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map(
      ([p, f]) =>
        `| ${p} | ${f.cases} | ${f.passed} | ${f.signals} | ${f.faultCases} | ${f.concurrent} | ${f.injected} | ${f.leftovers} | ${f.versionsLost} | ${f.leaks} | ${f.seconds} s |`,
    ),
    '',
  ];
  if (wallMs !== undefined) lines.push(`Wall time of the whole matrix (local QEMU beside the two emulators in turn, ${availableParallelism()} CPUs): ${Math.round(wallMs / 1000)} s.`, '');
  const failed = results.filter((r) => !r.passed);
  if (failed.length) {
    lines.push('Failed cases:', '');
    for (const r of failed) {
      lines.push(`- ${r.provider}: ${r.name}: ${r.error ?? 'failed'}${r.leftovers.length ? ` (left: ${r.leftovers.join('; ')})` : ''}`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

async function main(argv: string[]): Promise<void> {
  const from = argv.indexOf('--from');
  const onlyAt = argv.indexOf('--only');
  const run = from >= 0 ? { files: argv.slice(from + 1).filter((a) => !a.startsWith('--')), wallMs: undefined } : await runMatrix(onlyAt >= 0 ? argv[onlyAt + 1] : undefined);
  const results = read(run.files);
  if (!results.length) throw new Error(`no results in ${run.files.join(', ')}`);
  const text = report(results, run.wallMs);
  process.stdout.write(`${text}\n`);
  writeFileSync(OUT, `${text}\n`);
  process.stdout.write(`written to ${OUT}\n`);
}

await main(process.argv.slice(2));
