/**
 * Zero downtime through an endpoint: a constant 5 requests/s (loopback only, bounded in count and
 * time) against the endpoint of `staging`, through a warm deploy to a new version and then a
 * rollback, on the DigitalOcean and EC2 emulators and on local QEMU; and today's behaviour without
 * an endpoint for contrast (clients keep the address of the server they knew: a server's address on
 * the emulators, its `ports:` forward locally). Per run it prints:
 *   requests, failures     the load's answers during the command (target: 0 failures)
 *   switch                 from the last answer by the old version to the first by the new one
 *                          after it (target <= 1 s)
 *   both served            from the first answer by the new version to the last by the old one
 *                          (new servers joined before old ones left)
 *   drain                  from an old server leaving the endpoint to its destruction
 * One run each; figures printed, nothing asserted. The app is test/e2e/traffic-flow.ts's (a shell
 * script behind systemd socket activation answering with its image's edition and hostname).
 *
 *   node dist/bench/zero-downtime.js [digitalocean] [aws] [local]   (default: all three)
 *   local boots QEMU: run it under the heavy-test lock (flock /tmp/provisional-heavy.lock ...).
 */
import { writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { startDigitalOceanEmulator } from '../src/emulators/digitalocean/server.js';
import { startEc2Emulator } from '../src/emulators/aws/server.js';
import { buildScript, DEPLOY_SCRIPT, trafficConfig, WEB_PORT } from '../test/e2e/traffic-flow.js';
import { userTargetGroup } from '../test/helpers/elbv2.js';
import { startLoad, summary, switchTime, type LoadResult } from '../test/helpers/load.js';
import { copyCli, jsonEvents, machineFacts, runTimed, scratchDir, seconds, withTeardown, type Teardown, type TimedRun } from './cloud-lib.js';

interface Target {
  name: string;
  /** What the figures are of, printed above them. */
  title: string;
  providerYaml: string;
  baseImage: string;
  env: NodeJS.ProcessEnv;
  servers: number;
  /** The deployment's lines for a run with an endpoint, and for today's behaviour. */
  endpointLines: string;
  plainLines: string;
  /** Where clients go without an endpoint: the first server's address (from `server list --json`), or a fixed one. */
  plainAddress(servers: { address?: string }[]): { host: string; port: number };
}

interface Figures {
  what: string;
  load: LoadResult;
  switchMs?: number;
  /** From the first answer by the new version to the last by the old (both served meanwhile). */
  overlapMs?: number;
  drainMs?: number;
  wallMs: number;
  code: number | null;
}

const hostPort = (address: string, port = WEB_PORT) => {
  const m = /^(.*):(\d+)$/.exec(address);
  return m ? { host: m[1]!, port: Number(m[2]) } : { host: address, port };
};

function config(t: Target, lines: string): string {
  return trafficConfig({ project: 'zerodowntime', providerYaml: t.providerYaml, baseImage: t.baseImage, servers: t.servers, healthTimeoutS: 300, drainS: 2, lines });
}

async function runTarget(t: Target, teardown: Teardown): Promise<Figures[]> {
  console.log(`\n${t.title}`);
  const { cli, remove } = copyCli();
  teardown.add('the CLI copy', remove);
  const dir = scratchDir(`provisional-zd-${t.name}-`);
  teardown.add('the project', () => rmSync(dir, { recursive: true, force: true }));
  // Its own state and data (local versions and machines): nothing of an earlier run is found.
  const env = { ...t.env, PROVISIONAL_STATE_DIR: join(dir, '.state'), PROVISIONAL_DATA_DIR: join(dir, '.data') };
  const write = (path: string, content: string, mode = 0o644) => {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content, { mode });
  };
  const run = (args: string[], timeoutMs = 30 * 60_000) => runTimed(process.execPath, [cli, ...args], { cwd: dir, env, timeoutMs });
  const ok = async (args: string[]) => {
    const r = await run(args);
    if (r.code !== 0) throw new Error(`provisional ${args.join(' ')} exited ${r.code}:\n${r.stderr.slice(-3000)}`);
    return r;
  };
  teardown.add(`destroy staging on ${t.name}`, () => run(['destroy', 'staging', '--yes']));
  write('config/provisional/app/deploy/10-serve.sh', DEPLOY_SCRIPT, 0o755);
  const build = async (edition: string) => {
    write('config/provisional/app/scripts/10-app.sh', buildScript(edition), 0o755);
    await ok(['image', 'update']);
  };
  const measured = async (what: string, args: string[], address: { host: string; port: number }, from: string, to: string): Promise<Figures> => {
    const load = startLoad({ ...address, perSecond: 5, maxRequests: 3000, maxMs: 20 * 60_000 });
    await new Promise((r) => setTimeout(r, 2000));
    const r = await run([...args, '--json']);
    await new Promise((r) => setTimeout(r, 2000));
    const result = await load.stop();
    const is = (v: string) => (a: { body: string }) => a.body.startsWith(`${v} `);
    const firstTo = result.answers.find(is(to));
    const lastFrom = result.answers.findLast(is(from));
    const overlapMs = firstTo && lastFrom ? Math.max(0, lastFrom.atMs - firstTo.atMs) : undefined;
    return { what, load: result, switchMs: switchTime(result.answers, from, to, (a, v) => is(v)(a)), overlapMs, drainMs: drain(r), wallMs: r.wallMs, code: r.code };
  };

  const figures: Figures[] = [];
  const done = (f: Figures) => {
    figures.push(f);
    print(f);
  };
  // With an endpoint.
  write('config/provisional/config.yml', config(t, t.endpointLines));
  await build('v1');
  const v1 = await newestVersion(run);
  const first = await ok(['deploy', 'staging', '--json']);
  const deployed = jsonEvents(first).map((e) => e.event).find((e) => e.type === 'deployed') as { endpoints?: Record<string, { address: string }> } | undefined;
  const endpoint = hostPort(deployed?.endpoints?.app?.address ?? '');
  await build('v2');
  done(await measured('endpoint: warm deploy v1 -> v2', ['deploy', 'staging'], endpoint, 'v1', 'v2'));
  done(await measured('endpoint: rollback v2 -> v1', ['rollback', 'staging'], endpoint, 'v2', 'v1'));
  await ok(['destroy', 'staging', '--yes']);

  // Today's behaviour: no endpoint; clients keep the address they knew.
  write('config/provisional/config.yml', config(t, t.plainLines));
  await ok(['deploy', 'staging', '--pin', `app@${v1}`, '--json']);
  const listed = JSON.parse((await ok(['server', 'list', 'staging', '--json'])).stdout) as { servers: { address?: string }[] };
  done(await measured('no endpoint (today): warm deploy v1 -> v2', ['deploy', 'staging'], t.plainAddress(listed.servers), 'v1', 'v2'));
  await ok(['destroy', 'staging', '--yes']);
  return figures;
}

