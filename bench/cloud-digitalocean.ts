/**
 * Provisional on DigitalOcean, through the API emulator (droplets are systemd-nspawn containers
 * with real SSH), one run each, figures printed, nothing asserted:
 *
 * (a) The same image (a one-line script on debian-12-x64) built by `provisional image create` and
 *     by Packer 1.6.6's digitalocean builder, against the same emulator with the same delays: the
 *     emulator's defaults, cloud-like ones, and cloud-like ones off Packer's 3 s phase. Per tool:
 *       W  wall time of the command;
 *       D  the emulator's delays the build necessarily waits: the configured delay of each action
 *          it hits (create; shutdown and power_off only if it asked for them; snapshot);
 *       G  guest work, counted apart: boot-to-SSH after the droplet was seen active, upload,
 *          scripts, cleaning, and the guest's own power-off (Provisional powers off from inside);
 *       E  the emulator's machine time beyond a delay (a container that boots, stops or is copied
 *          for longer than the delay), seen from inside the emulator;
 *       O = W - D - G - E, the tool's own overhead (start-up, poll lag, API round trips);
 *     target: O / D <= 5 %; and the API requests of each (target: Provisional <= half of Packer's).
 * (b) `provisional deploy bench --cold --parallel N` for N = 1 and N = 100 droplets, under the
 *     default and the cloud-like delays: wall time, API requests (target <= 0.5 per droplet), 429
 *     answers under the default 250 a minute (target none), memory used by the machines.
 */
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDigitalOceanEmulator, type DigitalOceanEmulator } from '../src/emulators/digitalocean/server.js';
import { DEFAULT_DELAYS, type Delays } from '../src/emulators/digitalocean/cloud.js';
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
const BASE = 'debian-12-x64';
const REGION = 'nyc3';
const SIZE = 's-1vcpu-1gb';

/**
 * Delay profiles the build runs under (ms). Cloud-like: what a small droplet takes at DigitalOcean,
 * roughly. Its create and snapshot are multiples of 3 s, Packer's poll interval, so Packer sees each
 * change at once; "off-phase" moves them half an interval, the lag a 3 s poller has on average.
 */
export const PROFILES: Record<string, Delays> = {
  'emulator defaults': { ...DEFAULT_DELAYS },
  'cloud-like': { ...DEFAULT_DELAYS, create: 30_000, shutdown: 5_000, power_off: 5_000, snapshot: 60_000 },
  'cloud-like off-phase': { ...DEFAULT_DELAYS, create: 31_500, shutdown: 5_000, power_off: 5_000, snapshot: 61_500 },
};
/** Profiles the deploys run under (100 droplets take a few minutes each). */
export const DEPLOY_PROFILES = ['emulator defaults', 'cloud-like'];

export interface BuildFigures {
  tool: 'provisional' | 'packer';
  wallMs: number;
  /** Configured delay of each action the build hit. */
  delays: Record<string, number>;
  delaysMs: number;
  /** Guest work, counted apart (boot-to-SSH, upload, scripts, clean, power-off). */
  guest: Record<string, number>;
  guestMs: number;
  /** The emulator's machine time beyond a delay, per action. */
  emulatorExtra: Record<string, number>;
  emulatorExtraMs: number;
  /** W - D - G - E. */
  overheadMs: number;
  /** Time from a state change at the emulator until the tool acted on it. */
  lag: Record<string, number>;
  requests: number;
  byRoute: Record<string, number>;
  rateLimited: number;
}

export interface DeployFigures {
  servers: number;
  wallMs: number;
  ok: boolean;
  error?: string;
  requests: number;
  byRoute: Record<string, number>;
  rateLimited: number;
  /** From the create request until the emulator had every droplet active (its own time). */
  allActiveMs?: number;
  memoryAddedBytes: number;
  memoryPeakBytes: number;
}

export interface DigitalOceanFigures {
  facts: string;
  builds: { profile: string; delays: Delays; provisional: BuildFigures; packer?: BuildFigures; packerError?: string }[];
  deploys: (DeployFigures & { profile: string })[];
  leftovers: { droplets: number; processes: number };
}

