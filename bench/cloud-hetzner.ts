/**
 * Provisional on Hetzner Cloud, through the API emulator (servers are systemd-nspawn containers
 * with real SSH), beside Packer 1.6.6's hcloud builder on the same emulator, one run each per
 * delay profile; figures printed, nothing asserted. Per tool:
 *   W  wall time of the command;
 *   D  the emulator's delays the build necessarily waits (create; create_image; shutdown and
 *      poweroff only if the tool asked for them: Provisional powers off from inside the guest);
 *   W - D  everything else: guest work (boot to SSH, upload, script, power-off) and the tool's own
 *      time (start-up, poll lag, round trips); Provisional's steps are shown too;
 *   API requests, by operation, and 429 answers.
 * A first, unmeasured Provisional build teaches it the durations (src/core/durations.ts), as any
 * earlier build would on a user's machine.
 *
 *   node dist/bench/cloud-hetzner.js      (BENCH_HZ_PROFILES="emulator defaults,cloud-like")
 */
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startHetznerEmulator, type HetznerEmulator } from '../src/emulators/hetzner/server.js';
import { DEFAULT_DELAYS, type Delays } from '../src/emulators/hetzner/cloud.js';
import { copyCli, machineFacts, percent, runTimed, scratchDir, seconds, stepDurations, withTeardown, type TimedRun } from './cloud-lib.js';

const SCRIPT = '#!/bin/sh\necho hello > /etc/hello\n';
const IMAGE = 'app';

/** Cloud-like: roughly what a small server takes at Hetzner (create ~10 s, a small snapshot ~30 s). */
export const PROFILES: Record<string, Delays> = {
  'emulator defaults': { ...DEFAULT_DELAYS },
  'cloud-like': { ...DEFAULT_DELAYS, create: 10_000, shutdown: 1_000, poweroff: 2_000, create_image: 30_000 },
};

interface BuildFigures {
  tool: 'Provisional' | 'Packer 1.6.6 (hcloud)';
  wallMs: number;
  delays: Record<string, number>;
  delaysMs: number;
  steps?: Record<string, number>;
  requests: number;
  byRoute: Record<string, number>;
  rateLimited: number;
}

async function measure(tool: BuildFigures['tool'], emulator: HetznerEmulator, start: () => Promise<TimedRun>): Promise<BuildFigures> {
  emulator.requests.clear();
  const run = await start();
  if (run.code !== 0) throw new Error(`${tool} exited ${run.code}:\n${(run.stdout + run.stderr).trim().split('\n').slice(-15).join('\n')}`);
  const byRoute = emulator.requests.counts();
  const hit = (route: string) => (byRoute[route] ?? 0) > 0;
  const d = emulator.delays;
  const delays: Record<string, number> = { create: d.create, create_image: d.create_image };
  if (hit('POST /v1/servers/{id}/actions/shutdown')) delays.shutdown = d.shutdown;
  if (hit('POST /v1/servers/{id}/actions/poweroff')) delays.poweroff = d.poweroff;
  return {
    tool,
    wallMs: run.wallMs,
    delays,
    delaysMs: Object.values(delays).reduce((a, b) => a + b, 0),
    steps: tool === 'Provisional' ? stepDurations(run) : undefined,
    requests: emulator.requests.total,
    byRoute,
    rateLimited: emulator.requests.statuses()[429] ?? 0,
  };
}

function writeProject(dir: string, emulator: HetznerEmulator): void {
  mkdirSync(join(dir, `config/provisional/${IMAGE}/scripts`), { recursive: true });
  const config = ['project: bench', 'provider:', '  name: hetzner', `  ssh-port: ${emulator.sshPort}`, 'images:', `  ${IMAGE}:`, '    base-image: debian-12', ''];
  writeFileSync(join(dir, 'config/provisional/config.yml'), config.join('\n'));
  const script = join(dir, `config/provisional/${IMAGE}/scripts/10-hello.sh`);
  writeFileSync(script, SCRIPT);
  chmodSync(script, 0o755);
}

/** What a Packer 1.6.6 user writes for the same build (token and endpoint from HCLOUD_TOKEN / HCLOUD_ENDPOINT). */
function packerTemplate(emulator: HetznerEmulator, script: string): unknown {
  const builder = { type: 'hcloud', image: 'debian-12', location: 'fsn1', server_type: 'cx22', ssh_username: 'root', ssh_port: emulator.sshPort, snapshot_name: `${IMAGE}-packer-{{timestamp}}` };
  return { builders: [builder], provisioners: [{ type: 'shell', script }] };
}

