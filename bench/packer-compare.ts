/**
 * One image, two tools, side by side: the same one-line script on the same debian-12 base disk,
 * built by Provisional's local provider and by Packer 1.6.6's `qemu` builder, both under TCG with
 * the same memory and CPUs. Packer keeps its defaults otherwise, as a user would have them: it
 * copies the whole disk (no use_backing_file), resizes it, waits boot_wait, converts it at the end.
 *
 * Per tool: wall time (median of 3 runs, interleaved, after one run each not counted), the size
 * on disk of what the build produced, the bytes its processes wrote (see measured-run.ts) and how
 * long a `sync` right after it takes. For Provisional also its own overhead: the wall time minus
 * what the guest needs (boot to SSH, scripts, power-off, snapshot), from its --json step events.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, createReadStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from '../test/helpers/cli.js';
import { bootSpecOf, readBaseRecord } from '../src/providers/local/base-record.js';
import { BaseStore } from '../src/providers/local/bases.js';
import { nullSink } from '../src/core/events.js';
import { localSettingsSchema } from '../src/providers/local/settings.js';
import { DEBIAN_BASE } from '../src/providers/local/settings.js';
import { median } from './lib.js';
import { runMeasured, timeSync, type MeasuredRun } from './measured-run.js';
import { packerTemplate } from './packer-template.js';
import { cpuBusy, describeVm, otherCpuShare, qemuOption, stopQemuUnder, waitForQuiet, watchQemu } from './qemu-watch.js';

/** BENCH_WARM=0: builders boot (the local provider's `warm-builders: false`) instead of resuming a saved one. */
const WARM = process.env['BENCH_WARM'] !== '0';
/** BENCH_RUNS=1 for a quick look (the figures are then single runs). */
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);
/** Provisional's defaults (the project keeps them); Packer gets the same. */
const MEMORY_MIB = 1024;
const CPUS = 2;
const SCRIPT = '#!/bin/sh\necho hello > /etc/hello\n';
/** Steps during which the guest works (boots to SSH, runs the script, powers off) or its disk is saved. */
const GUEST_STEPS = ['ssh', 'script', 'stop', 'snapshot'];
const BUILD_TIMEOUT_MS = 10 * 60_000;
/** The first run may build the debian-12 base (mmdebstrap): give it longer. */
const FIRST_RUN_TIMEOUT_MS = 30 * 60_000;

export interface ToolFigures {
  /** Each counted run's wall time, in run order. */
  wallMs: number[];
  medianWallMs: number;
  /** CPU time of the build's whole process tree (user + system); median. */
  cpuMs: number;
  /** Allocated size (du -B1) of what the build produced; median over the runs. */
  producedBytes: number;
  /** write_bytes of the build's whole process tree; median. */
  writeBytes: number;
  /** cancelled_write_bytes: written, then truncated or removed before it reached the disk; median. */
  cancelledWriteBytes: number;
  /** `sync` right after the build; median. */
  syncMs: number;
  /** The QEMU options that decide speed (-accel/-machine/-cpu/-m/-smp), as the tool passed them. */
  vm: string;
}

export interface PackerCompareFigures {
  date: string;
  cores: number;
  /** Whether builders resumed a saved machine (BENCH_WARM). */
  warm: boolean;
  /** The first Provisional run, not counted (it may build the base, or make the saved builder). */
  firstProvisionalWallMs: number;
  /** Mean share of the machine's CPU that other processes used during the counted runs (noise). */
  otherCpuShare: number;
  qemuVersion: string;
  packerVersion: string;
  base: { disk: string; allocatedBytes: number; virtualBytes: number };
  provisional: ToolFigures & {
    /** Median duration of each step of --json, ms. */
    stepsMs: Record<string, number>;
    /** Median of (wall - (ssh + script + stop + snapshot)), ms. */
    overheadMs: number;
    /** The same, with the launch step counted as the machine's start (a resumed builder's resume and hand-over). */
    overheadLaunchAsStartMs: number;
    /** The same, with only the resume (QEMU start to SSH answering) counted as the machine's start. */
    overheadResumeAsStartMs: number;
    /** Median of (wall - every step): process start, config, KVM probe, power-off request, summary. */
    outsideStepsMs: number;
  };
  packer: ToolFigures;
  /** Packer again, with Provisional's machine type and CPU model (its defaults otherwise). */
  packerSameGuest: ToolFigures;
}