/** Droplets and actions as the emulator sees them, sampled every 20 ms (wall-clock ms). */
class EmulatorWatch {
  readonly droplets = new Map<number, { name: string; seen: number; active?: number; off?: number; gone?: number }>();
  readonly actions = new Map<number, { type: string; resourceId: number; seen: number; done?: number; status: string }>();
  /** Actions of earlier runs, which the emulator keeps. */
  private readonly earlier = new Set<number>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly emulator: DigitalOceanEmulator) {
    this.timer = setInterval(() => this.sample(), 20);
  }

  private sample(): void {
    const now = Date.now();
    const { cloud } = this.emulator;
    for (const d of cloud.droplets.values()) {
      let seen = this.droplets.get(d.id);
      if (!seen) this.droplets.set(d.id, (seen = { name: d.name, seen: now }));
      if (d.status === 'active' && d.ip && !seen.active) seen.active = now;
      if (d.status === 'off' && !seen.off) seen.off = now;
    }
    for (const [id, seen] of this.droplets) if (!seen.gone && !cloud.droplets.has(id)) seen.gone = now;
    for (const a of cloud.actions.values()) {
      if (this.earlier.has(a.id)) continue;
      let seen = this.actions.get(a.id);
      if (!seen) this.actions.set(a.id, (seen = { type: a.type, resourceId: a.resourceId, seen: now, status: a.status }));
      if (a.status !== 'in-progress' && !seen.done) {
        seen.done = now;
        seen.status = a.status;
      }
    }
  }

  /** Forget what was seen; from now on only new droplets and actions count. */
  clear(): void {
    this.droplets.clear();
    this.actions.clear();
    for (const id of this.emulator.cloud.actions.keys()) this.earlier.add(id);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

export async function benchCloudDigitalOcean(opts: { deployCounts?: number[]; profiles?: string[]; deployProfiles?: string[] } = {}): Promise<DigitalOceanFigures> {
  const deployCounts = opts.deployCounts ?? [1, 100];
  const profiles = opts.profiles ?? Object.keys(PROFILES);
  const deployProfiles = opts.deployProfiles ?? DEPLOY_PROFILES;
  return withTeardown(async (teardown) => {
    const { cli, remove } = copyCli();
    teardown.add('remove the CLI copy', remove);
    const figures: DigitalOceanFigures = { facts: machineFacts(), builds: [], deploys: [], leftovers: { droplets: 0, processes: 0 } };
    const poolDirs: string[] = [];
    for (const profile of profiles) {
      const delays = PROFILES[profile];
      if (!delays) throw new Error(`no delay profile "${profile}" (there are: ${Object.keys(PROFILES).join(', ')})`);
      const emulator = await startDigitalOceanEmulator({ delays, onError: (err) => console.error(`emulator: ${(err as Error).message}`) });
      poolDirs.push(emulator.pool.runDir);
      const watch = new EmulatorWatch(emulator);
      const root = scratchDir('provisional-bench-do-');
      const stateDir = join(root, 'state');
      const env = { DIGITALOCEAN_TOKEN: emulator.token, PROVISIONAL_STATE_DIR: stateDir, CHECKPOINT_DISABLE: '1' };
      const projectDir = join(root, 'project');
      const closeEmulator = teardown.add(`close the emulator (${profile})`, async () => {
        watch.stop();
        // Servers of the deploys go through the CLI first, as a user would; the emulator removes the rest.
        if (deployProfiles.includes(profile)) await runTimed(process.execPath, [cli, 'destroy', 'bench', '--yes'], { cwd: projectDir, env, timeoutMs: 10 * 60_000 }).catch(() => undefined);
        figures.leftovers.droplets += emulator.cloud.liveDroplets().length;
        await emulator.close();
        rmSync(root, { recursive: true, force: true });
      });
      try {
        writeProject(projectDir, emulator, 1);
        writeFileSync(join(root, 'hello.sh'), SCRIPT, { mode: 0o755 });

        // Provisional polls against the durations it saw before (src/core/durations.ts): a first,
        // unmeasured build teaches it, as any earlier build would on a user's machine.
        if (process.env.BENCH_DO_WARMUP !== '0') {
          console.error(`[${profile}] first build (unmeasured: Provisional learns the durations)...`);
          const warm = await runTimed(process.execPath, [cli, '--json', 'image', 'create', IMAGE], { cwd: projectDir, env, timeoutMs: 20 * 60_000 });
          if (warm.code !== 0) throw new Error(`the first build exited ${warm.code}: ${warm.stderr}`);
        }
        console.error(`[${profile}] building ${IMAGE} with Provisional...`);
        const provisional = await measureBuild('provisional', emulator, watch, () =>
          runTimed(process.execPath, [cli, '--json', 'image', 'create', IMAGE], { cwd: projectDir, env, timeoutMs: 20 * 60_000 }),
        );
        console.error(`[${profile}] building ${IMAGE} with Packer...`);
        const template = join(root, 'packer.json');
        writeFileSync(template, JSON.stringify(packerTemplate(emulator, join(root, 'hello.sh')), null, 2));
        let packer: BuildFigures | undefined;
        let packerError: string | undefined;
        try {
          packer = await measureBuild('packer', emulator, watch, () =>
            runTimed('packer', ['build', '-color=false', template], { cwd: root, env: { ...env, PACKER_CACHE_DIR: join(root, 'packer-cache') }, timeoutMs: 20 * 60_000 }),
          );
        } catch (err) {
          packerError = (err as Error).message;
        }
        figures.builds.push({ profile, delays: { ...delays }, provisional, packer, packerError });

        if (deployProfiles.includes(profile)) {
          for (const n of deployCounts) {
            console.error(`[${profile}] deploying ${n} droplet${n > 1 ? 's' : ''}...`);
            figures.deploys.push({ profile, ...(await measureDeploy(n, emulator, watch, cli, projectDir, env)) });
            const destroy = await runTimed(process.execPath, [cli, 'destroy', 'bench', '--yes'], { cwd: projectDir, env, timeoutMs: 10 * 60_000 });
            if (destroy.code !== 0) throw new Error(`provisional destroy exited ${destroy.code}: ${destroy.stderr}`);
            await waitNoMachines(emulator);
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

function writeProject(dir: string, emulator: DigitalOceanEmulator, servers: number): void {
  mkdirSync(join(dir, `config/provisional/${IMAGE}/scripts`), { recursive: true });
  writeFileSync(
    join(dir, 'config/provisional/config.yml'),
    [
      'project: bench',
      'provider:',
      '  name: digitalocean',
      `  api-url: ${emulator.url}`,
      `  ssh-port: ${emulator.sshPort}`,
      `  region: ${REGION}`,
      `  size: ${SIZE}`,
      'images:',
      `  ${IMAGE}:`,
      `    base-image: ${BASE}`,
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

/** What a Packer 1.6.6 user writes for the same build (https://www.packer.io/docs/builders/digitalocean). */
function packerTemplate(emulator: DigitalOceanEmulator, script: string): unknown {
  return {
    builders: [
      {
        type: 'digitalocean',
        api_url: emulator.url,
        api_token: emulator.token,
        image: BASE,
        region: REGION,
        size: SIZE,
        ssh_username: 'root',
        ssh_port: emulator.sshPort,
        snapshot_name: `${IMAGE}-packer-{{timestamp}}`,
      },
    ],
    provisioners: [{ type: 'shell', script }],
  };
}

async function measureBuild(tool: BuildFigures['tool'], emulator: DigitalOceanEmulator, watch: EmulatorWatch, start: () => Promise<TimedRun>): Promise<BuildFigures> {
  emulator.requests.clear();
  watch.clear();
  const run = await start();
  await new Promise((resolve) => setTimeout(resolve, 100)); // the watch's last sample
  if (run.code !== 0) throw new Error(`${tool} build exited ${run.code}:\n${(run.stdout + run.stderr).trim().split('\n').slice(-15).join('\n')}`);
  const delays = emulator.delays;
  const builder = [...watch.droplets.values()][0];
  if (!builder?.active) throw new Error(`${tool}: the emulator never saw the builder active`);
  const hit = [...watch.actions.values()].filter((a) => a.type !== 'create');
  const byType = (type: string) => hit.filter((a) => a.type === type);

  const d: Record<string, number> = { create: delays.create };
  const extra: Record<string, number> = { create: Math.max(0, builder.active - builder.seen - delays.create) };
  for (const a of hit) {
    const delay = delays[a.type as keyof Delays] ?? 0;
    d[a.type] = (d[a.type] ?? 0) + delay;
    extra[a.type] = (extra[a.type] ?? 0) + Math.max(0, (a.done ?? a.seen) - a.seen - delay);
  }
  const abs = (at: number) => run.startedAt + at;
  const guest: Record<string, number> = {};
  const lag: Record<string, number> = {};
  const snapshotDone = byType('snapshot')[0]?.done;
  if (tool === 'provisional') {
    const steps = stepDurations(run);
    for (const s of ['ssh', 'upload', 'script', 'clean']) guest[s] = steps[s] ?? 0;
    const events = jsonEvents(run);
    const doneAt = (step: string) => events.find((e) => e.event.type === 'step-done' && e.event.step === step)?.at;
    const cleaned = doneAt('clean');
    if (cleaned !== undefined && builder.off) guest['power-off (guest)'] = Math.max(0, builder.off - abs(cleaned));
    const launched = doneAt('launch');
    if (launched !== undefined) lag['active -> seen'] = abs(launched) - builder.active;
    const stopped = doneAt('stop');
    if (stopped !== undefined && builder.off) lag['off -> seen'] = abs(stopped) - builder.off;
    const snapped = doneAt('snapshot');
    if (snapped !== undefined && snapshotDone) lag['snapshot done -> seen'] = abs(snapped) - snapshotDone;
  } else {
    const lineAt = (pattern: RegExp) => run.lines.find((l) => pattern.test(l.text))?.at;
    const active = lineAt(/Using ssh communicator/);
    const connected = lineAt(/Connected to SSH/);
    const provisioning = lineAt(/Provisioning with shell script/);
    const shuttingDown = lineAt(/Gracefully shutting down/);
    const snapshotting = lineAt(/Creating snapshot/);
    const destroying = lineAt(/Destroying droplet/);
    if (active !== undefined && connected !== undefined) guest.ssh = connected - active;
    if (provisioning !== undefined && shuttingDown !== undefined) guest.script = shuttingDown - provisioning;
    if (active !== undefined) lag['active -> seen'] = abs(active) - builder.active;
    if (snapshotting !== undefined && builder.off) lag['off -> seen'] = abs(snapshotting) - builder.off;
    if (destroying !== undefined && snapshotDone) lag['snapshot done -> seen'] = abs(destroying) - snapshotDone;
  }
  const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
  const delaysMs = sum(d);
  const guestMs = sum(guest);
  const emulatorExtraMs = sum(extra);
  return {
    tool,
    wallMs: run.wallMs,
    delays: d,
    delaysMs,
    guest,
    guestMs,
    emulatorExtra: extra,
    emulatorExtraMs,
    overheadMs: run.wallMs - delaysMs - guestMs - emulatorExtraMs,
    lag,
    requests: emulator.requests.total,
    byRoute: emulator.requests.counts(),
    rateLimited: emulator.requests.statuses()[429] ?? 0,
  };
}

async function measureDeploy(n: number, emulator: DigitalOceanEmulator, watch: EmulatorWatch, cli: string, projectDir: string, env: NodeJS.ProcessEnv): Promise<DeployFigures> {
  writeProject(projectDir, emulator, n);
  emulator.requests.clear();
  watch.clear();
  const memory = new MemorySampler();
  const started = Date.now();
  const run = await runTimed(process.execPath, [cli, 'deploy', 'bench', '--cold', '--parallel', String(n)], { cwd: projectDir, env, timeoutMs: 30 * 60_000 });
  const { added, peak } = memory.stop();
  await new Promise((resolve) => setTimeout(resolve, 100));
  const actives = [...watch.droplets.values()].map((d) => d.active);
  return {
    servers: n,
    wallMs: run.wallMs,
    ok: run.code === 0,
    error: run.code === 0 ? undefined : run.stderr.trim().split('\n').slice(-5).join('\n'),
    requests: emulator.requests.total,
    byRoute: emulator.requests.counts(),
    rateLimited: emulator.requests.statuses()[429] ?? 0,
    allActiveMs: actives.length >= n && actives.every((a) => a !== undefined) ? Math.max(...(actives as number[])) - started : undefined,
    memoryAddedBytes: added,
    memoryPeakBytes: peak,
  };
}

async function waitNoMachines(emulator: DigitalOceanEmulator, timeoutMs = 5 * 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (emulator.pool.list().length > 0) {
    if (Date.now() > deadline) throw new Error(`${emulator.pool.list().length} machines still there after the destroy`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const ms = (x: number) => `${Math.round(x)} ms`;
const parts = (r: Record<string, number>) =>
  Object.entries(r)
    .map(([k, v]) => `${k} ${seconds(v)}`)
    .join(', ') || '-';
const routes = (r: Record<string, number>) =>
  Object.entries(r)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join('; ');

export function formatDigitalOcean(f: DigitalOceanFigures): string {
  const out = [`### DigitalOcean (API emulator)`, '', `Machine: ${f.facts}.`, ''];
  for (const b of f.builds) {
    const tools = [b.provisional, ...(b.packer ? [b.packer] : [])];
    out.push(
      `#### Build, delays "${b.profile}" (create ${seconds(b.delays.create)}, shutdown ${seconds(b.delays.shutdown)}, power_off ${seconds(b.delays.power_off)}, snapshot ${seconds(b.delays.snapshot)})`,
      '',
      `| | ${tools.map((t) => (t.tool === 'provisional' ? 'Provisional' : 'Packer 1.6.6')).join(' | ')} |`,
      `| --- |${tools.map(() => ' --- |').join('')}`,
      `| W, wall time | ${tools.map((t) => seconds(t.wallMs)).join(' | ')} |`,
      `| D, delays waited (actions hit) | ${tools.map((t) => `${seconds(t.delaysMs)} (${parts(t.delays)})`).join(' | ')} |`,
      `| G, guest work (counted apart) | ${tools.map((t) => `${seconds(t.guestMs)} (${parts(t.guest)})`).join(' | ')} |`,
      `| E, emulator machine time beyond delays | ${tools.map((t) => `${seconds(t.emulatorExtraMs)} (${parts(t.emulatorExtra)})`).join(' | ')} |`,
      `| O = W - D - G - E, the tool's overhead | ${tools.map((t) => seconds(t.overheadMs)).join(' | ')} |`,
      `| **O / D** (target <= 5 %) | ${tools.map((t) => `**${percent(t.overheadMs / t.delaysMs)}**`).join(' | ')} |`,
      `| (W - G) / D - 1 (E included) | ${tools.map((t) => percent((t.wallMs - t.guestMs) / t.delaysMs - 1)).join(' | ')} |`,
      `| lag: emulator state -> tool acts | ${tools.map((t) => Object.entries(t.lag).map(([k, v]) => `${k} ${ms(v)}`).join(', ')).join(' | ')} |`,
      `| **API requests** | ${tools.map((t) => `**${t.requests}**`).join(' | ')} |`,
      `| 429 answers | ${tools.map((t) => t.rateLimited).join(' | ')} |`,
      '',
      ...tools.map((t) => `Requests, ${t.tool}: ${routes(t.byRoute)}.`),
      ...(b.packer ? [`Provisional's requests / Packer's: ${(b.provisional.requests / b.packer.requests).toFixed(2)} (target <= 0.5).`] : [`Packer failed: ${b.packerError}`]),
      '',
    );
  }
  out.push('#### Deploy (`provisional deploy bench --cold --parallel N`, the default rate limit of 250 requests a minute)', '');
  out.push('| delays | droplets | result | wall time | all active at the emulator | API requests | per droplet (target <= 0.5) | 429 answers (target 0) | memory added (peak used) |');
  out.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const d of f.deploys) {
    out.push(
      `| ${d.profile} | ${d.servers} | ${d.ok ? 'ok' : `failed: ${d.error?.replace(/\n/g, ' ').slice(0, 200)}`} | ${seconds(d.wallMs)} | ${d.allActiveMs === undefined ? '-' : seconds(d.allActiveMs)} | ${d.requests} | ${(d.requests / d.servers).toFixed(2)} | ${d.rateLimited} | ${mib(d.memoryAddedBytes)} (${mib(d.memoryPeakBytes)}) |`,
    );
  }
  out.push('', ...f.deploys.map((d) => `Requests, "${d.profile}", ${d.servers} droplet${d.servers > 1 ? 's' : ''}: ${routes(d.byRoute)}.`));
  out.push('', `Left after the run: ${f.leftovers.droplets} droplets, ${f.leftovers.processes} container processes.`);
  return out.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const counts = process.env.BENCH_DO_SERVERS?.split(',').map(Number);
  const profiles = process.env.BENCH_DO_PROFILES?.split(',');
  const figures = await benchCloudDigitalOcean({ deployCounts: counts, profiles, deployProfiles: process.env.BENCH_DO_DEPLOY_PROFILES?.split(',') });
  console.log(formatDigitalOcean(figures));
  if (process.env.BENCH_JSON) writeFileSync(process.env.BENCH_JSON, JSON.stringify(figures, null, 2));
}
