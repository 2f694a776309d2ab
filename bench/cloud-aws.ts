/**
 * Provisional on AWS, through the EC2 emulator (instances are systemd-nspawn containers with real
 * SSH), one run each, figures printed, nothing asserted:
 *
 * (a) `provisional image create` of a one-line script on Debian 12's AMI, with the emulator's
 *     default delays and with cloud-like ones:
 *       W  wall time of the command;
 *       D  the emulator's delays the build necessarily waits: pending -> running, stopping ->
 *          stopped, the AMI pending -> available, and shutting-down -> terminated (the build waits
 *          for its builder to be gone, so that its temporary security group can go);
 *       G  guest work, counted apart: boot-to-SSH after the instance was seen running, upload,
 *          scripts, cleaning, the guest's own power-off;
 *       E  the emulator's machine time beyond a delay (a container that boots, stops or is
 *          removed for longer), seen from inside the emulator;
 *       O = W - D - G - E, Provisional's own overhead; target O / D <= 5 %; API requests.
 * (b) `provisional deploy bench --cold --parallel N` for N = 1 and 100 instances, under a token
 *     bucket like EC2's request rate limit: wall time, API requests per instance, and how many
 *     requests were answered RequestLimitExceeded (target: none).
 */
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startEc2Emulator, type Ec2Emulator } from '../src/emulators/aws/server.js';
import { DEFAULT_DELAYS, type Ec2Delays } from '../src/emulators/aws/cloud.js';
import { machineBackend } from '../src/emulators/aws/machine-backend.js';
import {
  copyCli,
  jsonEvents,
  machineFacts,
  MemorySampler,
  mib,
  percent,
  processesMentioning,
  runTimed,
  scratchDir,
  seconds,
  stepDurations,
  withTeardown,
  type TimedRun,
} from './cloud-lib.js';

const SCRIPT = '#!/bin/sh\necho hello > /etc/hello\n';
const IMAGE = 'app';
const BASE = '136693071363/debian-12-amd64-*';
const REGION = 'us-east-1';
/**
 * EC2's default token bucket for non-mutating actions (Describe*): 100 requests, refilled at 20 a
 * second (https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html). The emulator has
 * one bucket per region for every action; this is the smallest of EC2's buckets the deploy uses.
 */
export const RATE_LIMIT = { perSecond: 20, burst: 100 };

export const PROFILES: Record<string, Ec2Delays> = {
  'emulator defaults': { ...DEFAULT_DELAYS },
  'cloud-like': { ...DEFAULT_DELAYS, instancePendingMs: 15_000, instanceStoppingMs: 15_000, instanceShuttingDownMs: 30_000, imagePendingMs: 60_000 },
};

export interface AwsBuildFigures {
  wallMs: number;
  delays: Record<string, number>;
  delaysMs: number;
  guest: Record<string, number>;
  guestMs: number;
  emulatorExtra: Record<string, number>;
  emulatorExtraMs: number;
  overheadMs: number;
  lag: Record<string, number>;
  requests: number;
  byAction: Record<string, number>;
  throttled: number;
}

export interface AwsDeployFigures {
  servers: number;
  wallMs: number;
  ok: boolean;
  error?: string;
  requests: number;
  byAction: Record<string, number>;
  throttled: number;
  /** Most requests the emulator answered within any one second. */
  peakPerSecond: number;
  allRunningMs?: number;
  memoryAddedBytes: number;
  memoryPeakBytes: number;
}

export interface AwsFigures {
  facts: string;
  builds: { profile: string; delays: Ec2Delays; provisional: AwsBuildFigures }[];
  deploys: (AwsDeployFigures & { profile: string })[];
  leftovers: { instances: number; processes: number };
}

type InstanceTimes = { seen: number; running?: number; stopping?: number; stopped?: number; shuttingDown?: number; terminated?: number };

