/**
 * Traffic end to end with the real CLI, the same flow on every provider with endpoints: the first
 * deploy creates the endpoint, which answers from v1; under a constant load of 5 requests/s
 * (loopback, bounded) a warm deploy moves it to v2 and a rollback back to v1 with 0 failed
 * requests, each answer naming the version written into the server's image; `destroy` removes it.
 *
 * The app is a Perl script run by systemd (nothing to install): it answers with /etc/app-edition
 * (from the image's build script) and the hostname. It listens on the address
 * the server is reached at (SSH_CONNECTION's), as the emulators' machines share the host's network.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, type CliResult } from '../helpers/cli.js';
import { tempProject, type TempProject } from '../helpers/project.js';
import { startLoad, summary, switchTime, type LoadResult } from '../helpers/load.js';

export const WEB_PORT = 8080;

/**
 * One Perl process (perl-base is in every Debian) answering every connection: no process per
 * request, so that a slow guest (QEMU without KVM) keeps up with the load. `GET /hold?N` is a
 * slow answer (a byte a second for N seconds) from a child process while the app goes on serving:
 * a connection an endpoint has to drain (the fault rows' drain point).
 */
const APP = `#!/usr/bin/perl
use strict;
use IO::Socket::INET;
my ($addr, $port) = @ARGV;
open(my $e, '<', '/etc/app-edition') or die; my $edition = <$e>; chomp $edition;
open(my $h, '<', '/etc/hostname') or die; my $host = <$h>; chomp $host;
my $body = "$edition $host\\n";
my $server = IO::Socket::INET->new(LocalAddr => $addr, LocalPort => $port, Listen => 128, ReuseAddr => 1) or die "listen on $addr:$port: $!";
$SIG{CHLD} = 'IGNORE';
while (my $c = $server->accept) {
  my $first = <$c>;
  my $line = $first;
  while (defined $line && $line !~ /^\\r?$/) { $line = <$c> }
  if (defined $first && $first =~ m{^GET /hold\\?(\\d+) }) {
    my $seconds = $1;
    if (!fork) {
      close $server;
      $c->autoflush(1);
      print $c "HTTP/1.0 200 OK\\r\\nContent-Type: text/plain\\r\\nConnection: close\\r\\n\\r\\n";
      for (1 .. $seconds) { print $c "." or exit 0; sleep 1 }
      exit 0;
    }
    close $c;
    next;
  }
  print $c "HTTP/1.0 200 OK\\r\\nContent-Type: text/plain\\r\\nContent-Length: " . length($body) . "\\r\\nConnection: close\\r\\n\\r\\n$body";
  close $c;
}
`;

/** The image: the app and its health check; the edition says which version answers. */
export const buildScript = (edition: string) => `#!/bin/sh
set -eu
echo ${edition} > /etc/app-edition
cat > /usr/local/bin/app <<'EOF'
${APP}EOF
cat > /usr/local/bin/app-up <<'EOF'
#!/bin/bash
exec 3<>/dev/tcp/$(cat /etc/app-address)/${WEB_PORT} && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && head -1 <&3 | grep -q ' 200 '
EOF
chmod +x /usr/local/bin/app /usr/local/bin/app-up
`;

/** Started by the deploy, on the server's own address. */
export const DEPLOY_SCRIPT = `#!/bin/sh
set -eu
set -- $SSH_CONNECTION
echo "$3" > /etc/app-address
systemd-run --collect --unit=app-web /usr/local/bin/app "$3" ${WEB_PORT}
`;

export interface TrafficTarget {
  project: () => TempProject;
  env: () => NodeJS.ProcessEnv;
  /** The `provider:` block's lines, indented under `provider:`. */
  providerYaml: () => string;
  baseImage: string;
  /** The `endpoint:` value (flow YAML) and the servers behind it. */
  endpointYaml: () => string;
  servers: number;
  /** Where the endpoint's address says to send requests (an address without a port: WEB_PORT). */
  target?: (address: string) => { host: string; port: number };
  /** Asserts nothing of the endpoint is left at the provider after `destroy`. */
  assertGone: () => Promise<void>;
}