export async function benchPackerCompare(): Promise<PackerCompareFigures> {
  ensurePacker();
  const root = mkdtempSync(join(tmpdir(), 'provisional-bench-packer-'));
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await compare(root, abort.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await stopQemuUnder(root);
    rmSync(root, { recursive: true, force: true });
  }
}

async function compare(root: string, signal: AbortSignal): Promise<PackerCompareFigures> {
  const project = join(root, 'project');
  mkdirSync(join(project, 'config/provisional/bench/scripts'), { recursive: true });
  writeFileSync(
    join(project, 'config/provisional/config.yml'),
    `${WARM ? '' : 'provider:\n  name: local\n  warm-builders: false\n'}images:\n  bench:\n    base-image: ${DEBIAN_BASE}\n`,
  );
  for (const script of [join(project, 'config/provisional/bench/scripts/10-hello.sh'), join(root, '10-hello.sh')]) {
    writeFileSync(script, SCRIPT);
    chmodSync(script, 0o755);
  }

  let provisionalRun = 0;
  const provisional = async (timeoutMs = BUILD_TIMEOUT_MS) => {
    const dataDir = join(root, `provisional-data-${provisionalRun++}`);
    const env = { ...process.env, PROVISIONAL_DATA_DIR: dataDir, PROVISIONAL_STATE_DIR: join(root, 'provisional-state') };
    const watch = watchQemu(dataDir);
    // --verbose: the debug events too, among them a resumed builder's resume and hand-over times.
    const run = await runMeasured(process.execPath, [CLI, '--json', '--verbose', 'image', 'create', 'bench'], { cwd: project, env, scratchDir: root, timeoutMs, signal }).finally(
      () => watch.stop(),
    );
    const argv = watch.stop();
    if (run.code !== 0) throw new Error(`provisional image create exited ${run.code}:\n${lastLines(run.stderr || run.stdout)}`);
    const syncMs = timeSync();
    const producedBytes = allocatedBytes(dataDir, (f) => f.endsWith('.qcow2'));
    rmSync(dataDir, { recursive: true, force: true });
    return { run, argv, vm: describeVm(argv), syncMs, producedBytes, steps: stepDurations(run.stdout) };
  };

  // Not counted: builds the debian-12 base when it is not cached yet, and warms the page cache.
  const first = await provisional(FIRST_RUN_TIMEOUT_MS);
  // Provisional's guest hardware, for the Packer run that differs from Provisional's only in what the tool does.
  const sameGuest = {
    machineType: (qemuOption(first.argv ?? [], '-M', '-machine') ?? 'pc').split(',')[0]!.replace(/^type=/, ''),
    cpu: qemuOption(first.argv ?? [], '-cpu') ?? 'qemu64',
  };
  const baseFolder = new BaseStore(localSettingsSchema.parse({}), nullSink).folder(DEBIAN_BASE);
  const record = await readBaseRecord(baseFolder);
  if (!record) throw new Error(`no ${DEBIAN_BASE} base in ${baseFolder} after a build`);
  const boot = bootSpecOf(baseFolder, record);
  if (!boot.kernel) throw new Error(`the ${DEBIAN_BASE} base has no kernel to boot directly`);

  const keyFile = join(root, 'packer-key');
  const keygen = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'provisional-bench', '-f', keyFile]);
  if (keygen.status !== 0) throw new Error(`ssh-keygen failed: ${keygen.stderr}`);
  const template = join(root, 'packer.json');
  let packerRun = 0;
  const packer = async (guest?: typeof sameGuest) => {
    const outputDir = join(root, `packer-output-${packerRun++}`);
    writeFileSync(
      template,
      JSON.stringify(
        packerTemplate({
          disk: boot.baseDisk,
          diskSha256: await sha256(boot.baseDisk),
          kernel: boot.kernel!,
          initrd: boot.initrd,
          append: boot.append ?? '',
          publicKey: readFileSync(`${keyFile}.pub`, 'utf8'),
          privateKeyFile: keyFile,
          outputDir,
          memoryMiB: MEMORY_MIB,
          cpus: CPUS,
          scriptFile: join(root, '10-hello.sh'),
          guest,
        }),
        null,
        2,
      ),
    );
    mkdirSync(join(root, 'packer-tmp'), { recursive: true });
    const env = { ...process.env, PACKER_CACHE_DIR: join(root, 'packer-cache'), TMPDIR: join(root, 'packer-tmp'), CHECKPOINT_DISABLE: '1' };
    const watch = watchQemu(outputDir);
    const run = await runMeasured('packer', ['build', '-color=false', template], { cwd: root, env, scratchDir: root, timeoutMs: BUILD_TIMEOUT_MS, signal }).finally(
      () => watch.stop(),
    );
    const vm = describeVm(watch.stop());
    if (run.code !== 0) throw new Error(`packer build exited ${run.code}:\n${lastLines(run.stdout + run.stderr, 20)}`);
    const syncMs = timeSync();
    const producedBytes = allocatedBytes(outputDir);
    rmSync(outputDir, { recursive: true, force: true });
    return { run, vm, syncMs, producedBytes };
  };
  // Not counted either: the same first-run advantage for Packer (its plugins, the disk in the page cache).
  await packer();

  const provisionalRuns: Awaited<ReturnType<typeof provisional>>[] = [];
  const packerRuns: Awaited<ReturnType<typeof packer>>[] = [];
  const packerSameGuestRuns: Awaited<ReturnType<typeof packer>>[] = [];
  const othersShares: number[] = [];
  /** One counted run, on a machine as idle as we can get; notes how much CPU others used meanwhile. */
  const counted = async <T extends { run: MeasuredRun }>(build: () => Promise<T>): Promise<T> => {
    timeSync();
    await waitForQuiet(signal);
    const before = cpuBusy();
    const result = await build();
    othersShares.push(otherCpuShare(before, cpuBusy(), result.run.cpuMs));
    return result;
  };
  for (let i = 0; i < RUNS; i++) {
    provisionalRuns.push(await counted(() => provisional()));
    packerRuns.push(await counted(() => packer()));
    packerSameGuestRuns.push(await counted(() => packer(sameGuest)));
  }

  const stepNames = [...new Set(provisionalRuns.flatMap((r) => Object.keys(r.steps)))];
  const stepsMs = Object.fromEntries(stepNames.map((s) => [s, median(provisionalRuns.map((r) => r.steps[s] ?? 0))]));
  const overheads = provisionalRuns.map((r) => r.run.wallMs - GUEST_STEPS.reduce((sum, s) => sum + (r.steps[s] ?? 0), 0));
  // A resumed builder's start is its launch step (the resume, then its hand-over over SSH).
  const overheadsLaunchAsStart = provisionalRuns.map((r) => r.run.wallMs - ['launch', ...GUEST_STEPS].reduce((sum, s) => sum + (r.steps[s] ?? 0), 0));
  // ... and with only the resume (QEMU start to SSH) counted as the start: the hand-over is the tool's.
  const overheadsResumeAsStart = provisionalRuns.map((r) => r.run.wallMs - GUEST_STEPS.reduce((sum, s) => sum + (r.steps[s] ?? 0), 0) - (r.steps['resume'] ?? 0));
  // resume and hand-over are parts of launch, not steps of their own.
  const outside = provisionalRuns.map((r) => r.run.wallMs - Object.entries(r.steps).reduce((sum, [s, ms]) => (s === 'resume' || s === 'hand-over' ? sum : sum + ms), 0));
  return {
    date: new Date().toISOString(),
    cores: cpus().length,
    otherCpuShare: othersShares.reduce((a, b) => a + b, 0) / Math.max(1, othersShares.length),
    qemuVersion: firstLine(spawnSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' }).stdout),
    packerVersion: firstLine(spawnSync('packer', ['version'], { encoding: 'utf8', env: { ...process.env, CHECKPOINT_DISABLE: '1' } }).stdout),
    base: { disk: boot.baseDisk, allocatedBytes: allocatedBytes(boot.baseDisk), virtualBytes: virtualSize(boot.baseDisk) },
    warm: WARM,
    firstProvisionalWallMs: first.run.wallMs,
    provisional: { ...toolFigures(provisionalRuns), stepsMs, overheadMs: median(overheads), overheadLaunchAsStartMs: median(overheadsLaunchAsStart), overheadResumeAsStartMs: median(overheadsResumeAsStart), outsideStepsMs: median(outside) },
    packer: toolFigures(packerRuns),
    packerSameGuest: toolFigures(packerSameGuestRuns),
  };
}