/** The newest version of app (v1 just after its build), for today's run to start where the endpoint runs did. */
async function newestVersion(run: (args: string[]) => Promise<TimedRun>): Promise<string> {
  const r = await run(['image', 'list', '--json']);
  const doc = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { images: { name: string; versions: { version: string }[] }[] };
  return doc.images.find((i) => i.name === 'app')!.versions[0]!.version;
}

/** From the first old server leaving the endpoint to the first destroyed (--json events). */
function drain(run: TimedRun): number | undefined {
  const events = jsonEvents(run);
  const leaving = events.find((e) => /leaving the endpoint/.test(String(e.event.message ?? '')));
  const destroyed = events.find((e) => /^destroying /.test(String(e.event.message ?? '')));
  return leaving && destroyed ? destroyed.at - leaving.at : undefined;
}

function print(f: Figures): void {
  {
    const seen = summary(f.load.answers, (a) => (a.body.startsWith('!') ? a.body : a.body.split(' ')[0]!));
    console.log(
      `  ${f.what.padEnd(42)} requests ${String(f.load.requests).padStart(4)}  failures ${String(f.load.failures).padStart(4)}  switch ${f.switchMs === undefined ? 'never' : seconds(f.switchMs)}  both served ${f.overlapMs === undefined ? '-' : seconds(f.overlapMs)}  drain ${f.drainMs === undefined ? '-' : seconds(f.drainMs)}  (command ${seconds(f.wallMs)}, exit ${f.code})`,
    );
    console.log(`    answers in order: ${seen.join(', ')}`);
  }
}