/** The traffic app's config: `app` on `baseImage`, `staging` with `servers` of it, its health check and drain, and `lines` (endpoint, env) under it. */
export function trafficConfig(o: { project: string; providerYaml: string; baseImage: string; servers: number; healthTimeoutS: number; drainS: number; lines: string }): string {
  return `project: ${o.project}
provider:
${o.providerYaml}
images:
  app:
    base-image: ${JSON.stringify(o.baseImage)}
deployments:
  staging:
    app:
      servers: ${o.servers}
      health-check: { command: /usr/local/bin/app-up, timeout: ${o.healthTimeoutS} }
      drain: ${o.drainS}
${o.lines}`;
}

function configYaml(t: TrafficTarget): string {
  return trafficConfig({ project: 'traffic', providerYaml: t.providerYaml(), baseImage: t.baseImage, servers: t.servers, healthTimeoutS: 60, drainS: 2, lines: `      endpoint: ${t.endpointYaml()}\n` });
}

const defaultTarget = (address: string) => {
  const m = /^(.*):(\d+)$/.exec(address);
  return m ? { host: m[1]!, port: Number(m[2]) } : { host: address, port: WEB_PORT };
};

export function trafficFlow(t: TrafficTarget): void {
  const cli = (...args: string[]) => runCli(args, { cwd: t.project().dir, env: t.env() });
  const ok = async (...args: string[]): Promise<CliResult> => {
    const r = await cli(...args);
    assert.equal(r.code, 0, `provisional ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
    return r;
  };
  let address = { host: '', port: 0 };
  const editions = async (n: number) => {
    const load = startLoad({ ...address, perSecond: 20, maxRequests: n });
    return (await load.finished()).answers.map((a) => a.body.split(' ')[0]);
  };
  /** Runs `args` under a 5 requests/s load; returns the load's result. */
  const underLoad = async (args: string[]): Promise<LoadResult> => {
    const load = startLoad({ ...address, perSecond: 5, maxRequests: 1500, maxMs: 5 * 60_000 });
    await new Promise((r) => setTimeout(r, 1000));
    try {
      await ok(...args);
    } finally {
      await new Promise((r) => setTimeout(r, 1000));
    }
    return load.stop();
  };

  it('the first deploy creates the endpoint; it answers from v1 on every server', async () => {
    const p = t.project();
    p.writeConfig(configYaml(t));
    p.write('config/provisional/app/scripts/10-app.sh', buildScript('v1'), 0o755);
    p.write('config/provisional/app/deploy/10-serve.sh', DEPLOY_SCRIPT, 0o755);
    await ok('image', 'update');
    // The plan says the endpoint is new (or, for the user's own target group, that it has no members yet), and how servers will be replaced.
    assert.match((await ok('deploy', 'staging', '--plan')).stdout, /\n {4}endpoint: (new \(created by this deploy\)|\S+ at \S+ -> no members); all replaced at once, old servers drained for up to \d+ s/);
    // --json prints one JSON document a line: the result is the `deployed` one.
    const lines = (await ok('deploy', 'staging', '--json')).stdout.split('\n').filter((l) => l.startsWith('{'));
    const deployed = lines.map((l) => JSON.parse(l) as { type?: string; endpoints: Record<string, { address: string; members: { name: string }[] }> }).find((d) => d.type === 'deployed')!;
    const endpoint = deployed.endpoints.app!;
    assert.ok(endpoint.address, 'the endpoint has an address');
    assert.equal(endpoint.members.length, t.servers, 'every server is a member');
    address = (t.target ?? defaultTarget)(endpoint.address);
    // Now the plan shows the endpoint as it is, with its members.
    const plan = JSON.parse((await ok('deploy', 'staging', '--plan', '--json')).stdout.trim().split('\n').at(-1)!) as { images: { endpoint: { now: { address: string; members: unknown[] } | null } | null }[] };
    assert.equal(plan.images[0]!.endpoint?.now?.address, endpoint.address);
    assert.equal(plan.images[0]!.endpoint?.now?.members.length, t.servers);
    const load = startLoad({ ...address, perSecond: 20, maxRequests: 10 });
    const bodies = (await load.finished()).answers.map((a) => a.body);
    assert.equal(bodies.length, 10);
    assert.deepEqual(new Set(bodies.map((b) => b.split(' ')[0])), new Set(['v1']));
    assert.equal(new Set(bodies.map((b) => b.split(' ')[1])).size, t.servers, `every server answers: ${bodies.join(', ')}`);
  });

  it('a warm deploy to v2 under load: 0 failed requests, then only v2 answers', { timeout: 10 * 60_000 }, async () => {
    t.project().write('config/provisional/app/scripts/10-app.sh', buildScript('v2'), 0o755);
    await ok('image', 'update');
    const result = await underLoad(['deploy', 'staging']);
    const seen = summary(result.answers, (a) => a.body.split(' ')[0]!);
    assert.equal(result.failures, 0, `failed requests during the deploy: ${seen.join(', ')}`);
    assert.ok(switchTime(result.answers, 'v1', 'v2') !== undefined, `the endpoint moved to v2: ${seen.join(', ')}`);
    assert.deepEqual(new Set(await editions(10)), new Set(['v2']));
  });

  it('a rollback under load: 0 failed requests, then only v1 answers', { timeout: 10 * 60_000 }, async () => {
    const result = await underLoad(['rollback', 'staging']);
    const seen = summary(result.answers, (a) => a.body.split(' ')[0]!);
    assert.equal(result.failures, 0, `failed requests during the rollback: ${seen.join(', ')}`);
    assert.deepEqual(new Set(await editions(10)), new Set(['v1']));
  });

  it('server list shows the endpoint; destroy removes it and the servers', async () => {
    const listed = JSON.parse((await ok('server', 'list', 'staging', '--json')).stdout) as { endpoints: { image: string; members: unknown[] }[] };
    assert.deepEqual(listed.endpoints.map((e) => [e.image, e.members.length]), [['app', t.servers]]);
    await ok('destroy', 'staging', '--yes');
    const after = JSON.parse((await ok('server', 'list', 'staging', '--json')).stdout) as { servers: unknown[]; endpoints: unknown[] };
    assert.deepEqual(after, { servers: [], endpoints: [] });
    await t.assertGone();
  });
}

/** One emulated cloud's side of the flow, opened before it (given the state directory) and closed after. */
export interface EmulatedTraffic {
  env: NodeJS.ProcessEnv;
  providerYaml: string;
  endpointYaml: string;
  /** Asserts nothing of the endpoint (or the servers) is left at the provider after `destroy`. */
  assertGone(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The flow as a suite against an emulator: a temporary project and state directory, the emulator
 * side opened before and, after a last `destroy`, closed.
 */
export function trafficOnEmulator(title: string, o: { prefix: string; baseImage: string; servers: number }, open: (stateDir: string) => Promise<EmulatedTraffic>): void {
  let project: TempProject;
  let stateDir: string;
  let side: EmulatedTraffic;
  describe(title, { timeout: 20 * 60_000 }, () => {
    before(async () => {
      project = tempProject(`provisional-traffic-${o.prefix}-`);
      stateDir = mkdtempSync(join(tmpdir(), `provisional-traffic-${o.prefix}-state-`));
      side = await open(stateDir);
    });
    after(async () => {
      await runCli(['destroy', 'staging', '--yes'], { cwd: project.dir, env: side.env }).catch(() => undefined);
      await side.close();
      project.remove();
      rmSync(stateDir, { recursive: true, force: true });
    });

    trafficFlow({
      project: () => project,
      env: () => side.env,
      providerYaml: () => side.providerYaml,
      baseImage: o.baseImage,
      endpointYaml: () => side.endpointYaml,
      servers: o.servers,
      assertGone: () => side.assertGone(),
    });
  });
}