export async function benchCloudHetzner(profiles = Object.keys(PROFILES)): Promise<{ facts: string; builds: { profile: string; delays: Delays; tools: BuildFigures[] }[] }> {
  return withTeardown(async (teardown) => {
    const { cli, remove } = copyCli();
    teardown.add('remove the CLI copy', remove);
    const builds = [];
    for (const profile of profiles) {
      const delays = PROFILES[profile];
      if (!delays) throw new Error(`no delay profile "${profile}" (there are: ${Object.keys(PROFILES).join(', ')})`);
      const emulator = await startHetznerEmulator({ delays, onError: (err) => console.error(`emulator: ${(err as Error).message}`) });
      const root = scratchDir('provisional-bench-hetzner-');
      const close = teardown.add(`close the emulator (${profile})`, async () => {
        await emulator.close();
        rmSync(root, { recursive: true, force: true });
      });
      try {
        const env = { HCLOUD_TOKEN: emulator.token, HCLOUD_ENDPOINT: emulator.endpoint, PROVISIONAL_STATE_DIR: join(root, 'state'), CHECKPOINT_DISABLE: '1' };
        const projectDir = join(root, 'project');
        writeProject(projectDir, emulator);
        writeFileSync(join(root, 'hello.sh'), SCRIPT, { mode: 0o755 });
        writeFileSync(join(root, 'packer.json'), JSON.stringify(packerTemplate(emulator, join(root, 'hello.sh')), null, 2));
        const provisional = () => runTimed(process.execPath, [cli, '--json', 'image', 'create', IMAGE], { cwd: projectDir, env, timeoutMs: 20 * 60_000 });
        console.error(`[${profile}] first build (unmeasured: Provisional learns the durations)...`);
        await measure('Provisional', emulator, provisional);
        console.error(`[${profile}] Provisional...`);
        const mine = await measure('Provisional', emulator, provisional);
        console.error(`[${profile}] Packer...`);
        const packer = await measure('Packer 1.6.6 (hcloud)', emulator, () => runTimed('packer', ['build', '-color=false', join(root, 'packer.json')], { cwd: root, env, timeoutMs: 20 * 60_000 }));
        builds.push({ profile, delays: { ...delays }, tools: [mine, packer] });
      } finally {
        await close();
      }
    }
    return { facts: machineFacts(), builds };
  });
}

export function formatHetzner(f: Awaited<ReturnType<typeof benchCloudHetzner>>): string {
  const out = ['### Hetzner Cloud (API emulator)', '', `Machine: ${f.facts}.`, ''];
  const parts = (r: Record<string, number>) => Object.entries(r).map(([k, v]) => `${k} ${seconds(v)}`).join(', ');
  for (const b of f.builds) {
    const [mine, packer] = b.tools as [BuildFigures, BuildFigures];
    out.push(
      `#### Build, delays "${b.profile}" (create ${seconds(b.delays.create)}, shutdown ${seconds(b.delays.shutdown)}, create_image ${seconds(b.delays.create_image)})`,
      '',
      `| | ${mine.tool} | ${packer.tool} |`,
      '| --- | --- | --- |',
      `| W, wall time | ${seconds(mine.wallMs)} | ${seconds(packer.wallMs)} |`,
      `| D, delays waited | ${seconds(mine.delaysMs)} (${parts(mine.delays)}) | ${seconds(packer.delaysMs)} (${parts(packer.delays)}) |`,
      `| W - D, guest work and the tool's own time | ${seconds(mine.wallMs - mine.delaysMs)} | ${seconds(packer.wallMs - packer.delaysMs)} |`,
      `| (W - D) / D | ${percent((mine.wallMs - mine.delaysMs) / mine.delaysMs)} | ${percent((packer.wallMs - packer.delaysMs) / packer.delaysMs)} |`,
      `| **API requests** | **${mine.requests}** | **${packer.requests}** |`,
      `| 429 answers | ${mine.rateLimited} | ${packer.rateLimited} |`,
      '',
      `Provisional's steps: ${parts(mine.steps ?? {})}.`,
      ...[mine, packer].map((t) => `Requests, ${t.tool}: ${Object.entries(t.byRoute).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join('; ')}.`),
      `Provisional's requests / Packer's: ${(mine.requests / packer.requests).toFixed(2)}.`,
      '',
    );
  }
  return out.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(formatHetzner(await benchCloudHetzner(process.env.BENCH_HZ_PROFILES?.split(','))));
}
