/**
 * The fault matrix's traffic rows, the same on every provider with endpoints: under a constant
 * load of 5 requests/s (loopback, bounded) against `staging`'s endpoint, a warm deploy to v2 that
 * fails health, and a warm deploy interrupted at each of its points (launch, health, attach,
 * drain). Ctrl-C (SIGINT): 0 failed requests, the endpoint answers from the old servers only,
 * nothing left for cleanup. SIGKILL: `cleanup` leaves no member of the dead run, no server of it,
 * nothing of the provider's endpoint resources beyond the endpoint (`assertClean`), and puts the old
 * servers the run took out back in, so that the endpoint answers from all of them.
 *
 * Each signal case proves it landed during the step it names: it waits for the step's event, and
 * what the command printed before the signal landed shows no later step begun. At drain it also
 * waits until the provider itself (its emulator, HAProxy's admin socket) has the old servers out of
 * the endpoint or draining, with one slow request held open through the endpoint, so that there is
 * a connection to drain (HAProxy's drain ends as soon as none is open).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startCli, type CliResult } from '../helpers/cli.js';
import { holdOpen, startLoad, summary, type LoadResult } from '../helpers/load.js';
import { tempProject, type TempProject } from '../helpers/project.js';
import { buildScript, trafficConfig, WEB_PORT } from '../e2e/traffic-flow.js';

export interface TrafficFaultTarget {
  providerYaml: string;
  baseImage: string;
  env: NodeJS.ProcessEnv;
  endpointYaml: string;
  servers: number;
  /**
   * The endpoint's members as the provider itself has them (its API or emulator, HAProxy's admin
   * socket; not Provisional's view): `draining` ones get no new connections.
   */
  providerMembers(): Promise<{ id: string; draining: boolean }[]>;
  /** How the provider shows a server being drained: listed as draining, or gone from the members at once. */
  drainShows: 'draining' | 'gone';
  /** What the provider must not hold after a SIGKILL and `cleanup`: members or servers of no live server, addresses of no endpoint... */
  assertClean(live: { id: string; name: string }[]): Promise<void>;
  close(): Promise<void>;
}

/** The traffic app's deploy script, which leaves the app stopped when FAULT_UNHEALTHY=1 (health then fails). */
const DEPLOY_SCRIPT = `#!/bin/sh
set -eu
set -- $SSH_CONNECTION
echo "$3" > /etc/app-address
if [ "\${FAULT_UNHEALTHY:-0}" = 1 ]; then echo "not starting the app"; exit 0; fi
systemd-run --collect --unit=app-web /usr/local/bin/app "$3" ${WEB_PORT}
`;

export type Point = 'launch' | 'health' | 'attach' | 'drain';