function toolFigures(runs: { run: MeasuredRun; vm: string; syncMs: number; producedBytes: number }[]): ToolFigures {
  const wallMs = runs.map((r) => r.run.wallMs);
  return {
    wallMs,
    medianWallMs: median(wallMs),
    cpuMs: median(runs.map((r) => r.run.cpuMs)),
    producedBytes: median(runs.map((r) => r.producedBytes)),
    writeBytes: median(runs.map((r) => r.run.io.writeBytes)),
    cancelledWriteBytes: median(runs.map((r) => r.run.io.cancelledWriteBytes)),
    syncMs: median(runs.map((r) => r.syncMs)),
    vm: runs[0]?.vm ?? 'unknown',
  };
}

/** Sum of durationMs per step over the step-done events of a --json run. */
export function stepDurations(ndjson: string): Record<string, number> {
  const steps: Record<string, number> = {};
  for (const line of ndjson.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const event = JSON.parse(line) as { type?: string; step?: string; durationMs?: number; message?: string };
      if (event.type === 'step-done' && event.step && typeof event.durationMs === 'number') {
        steps[event.step] = (steps[event.step] ?? 0) + event.durationMs;
      }
      // The local provider's debug line for a resumed builder (not a step: it happens inside `launch`).
      const resumed = event.type === 'debug' ? / resumed: QEMU start to SSH (\d+) ms, hand-over (\d+) ms/.exec(event.message ?? '') : null;
      if (resumed) {
        steps['resume'] = (steps['resume'] ?? 0) + Number(resumed[1]);
        steps['hand-over'] = (steps['hand-over'] ?? 0) + Number(resumed[2]);
      }
    } catch {
      // not an event
    }
  }
  return steps;
}

