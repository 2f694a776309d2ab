/**
 * Runs the test suite in tiers, fastest first, so that a failure shows in the first minutes:
 *   1. unit                           (seconds; files run two at a time)
 *   2. contract, emulators, package   (minutes)
 *   3. end to end and fault matrix    (the long tail; QEMU, one file at a time)
 * Every tier runs, even after a failed one (CI must see every heavy test), unless --bail is given.
 * The files are found from the TypeScript sources (test/**\/*.test.ts), so that a compiled test
 * whose source was deleted never runs from a stale dist/. A file in no named folder joins the last tier.
 *
 * Usage: node dist/scripts/test-tiers.js [TIER...] [--bail]     (TIER: unit, contract, e2e)
 * Output: node's spec reporter per tier, a line per tier, then the totals in node's TAP summary form
 * ("# pass N", "# fail N") and as "N passed, N failed" (CI reads these last lines).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

interface Tier {
  name: string;
  title: string;
  /** Top-level folders of test/ in this tier. */
  folders: string[];
  concurrency: number;
}

const TIERS: Tier[] = [
  { name: 'unit', title: 'unit', folders: ['unit'], concurrency: 2 },
  { name: 'contract', title: 'provider contract, emulators and package', folders: ['contract', 'emulators', 'package'], concurrency: 1 },
  { name: 'e2e', title: 'end to end and fault matrix', folders: ['e2e', 'faults'], concurrency: 1 },
];

const COUNTERS = ['tests', 'suites', 'pass', 'fail', 'cancelled', 'skipped', 'todo'] as const;
type Counts = Record<(typeof COUNTERS)[number], number>;

const root = fileURLToPath(new URL('../..', import.meta.url));

function testSources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return testSources(path);
    return entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

/** The compiled files of each tier, in a stable order. */
export function filesByTier(): Map<Tier, string[]> {
  const byTier = new Map<Tier, string[]>(TIERS.map((t) => [t, []]));
  for (const source of testSources(join(root, 'test')).sort()) {
    const rel = relative(join(root, 'test'), source);
    const tier = TIERS.find((t) => t.folders.includes(rel.split('/')[0]!)) ?? TIERS.at(-1)!;
    const compiled = join(root, 'dist/test', rel.replace(/\.ts$/, '.js'));
    if (!existsSync(compiled)) throw new Error(`${relative(root, compiled)} is missing: build first (npm run build)`);
    byTier.get(tier)!.push(relative(root, compiled));
  }
  return byTier;
}

function parseTapSummary(tap: string): Counts {
  const counts = Object.fromEntries(COUNTERS.map((c) => [c, 0])) as Counts;
  for (const c of COUNTERS) {
    const all = [...tap.matchAll(new RegExp(`^# ${c} (\\d+)$`, 'gm'))];
    counts[c] = all.length ? Number(all.at(-1)![1]) : 0;
  }
  return counts;
}

async function runTier(tier: Tier, files: string[], tap: string): Promise<{ counts: Counts; code: number | null; ms: number }> {
  const started = performance.now();
  const args = ['--test', `--test-concurrency=${tier.concurrency}`, '--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tap}`, ...files];
  const child = spawn(process.execPath, args, { cwd: root, stdio: 'inherit' });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const counts = existsSync(tap) ? parseTapSummary(readFileSync(tap, 'utf8')) : parseTapSummary('');
  // A runner that died without a summary is a failure too.
  if (code !== 0 && counts.fail === 0) counts.fail = 1;
  return { counts, code, ms: performance.now() - started };
}

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 120 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

async function main(argv: string[]): Promise<number> {
  const bail = argv.includes('--bail');
  const names = argv.filter((a) => !a.startsWith('--'));
  const unknown = names.filter((n) => !TIERS.some((t) => t.name === n));
  if (unknown.length) {
    console.error(`error: unknown tier ${unknown.join(', ')} (tiers: ${TIERS.map((t) => t.name).join(', ')})`);
    return 2;
  }
  const byTier = filesByTier();
  const chosen = TIERS.filter((t) => !names.length || names.includes(t.name)).filter((t) => byTier.get(t)!.length);
  const scratch = mkdtempSync(join(tmpdir(), 'provisional-tiers-'));
  const total = Object.fromEntries(COUNTERS.map((c) => [c, 0])) as Counts;
  const lines: string[] = [];
  const started = performance.now();
  try {
    for (const [i, tier] of chosen.entries()) {
      const files = byTier.get(tier)!;
      console.log(`\n=== tier ${i + 1}/${chosen.length}: ${tier.title} (${files.length} files) ===\n`);
      const r = await runTier(tier, files, join(scratch, `${tier.name}.tap`));
      for (const c of COUNTERS) total[c] += r.counts[c];
      const line = `tier ${i + 1}/${chosen.length} ${tier.title}: ${r.counts.pass} passed, ${r.counts.fail} failed, ${r.counts.skipped} skipped in ${duration(r.ms)}`;
      lines.push(line);
      console.log(`\n=== ${line} ===`);
      if (r.counts.fail && bail && i < chosen.length - 1) {
        lines.push(`stopped after tier ${i + 1} (--bail): ${chosen.slice(i + 1).map((t) => t.title).join('; ')} not run`);
        break;
      }
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  console.log(`\n${lines.join('\n')}\n`);
  for (const c of COUNTERS) console.log(`# ${c} ${total[c]}`);
  console.log(`# duration_ms ${Math.round(performance.now() - started)}`);
  console.log(`${total.pass} passed, ${total.fail} failed`);
  return total.fail || total.cancelled ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = await main(process.argv.slice(2));