/** Instances and AMIs as the emulator sees them, sampled every 20 ms (wall-clock ms). */
class Ec2Watch {
  readonly instances = new Map<string, InstanceTimes>();
  readonly images = new Map<string, { seen: number; available?: number }>();
  private readonly earlier = new Set<string>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly emulator: Ec2Emulator) {
    this.timer = setInterval(() => this.sample(), 20);
  }

  private get region() {
    return this.emulator.cloud.regions.get(REGION)!;
  }

  private sample(): void {
    const now = Date.now();
    for (const i of this.region.instances.values()) {
      if (this.earlier.has(i.id)) continue;
      let t = this.instances.get(i.id);
      if (!t) this.instances.set(i.id, (t = { seen: now }));
      if (i.state === 'running' && i.address && !t.running) t.running = now;
      if (i.state === 'stopping' && !t.stopping) t.stopping = now;
      if (i.state === 'stopped' && !t.stopped) t.stopped = now;
      if (i.state === 'shutting-down' && !t.shuttingDown) t.shuttingDown = now;
      if (i.state === 'terminated' && !t.terminated) t.terminated = now;
    }
    for (const image of this.region.images.values()) {
      if (this.earlier.has(image.id) || image.ownerId !== '123456789012') continue;
      let t = this.images.get(image.id);
      if (!t) this.images.set(image.id, (t = { seen: now }));
      if (image.state === 'available' && !t.available) t.available = now;
    }
  }

  clear(): void {
    this.instances.clear();
    this.images.clear();
    for (const id of this.region.instances.keys()) this.earlier.add(id);
    for (const id of this.region.images.keys()) this.earlier.add(id);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

export async function benchCloudAws(opts: { deployCounts?: number[]; profiles?: string[]; deployProfiles?: string[] } = {}): Promise<AwsFigures> {
  const deployCounts = opts.deployCounts ?? [1, 100];
  const profiles = opts.profiles ?? Object.keys(PROFILES);
  const deployProfiles = opts.deployProfiles ?? profiles;
  return withTeardown(async (teardown) => {
    const { cli, remove } = copyCli();
    teardown.add('remove the CLI copy', remove);
    const figures: AwsFigures = { facts: machineFacts(), builds: [], deploys: [], leftovers: { instances: 0, processes: 0 } };
    const poolDirs: string[] = [];
    for (const profile of profiles) {
      const delays = PROFILES[profile];
      if (!delays) throw new Error(`no delay profile "${profile}" (there are: ${Object.keys(PROFILES).join(', ')})`);
      const backend = await machineBackend();
      poolDirs.push(backend.pool.runDir);
      const emulator = await startEc2Emulator({ accessKeyId: 'AKIDBENCH', secretAccessKey: 'bench-secret-access-key', delays, backend }).catch(async (err) => {
        await backend.close();
        throw err;
      });
      const watch = new Ec2Watch(emulator);
      const root = scratchDir('provisional-bench-aws-');
      const projectDir = join(root, 'project');
      const env = {
        AWS_ACCESS_KEY_ID: emulator.accessKeyId,
        AWS_SECRET_ACCESS_KEY: emulator.secretAccessKey,
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_CONFIG_FILE: '/nonexistent',
        AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
        PROVISIONAL_STATE_DIR: join(root, 'state'),
      };
      const closeEmulator = teardown.add(`close the EC2 emulator (${profile})`, async () => {
        watch.stop();
        emulator.faults.rateLimit = undefined;
        if (deployProfiles.includes(profile)) await runTimed(process.execPath, [cli, 'destroy', 'bench', '--yes'], { cwd: projectDir, env, timeoutMs: 10 * 60_000 }).catch(() => undefined);
        // Shutting-down instances are on their way (their machines are gone already; the state follows after the delay).
        figures.leftovers.instances += [...emulator.cloud.regions.get(REGION)!.instances.values()].filter((i) => i.state !== 'terminated' && i.state !== 'shutting-down').length;
        await emulator.close();
        rmSync(root, { recursive: true, force: true });
      });
      try {
        writeProject(projectDir, emulator, 1);
        // Provisional polls against the durations it saw before (src/core/durations.ts): a first,
        // unmeasured build teaches it, as any earlier build would on a user's machine.
        if (process.env.BENCH_AWS_WARMUP !== '0') {
          console.error(`[${profile}] first build (unmeasured: Provisional learns the durations)...`);
          const warm = await runTimed(process.execPath, [cli, '--json', 'image', 'create', IMAGE], { cwd: projectDir, env, timeoutMs: 20 * 60_000 });
          if (warm.code !== 0) throw new Error(`the first build exited ${warm.code}: ${warm.stderr}`);
        }
        console.error(`[${profile}] building ${IMAGE} with Provisional on AWS...`);
        const provisional = await measureBuild(emulator, watch, () =>
          runTimed(process.execPath, [cli, '--json', 'image', 'create', IMAGE], { cwd: projectDir, env, timeoutMs: 20 * 60_000 }),
        );
        figures.builds.push({ profile, delays: { ...delays }, provisional });
        if (deployProfiles.includes(profile)) {
          emulator.faults.rateLimit = RATE_LIMIT;
          for (const n of deployCounts) {
            console.error(`[${profile}] deploying ${n} instance${n > 1 ? 's' : ''}...`);
            figures.deploys.push({ profile, ...(await measureDeploy(n, emulator, watch, cli, projectDir, env)) });
            const destroy = await runTimed(process.execPath, [cli, 'destroy', 'bench', '--yes'], { cwd: projectDir, env, timeoutMs: 10 * 60_000 });
            if (destroy.code !== 0) throw new Error(`provisional destroy exited ${destroy.code}: ${destroy.stderr}`);
            await waitNoMachines(backend.pool);
          }
        }
      } finally {
        await closeEmulator();
      }
    }
    figures.leftovers.processes = poolDirs.reduce((sum, dir) => sum + processesMentioning(dir).length, 0);
    return figures;
  });
}

function writeProject(dir: string, emulator: Ec2Emulator, servers: number): void {
  mkdirSync(join(dir, `config/provisional/${IMAGE}/scripts`), { recursive: true });
  writeFileSync(
    join(dir, 'config/provisional/config.yml'),
    [
      'project: bench',
      'provider:',
      '  name: aws',
      `  region: ${REGION}`,
      `  endpoint: ${emulator.url}`,
      '  ssh-user: root',
      'images:',
      `  ${IMAGE}:`,
      `    base-image: "${BASE}"`,
      'deployments:',
      '  bench:',
      `    ${IMAGE}: { servers: ${servers} }`,
      '',
    ].join('\n'),
  );
  const script = join(dir, `config/provisional/${IMAGE}/scripts/10-hello.sh`);
  writeFileSync(script, SCRIPT);
  chmodSync(script, 0o755);
}

async function measureBuild(emulator: Ec2Emulator, watch: Ec2Watch, start: () => Promise<TimedRun>): Promise<AwsBuildFigures> {
  emulator.requests.clear();
  watch.clear();
  const run = await start();
  await new Promise((resolve) => setTimeout(resolve, 100));
  if (run.code !== 0) throw new Error(`provisional image create exited ${run.code}:\n${(run.stdout + run.stderr).trim().split('\n').slice(-15).join('\n')}`);
  const end = run.startedAt + run.wallMs;
  const delays = emulator.cloud.delays;
  const builder = [...watch.instances.values()][0];
  const image = [...watch.images.values()][0];
  if (!builder?.running) throw new Error('the emulator never saw the builder running');
  const d: Record<string, number> = { pending: delays.instancePendingMs };
  const extra: Record<string, number> = { pending: Math.max(0, builder.running - builder.seen - delays.instancePendingMs) };
  if (builder.stopping && builder.stopped) {
    d.stopping = delays.instanceStoppingMs;
    extra.stopping = Math.max(0, builder.stopped - builder.stopping - delays.instanceStoppingMs);
  }
  if (image?.available) {
    d['AMI pending'] = delays.imagePendingMs;
    extra['AMI pending'] = Math.max(0, image.available - image.seen - delays.imagePendingMs);
  }
  if (builder.shuttingDown && builder.terminated && builder.terminated <= end) {
    d['shutting-down'] = delays.instanceShuttingDownMs;
    extra['shutting-down'] = Math.max(0, builder.terminated - builder.shuttingDown - delays.instanceShuttingDownMs);
  }
  const steps = stepDurations(run);
  const guest: Record<string, number> = {};
  for (const s of ['ssh', 'upload', 'script', 'clean']) guest[s] = steps[s] ?? 0;
  const events = jsonEvents(run);
  const doneAt = (step: string) => {
    const at = events.find((e) => e.event.type === 'step-done' && e.event.step === step)?.at;
    return at === undefined ? undefined : run.startedAt + at;
  };
  const lag: Record<string, number> = {};
  const cleaned = doneAt('clean');
  if (cleaned !== undefined && builder.stopping) guest['power-off (guest)'] = Math.max(0, builder.stopping - cleaned);
  const pairs: [string, number | undefined, number | undefined][] = [
    ['running -> seen', builder.running, doneAt('launch')],
    ['stopped -> seen', builder.stopped, doneAt('stop')],
    ['available -> seen', image?.available, doneAt('snapshot')],
    ['terminated -> seen', builder.terminated, doneAt('destroy')],
  ];
  for (const [what, at, seen] of pairs) if (at !== undefined && seen !== undefined) lag[what] = seen - at;
  const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
  return {
    wallMs: run.wallMs,
    delays: d,
    delaysMs: sum(d),
    guest,
    guestMs: sum(guest),
    emulatorExtra: extra,
    emulatorExtraMs: sum(extra),
    overheadMs: run.wallMs - sum(d) - sum(guest) - sum(extra),
    lag,
    requests: emulator.requests.count(),
    byAction: emulator.requests.counts(),
    throttled: emulator.requests.count(undefined, 'RequestLimitExceeded'),
  };
}

async function measureDeploy(n: number, emulator: Ec2Emulator, watch: Ec2Watch, cli: string, projectDir: string, env: NodeJS.ProcessEnv): Promise<AwsDeployFigures> {
  writeProject(projectDir, emulator, n);
  emulator.requests.clear();
  watch.clear();
  const memory = new MemorySampler();
  const started = Date.now();
  const run = await runTimed(process.execPath, [cli, 'deploy', 'bench', '--cold', '--parallel', String(n)], { cwd: projectDir, env, timeoutMs: 30 * 60_000 });
  const { added, peak } = memory.stop();
  await new Promise((resolve) => setTimeout(resolve, 100));
  const running = [...watch.instances.values()].map((i) => i.running);
  const times = emulator.requests.entries.map((e) => e.at).sort((a, b) => a - b);
  let peakPerSecond = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while (times[i]! - times[j]! >= 1000) j++;
    peakPerSecond = Math.max(peakPerSecond, i - j + 1);
  }
  return {
    servers: n,
    wallMs: run.wallMs,
    ok: run.code === 0,
    error: run.code === 0 ? undefined : run.stderr.trim().split('\n').slice(-5).join('\n'),
    requests: emulator.requests.count(),
    byAction: emulator.requests.counts(),
    throttled: emulator.requests.count(undefined, 'RequestLimitExceeded'),
    peakPerSecond,
    allRunningMs: running.length >= n && running.every((r) => r !== undefined) ? Math.max(...(running as number[])) - started : undefined,
    memoryAddedBytes: added,
    memoryPeakBytes: peak,
  };
}