function ensurePacker(): void {
  if (spawnSync('packer', ['version'], { env: { ...process.env, CHECKPOINT_DISABLE: '1' } }).status === 0) return;
  console.error('packer is missing: apt-get install -y packer');
  const install = spawnSync('apt-get', ['install', '-y', 'packer'], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (install.status !== 0) throw new Error('could not install packer (apt-get install -y packer)');
}

/** Allocated bytes (du -B1) of a file, or of the files below a directory that `keep` selects. */
function allocatedBytes(path: string, keep: (file: string) => boolean = () => true): number {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return keep(path) ? stat.blocks * 512 : 0;
  return readdirSync(path).reduce((sum, entry) => sum + allocatedBytes(join(path, entry), keep), 0);
}

function virtualSize(disk: string): number {
  const info = spawnSync('qemu-img', ['info', '-U', '--output=json', disk], { encoding: 'utf8' });
  return Number((JSON.parse(info.stdout || '{}') as Record<string, unknown>)['virtual-size'] ?? NaN);
}

const checksums = new Map<string, Promise<string>>();
function sha256(file: string): Promise<string> {
  let sum = checksums.get(file);
  if (!sum) {
    sum = new Promise((resolve, reject) => {
      const hash = createHash('sha256');
      createReadStream(file)
        .on('data', (c) => hash.update(c))
        .on('error', reject)
        .on('end', () => resolve(hash.digest('hex')));
    });
    checksums.set(file, sum);
  }
  return sum;
}

const firstLine = (text: string) => text.split('\n')[0]?.trim() ?? '';
const lastLines = (text: string, n = 12) => text.trim().split('\n').slice(-n).join('\n');

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
/** Overheads are held to 1 s: shown to the hundredth, so that 0.96 and 1.04 do not both read 1.0. */
const precise = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const megabytes = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

export function formatReport(f: PackerCompareFigures): string {
  const p = f.provisional;
  const tools = [p, f.packer, f.packerSameGuest];
  const cells = (cell: (t: ToolFigures) => string) => `| ${tools.map(cell).join(' | ')} |`;
  const runs = (t: ToolFigures) => t.wallMs.map((ms) => (ms / 1000).toFixed(1)).join(', ');
  const guestMs = GUEST_STEPS.reduce((sum, s) => sum + (p.stepsMs[s] ?? 0), 0);
  return [
    `${f.date.slice(0, 10)}; ${f.cores} cores; TCG (no KVM); ${f.qemuVersion}; ${f.packerVersion}`,
    `other processes used ${(f.otherCpuShare * 100).toFixed(0)} % of the CPUs during the counted runs (mean)`,
    `base: ${DEBIAN_BASE}, ${megabytes(f.base.allocatedBytes)} on disk, ${(f.base.virtualBytes / 2 ** 30).toFixed(0)} GiB virtual; MB = 10^6 bytes`,
    '',
    '| | Provisional (local) | Packer 1.6.6 qemu, defaults | Packer, Provisional\'s machine and CPU |',
    '| --- | --- | --- | --- |',
    `| wall time, median of ${p.wallMs.length} (each run) ${cells((t) => `${seconds(t.medianWallMs)} (${runs(t)})`)}`,
    `| CPU time of the build's processes, median ${cells((t) => seconds(t.cpuMs))}`,
    `| result on disk (du -B1) ${cells((t) => megabytes(t.producedBytes) + (t === p ? ' (overlay on the base)' : ' (standalone)'))}`,
    `| write_bytes of the build's processes ${cells((t) => megabytes(t.writeBytes))}`,
    `| of which cancelled before reaching disk ${cells((t) => megabytes(t.cancelledWriteBytes))}`,
    `| sync right after the build ${cells((t) => `${t.syncMs.toFixed(0)} ms`)}`,
    '',
    `QEMU options: Provisional ${p.vm}; Packer ${f.packer.vm}; Packer, same guest ${f.packerSameGuest.vm}`,
    `Provisional steps (median ms): ${Object.entries(p.stepsMs).map(([s, ms]) => `${s} ${ms}`).join(', ')}; outside any step ${p.outsideStepsMs.toFixed(0)}`,
    `Provisional overhead: wall - (ssh + script + stop + snapshot = ${seconds(guestMs)}) = ${precise(p.overheadMs)} (median; target <= 1.0 s)`,
    `Provisional overhead with the launch as the machine's start (resume and hand-over, when warm): ${precise(p.overheadLaunchAsStartMs)}; with the resume alone as its start (QEMU start to SSH, ${(p.stepsMs['resume'] ?? 0).toFixed(0)} ms; the hand-over is the tool's): ${precise(p.overheadResumeAsStartMs)}`,
    `Provisional / Packer defaults: ${(p.medianWallMs / f.packer.medianWallMs).toFixed(2)} (target <= 0.6); builders ${f.warm ? 'resumed from a saved machine (warm-builders)' : 'booted (warm-builders: false)'}; the first, uncounted Provisional run: ${seconds(f.firstProvisionalWallMs)}`,
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    console.log(formatReport(await benchPackerCompare()));
  } catch (err) {
    // A failed build is no figure: say which and why, without a stack.
    console.error(`packer-compare: ${(err as Error).message}`);
    process.exitCode = 1;
  }
}