const STARTED: Record<Point, RegExp> = {
  launch: /"type":"step","step":"launch"/,
  health: /"type":"step","step":"health"|waiting for SSH(?: and the health check)?…/,
  attach: /healthy \(SSH/,
  drain: /leaving the endpoint/,
};
/** What, printed before the signal landed, shows it came after the point. */
const LATER: Record<Point, RegExp> = {
  launch: /healthy \(SSH|leaving the endpoint/,
  health: /leaving the endpoint|destroying app/,
  attach: /leaving the endpoint|destroying app/,
  drain: /destroying app/,
};

export const PROJECT = 'trafficfaults';

function config(t: TrafficFaultTarget): string {
  const lines = `      endpoint: ${t.endpointYaml}\n      env:\n        FAULT_UNHEALTHY: \${FAULT_UNHEALTHY:-0}\n`;
  return trafficConfig({ project: PROJECT, providerYaml: t.providerYaml, baseImage: t.baseImage, servers: t.servers, healthTimeoutS: 20, drainS: 3, lines });
}

/** `target.points`: the points of a warm deploy this target interrupts (default: all of them). */
export function trafficFaults(title: string, target: { points?: Point[] }, open: () => Promise<TrafficFaultTarget>): void {
  const points = (all: Point[]) => all.filter((p) => !target.points || target.points.includes(p));
  describe(title, { timeout: 30 * 60_000 }, () => {
    let t: TrafficFaultTarget;
    let project: TempProject;
    let address = { host: '', port: 0 };
    let v1 = '';
    const start = (args: string[], env: NodeJS.ProcessEnv = {}) => startCli(args, { cwd: project.dir, env: { ...t.env, ...env } });
    const ok = async (args: string[]): Promise<CliResult> => {
      const r = await start(args).done;
      assert.equal(r.code, 0, `provisional ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
      return r;
    };
    const lastJson = <T>(stdout: string): T => JSON.parse(stdout.trim().split('\n').at(-1)!) as T;
    const servers = async () => lastJson<{ servers: { id: string; name: string; version: string }[] }>((await ok(['server', 'list', 'staging', '--json'])).stdout).servers;
    const members = async () => lastJson<{ endpoints: { members: { id: string; name: string }[] }[] }>((await ok(['server', 'list', 'staging', '--json'])).stdout).endpoints[0]?.members ?? [];

    /** staging on v1, its endpoint answering from it (a deploy attaches running servers that are not members). */
    const onV1 = async () => {
      const live = await servers();
      if (live.some((s) => s.version !== v1) || live.length !== t.servers) await ok(['rollback', 'staging', 'app', '--to', v1]);
      else if ((await members()).length !== t.servers) await ok(['deploy', 'staging', '--pin', `app@${v1}`]);
    };

    /** The endpoint answers only from v1, from every server, and its members are staging's servers. */
    const servingV1 = async (load: LoadResult, what: string) => {
      const seen = summary(load.answers, (a) => (a.body.startsWith('!') ? a.body : a.body.split(' ')[0]!));
      assert.equal(load.failures, 0, `${what}: failed requests: ${seen.join(', ')}`);
      assert.ok(load.requests >= 10, `${what}: the load ran (${load.requests} requests)`); // >= 2 s at 5/s
      const after = startLoad({ ...address, perSecond: 20, maxRequests: 10 });
      const bodies = (await after.finished()).answers.map((a) => a.body);
      assert.deepEqual(new Set(bodies.map((b) => b.split(' ')[0])), new Set(['v1']), `${what}: afterwards only v1 answers: ${bodies.join(', ')}`);
      const live = await servers();
      assert.deepEqual(live.map((s) => s.version), Array(t.servers).fill(v1), `${what}: staging runs v1`);
      assert.deepEqual((await members()).map((m) => m.id).sort(), live.map((s) => s.id).sort(), `${what}: the endpoint's members are staging's servers`);
    };

    /**
     * Resolves once `run` reached `point`. At drain: once the provider has every old server out of
     * the endpoint or draining (printing "leaving the endpoint" comes before the provider hears it).
     */
    const reach = async (run: ReturnType<typeof startCli>, point: Point, oldIds: string[]) => {
      // At attach: every new server healthy (the next thing is joining the endpoint).
      if (point === 'attach') return waitCount(run, STARTED.attach, t.servers);
      await run.waitFor(STARTED[point], 120_000);
      if (point !== 'drain') return;
      const deadline = performance.now() + 60_000;
      for (;;) {
        const members = await t.providerMembers();
        const drained = (id: string) => (t.drainShows === 'gone' ? !members.some((m) => m.id === id) : members.some((m) => m.id === id && m.draining));
        if (oldIds.every(drained)) return;
        if (performance.now() > deadline) throw new Error(`the old servers were never seen ${t.drainShows} at the provider: ${JSON.stringify(members)}`);
        await pause(50);
      }
    };
    /** At drain, a slow request held open through the endpoint (to an old server: the only members yet), so that the drain has a connection to wait for. */
    const holdIfDrain = (point: Point) => (point === 'drain' ? holdOpen({ ...address, path: '/hold?600' }) : undefined);

    before(async () => {
      t = await open();
      project = tempProject('provisional-traffic-faults-');
      project.writeConfig(config(t));
      project.write('config/provisional/app/deploy/10-serve.sh', DEPLOY_SCRIPT, 0o755);
      project.write('config/provisional/app/scripts/10-app.sh', buildScript('v1'), 0o755);
    });
    after(async () => {
      await start(['destroy', 'staging', '--yes']).done.catch(() => undefined);
      await t?.close();
      project?.remove();
    });

    it('setup: staging on v1 behind its endpoint; v2 built', async () => {
      await ok(['image', 'update']);
      const deployed = (await ok(['deploy', 'staging', '--json'])).stdout.split('\n').filter((l) => l.includes('"type":"deployed"'));
      const endpoint = (JSON.parse(deployed[0]!) as { endpoints: { app: { address: string } } }).endpoints.app;
      const m = /^(.*):(\d+)$/.exec(endpoint.address);
      address = m ? { host: m[1]!, port: Number(m[2]) } : { host: endpoint.address, port: WEB_PORT };
      v1 = (await servers())[0]!.version;
      project.write('config/provisional/app/scripts/10-app.sh', buildScript('v2'), 0o755);
      await ok(['image', 'update']);
    });

    it('a warm deploy whose new servers fail health: exit 1, 0 failed requests, the old servers keep serving', async () => {
      await onV1();
      const load = startLoad({ ...address, perSecond: 5, maxRequests: 1500, maxMs: 5 * 60_000 });
      const r = await start(['deploy', 'staging'], { FAULT_UNHEALTHY: '1' }).done;
      const result = await load.stop();
      assert.equal(r.code, 1, `exit ${r.code}:\n${r.stderr}`);
      assert.match(r.stderr, /health/);
      await servingV1(result, 'after a failed health check');
      assert.match((await ok(['cleanup', '--dry-run'])).stdout, /nothing to clean up/);
    });

    for (const point of points(['launch', 'health', 'attach', 'drain'])) {
      it(`SIGINT at ${point} of a warm deploy under load: 0 failed requests, the old servers keep serving, nothing to clean up`, async () => {
        await onV1();
        const oldIds = (await servers()).map((s) => s.id);
        const load = startLoad({ ...address, perSecond: 5, maxRequests: 1500, maxMs: 5 * 60_000 });
        const hold = holdIfDrain(point);
        await pause(1000);
        const run = start(['--json', 'deploy', 'staging']);
        try {
          await reach(run, point, oldIds);
        } finally {
          run.child.kill('SIGINT');
        }
        const r = await run.done;
        await pause(1500);
        hold?.close();
        const result = await load.stop();
        const landed = r.stdout.search(/interrupted: cleaning up/);
        assert.ok(landed >= 0, `SIGINT never landed (exit ${r.code}):\n${r.stderr}`);
        assert.doesNotMatch(r.stdout.slice(0, landed), LATER[point], `SIGINT did not land at ${point}`);
        assert.equal(r.code, 130, `exit ${r.code}:\n${r.stderr}`);
        await servingV1(result, `SIGINT at ${point}`);
        assert.match((await ok(['cleanup', '--dry-run'])).stdout, /nothing to clean up/);
      });
    }

    for (const point of points(['attach', 'drain'])) {
      it(`SIGKILL at ${point} of a warm deploy, then cleanup: no member or server of the dead run is left, the old servers serve`, async () => {
        await onV1();
        const oldIds = (await servers()).map((s) => s.id);
        const hold = holdIfDrain(point);
        const run = start(['--json', 'deploy', 'staging']);
        try {
          await reach(run, point, oldIds);
        } finally {
          run.child.kill('SIGKILL');
          hold?.close();
        }
        const r = await run.done;
        assert.equal(r.code, null, 'the command was killed');
        assert.doesNotMatch(r.stdout, LATER[point], `SIGKILL did not land at ${point}`);
        await ok(['cleanup', '--yes']);
        const live = await servers();
        assert.ok(live.every((s) => s.version === v1), `only the old servers are left: ${JSON.stringify(live)}`);
        const memberIds = (await members()).map((m) => m.id);
        assert.ok(memberIds.every((id) => live.some((s) => s.id === id)), `no member of the dead run: ${JSON.stringify(memberIds)}`);
        // Old servers the dead run had taken out to drain are back: the endpoint serves from all of them.
        assert.deepEqual([...memberIds].sort(), live.map((s) => s.id).sort(), 'every old server is in the endpoint again');
        // ... as the provider has it too, taking new connections (not left draining).
        const serving = (await t.providerMembers()).filter((m) => !m.draining).map((m) => m.id);
        assert.deepEqual(serving.sort(), [...oldIds].sort(), `at the provider, the old servers are members again: ${serving.join(', ')}`);
        const bodies = (await startLoad({ ...address, perSecond: 20, maxRequests: 10 }).finished()).answers.map((a) => a.body);
        assert.deepEqual(new Set(bodies.map((b) => b.split(' ')[0])), new Set(['v1']), `after cleanup only v1 answers: ${bodies.join(', ')}`);
        await t.assertClean(live);
      });
    }
  });
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves once `pattern` was printed `count` times. */
async function waitCount(run: ReturnType<typeof startCli>, pattern: RegExp, count: number): Promise<void> {
  for (let n = 1; n <= count; n++) await run.waitFor(new RegExp(`(${pattern.source}[\\s\\S]*){${n}}`), 120_000);
}