async function waitNoMachines(pool: { list(): unknown[] }, timeoutMs = 5 * 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (pool.list().length > 0) {
    if (Date.now() > deadline) throw new Error(`${pool.list().length} machines still there after the destroy`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const ms = (x: number) => `${Math.round(x)} ms`;
const parts = (r: Record<string, number>) =>
  Object.entries(r)
    .map(([k, v]) => `${k} ${seconds(v)}`)
    .join(', ') || '-';
const actions = (r: Record<string, number>) =>
  Object.entries(r)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join('; ');

export function formatAws(f: AwsFigures): string {
  const out = ['### AWS (EC2 emulator)', '', `Machine: ${f.facts}.`, ''];
  out.push('#### Build (`provisional image create`)', '');
  out.push(`| | ${f.builds.map((b) => `delays "${b.profile}"`).join(' | ')} |`, `| --- |${f.builds.map(() => ' --- |').join('')}`);
  const row = (label: string, cell: (b: AwsFigures['builds'][number]) => string) => out.push(`| ${label} | ${f.builds.map(cell).join(' | ')} |`);
  row('delays set (pending, stopping, shutting-down, AMI)', (b) => [b.delays.instancePendingMs, b.delays.instanceStoppingMs, b.delays.instanceShuttingDownMs, b.delays.imagePendingMs].map(seconds).join(', '));
  row('W, wall time', (b) => seconds(b.provisional.wallMs));
  row('D, delays waited', (b) => `${seconds(b.provisional.delaysMs)} (${parts(b.provisional.delays)})`);
  row('G, guest work (counted apart)', (b) => `${seconds(b.provisional.guestMs)} (${parts(b.provisional.guest)})`);
  row('E, emulator machine time beyond delays', (b) => `${seconds(b.provisional.emulatorExtraMs)} (${parts(b.provisional.emulatorExtra)})`);
  row('O = W - D - G - E', (b) => seconds(b.provisional.overheadMs));
  row('**O / D** (target <= 5 %)', (b) => `**${percent(b.provisional.overheadMs / b.provisional.delaysMs)}**`);
  row('(W - G) / D - 1 (E included)', (b) => percent((b.provisional.wallMs - b.provisional.guestMs) / b.provisional.delaysMs - 1));
  row('lag: emulator state -> Provisional acts', (b) => Object.entries(b.provisional.lag).map(([k, v]) => `${k} ${ms(v)}`).join(', '));
  row('**API requests**', (b) => `**${b.provisional.requests}**`);
  row('RequestLimitExceeded', (b) => String(b.provisional.throttled));
  out.push('', ...f.builds.map((b) => `Requests, "${b.profile}": ${actions(b.provisional.byAction)}.`), '');
  out.push(
    `#### Deploy (\`provisional deploy bench --cold --parallel N\`, rate limit: token bucket of ${RATE_LIMIT.burst}, ${RATE_LIMIT.perSecond}/s)`,
    '',
    '| delays | instances | result | wall time | all running at the emulator | API requests | per instance | RequestLimitExceeded (target 0) | peak requests in 1 s | memory added (peak used) |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  );
  for (const d of f.deploys) {
    out.push(
      `| ${d.profile} | ${d.servers} | ${d.ok ? 'ok' : `failed: ${d.error?.replace(/\n/g, ' ').slice(0, 200)}`} | ${seconds(d.wallMs)} | ${d.allRunningMs === undefined ? '-' : seconds(d.allRunningMs)} | ${d.requests} | ${(d.requests / d.servers).toFixed(2)} | ${d.throttled} | ${d.peakPerSecond} | ${mib(d.memoryAddedBytes)} (${mib(d.memoryPeakBytes)}) |`,
    );
  }
  out.push('', ...f.deploys.map((d) => `Requests, "${d.profile}", ${d.servers} instance${d.servers > 1 ? 's' : ''}: ${actions(d.byAction)}.`));
  out.push('', `Left after the run: ${f.leftovers.instances} instances neither terminated nor shutting down, ${f.leftovers.processes} container processes.`);
  return out.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const counts = process.env.BENCH_AWS_SERVERS?.split(',').map(Number);
  const profiles = process.env.BENCH_AWS_PROFILES?.split(',');
  const figures = await benchCloudAws({ deployCounts: counts, profiles, deployProfiles: process.env.BENCH_AWS_DEPLOY_PROFILES?.split(',') });
  console.log(formatAws(figures));
  if (process.env.BENCH_JSON) writeFileSync(process.env.BENCH_JSON, JSON.stringify(figures, null, 2));
}