const chosen = process.argv.slice(2).length ? process.argv.slice(2) : ['digitalocean', 'aws', 'local'];
console.log(`zero-downtime: 5 requests/s through a warm deploy and a rollback; ${machineFacts()}`);

await withTeardown(async (teardown) => {
  if (chosen.includes('digitalocean')) {
    const emulator = await startDigitalOceanEmulator({ delays: { create: 300, shutdown: 200, power_off: 200, snapshot: 500 } });
    teardown.add('the DigitalOcean emulator', () => emulator.close());
    await runTarget(
      {
        name: 'digitalocean',
        title: 'DigitalOcean emulator, 2 droplets, load balancer (drain 2 s)',
        providerYaml: `  name: digitalocean\n  api-url: ${emulator.url}\n  ssh-port: ${emulator.sshPort}\n  create-timeout: 60`,
        baseImage: 'debian-12-x64',
        env: { DIGITALOCEAN_TOKEN: emulator.token },
        servers: 2,
        endpointLines: `      endpoint: { load-balancer: { port: 80, target-port: ${WEB_PORT} } }\n`,
        plainLines: '',
        plainAddress: (servers) => ({ host: servers[0]!.address!, port: WEB_PORT }),
      },
      teardown,
    );
  }
  if (chosen.includes('aws')) {
    const emulator = await startEc2Emulator({ accessKeyId: 'AKIDZERODOWN', secretAccessKey: 'zero-downtime-secret', delays: { imagePendingMs: 500 } });
    teardown.add('the EC2 emulator', () => emulator.close());
    const groupArn = await userTargetGroup(emulator, { name: 'zd', port: WEB_PORT, listenerPort: 80, deregistrationDelayS: 2 });
    await runTarget(
      {
        name: 'aws',
        title: 'EC2 emulator, 2 instances, ELBv2 target group (deregistration delay 2 s)',
        providerYaml: `  name: aws\n  region: us-east-1\n  endpoint: ${emulator.url}\n  ssh-user: root\n  create-timeout: 60`,
        baseImage: '136693071363/debian-12-amd64-*',
        env: { AWS_ACCESS_KEY_ID: emulator.accessKeyId, AWS_SECRET_ACCESS_KEY: emulator.secretAccessKey, AWS_EC2_METADATA_DISABLED: 'true', AWS_CONFIG_FILE: '/nonexistent', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent' },
        servers: 2,
        endpointLines: `      endpoint: { target-group: ${groupArn} }\n`,
        plainLines: '',
        plainAddress: (servers) => ({ host: servers[0]!.address!, port: WEB_PORT }),
      },
      teardown,
    );
  }
  if (chosen.includes('local')) {
    await runTarget(
      {
        name: 'local',
        title: 'local QEMU (TCG), 1 server, HAProxy (drain 2 s)',
        providerYaml: '  name: local',
        baseImage: 'debian-12',
        env: {},
        servers: 1,
        endpointLines: `      endpoint: { port: 18080, target-port: ${WEB_PORT} }\n`,
        plainLines: `      ports: ["18081:${WEB_PORT}"]\n`,
        plainAddress: () => ({ host: '127.0.0.1', port: 18081 }),
      },
      teardown,
    );
  }
  if (teardown.problems.length) console.log(`\ncleanup problems: ${teardown.problems.join('; ')}`);
});
