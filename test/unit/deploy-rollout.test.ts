/**
 * The rollout through an endpoint (deploy/apply.ts), on a recording provider: the order of
 * ensure, launch, attach, detach and destroy per batch, the endpoint never below `servers` healthy
 * members, and a failed or interrupted deploy leaving the endpoint as it was. New servers are
 * reached by real SSH (an in-process SSH server): health checks run over it, the HTTP one through
 * a forwarded channel to a real HTTP server.
 */
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { createServer, type Server as HttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyPlan } from '../../src/deploy/apply.js';
import { planEnvironment } from '../../src/deploy/plan.js';
import type { DeploymentImageConfig } from '../../src/config/schema.js';
import { nullSink } from '../../src/core/events.js';
import { sleep } from '../../src/core/wait.js';
import { LABELS, type EndpointMember, type Endpoints, type ImageVersion, type LaunchRequest, type Machine, type Provider, type Server } from '../../src/providers/types.js';
import { startSshServer, type TestSshServer } from '../helpers/ssh-server.js';

process.env.PROVISIONAL_STATE_DIR = mkdtempSync(join(tmpdir(), 'rollout-state-'));

const version = (stamp: string): ImageVersion => ({
  image: 'app',
  version: `app-${stamp}`,
  id: `app-${stamp}`,
  parent: { kind: 'base', ref: 'debian-12' },
  inputHash: 'h',
  toolVersion: '0',
  createdAt: '2026-01-01T00:00:00Z',
  status: 'available',
});
const v1 = version('20260101000000');
const v2 = version('20260102000000');

/** A provider that records every call, whose endpoint checks its own invariant at every change. */
class RecordingProvider {
  readonly name = 'recording';
  log: string[] = [];
  servers: Server[] = [];
  members = new Map<string, EndpointMember['state']>();
  endpointExists = false;
  /** Fewest healthy members seen after the endpoint first had `servers`. */
  lowest = Infinity;
  inLaunch = 0;
  mostInLaunch = 0;
  failLaunchOf = new Set<string>();
  onDetach?: () => void;

  constructor(
    private readonly ssh: TestSshServer,
    private readonly want: number,
  ) {}

  private watch(): void {
    const healthy = [...this.members.values()].filter((s) => s === 'healthy').length;
    if (healthy >= this.want || this.lowest !== Infinity) this.lowest = Math.min(this.lowest, healthy);
  }

  seed(names: string[], v: ImageVersion, endpoint: boolean): void {
    for (const name of names) {
      this.servers.push(this.server(name, v));
      if (endpoint) this.members.set(name, 'healthy');
    }
    this.endpointExists = endpoint;
    this.watch();
  }

  private server(name: string, v: ImageVersion): Server {
    return {
      id: name,
      name,
      ssh: { host: '127.0.0.1', port: this.ssh.port, user: 'root' },
      labels: { [LABELS.environment]: 'staging', [LABELS.image]: 'app', [LABELS.version]: v.version },
      state: 'running',
    };
  }

  async launchMachines(reqs: LaunchRequest[], signal: AbortSignal): Promise<Machine[]> {
    this.inLaunch += reqs.length;
    this.mostInLaunch = Math.max(this.mostInLaunch, this.inLaunch);
    try {
      this.log.push(`launch ${reqs.map((r) => r.name).join(',')}`);
      await sleep(30, signal);
      const bad = reqs.find((r) => this.failLaunchOf.has(r.name));
      if (bad) throw new Error(`launch of ${bad.name} failed`);
      const made = reqs.map((r) => this.server(r.name, r.source.kind === 'version' ? r.source.version : v1));
      this.servers.push(...made);
      return made;
    } finally {
      this.inLaunch -= reqs.length;
    }
  }

  async destroyMachine(machine: Machine): Promise<void> {
    this.log.push(`destroy ${machine.name}`);
    assert.ok(!this.members.has(machine.id), `${machine.name} destroyed while still a member`);
    this.servers = this.servers.filter((s) => s.id !== machine.id);
  }

  readonly endpoints: Endpoints = {
    ensure: async () => {
      this.log.push('ensure');
      this.endpointExists = true;
      return this.status();
    },
    attach: async (_ref, _spec, machines) => {
      this.log.push(`attach ${machines.map((m) => m.name).join(',')}`);
      for (const m of machines) this.members.set(m.id, 'healthy');
      this.watch();
    },
    detach: async (_ref, _spec, machines, drainMs, signal) => {
      this.log.push(`detach ${machines.map((m) => m.name).join(',')}`);
      for (const m of machines) if (this.members.has(m.id)) this.members.set(m.id, 'draining');
      this.watch();
      this.onDetach?.();
      await sleep(drainMs, signal);
      for (const m of machines) this.members.delete(m.id);
    },
    status: async () => (this.endpointExists ? this.status() : undefined),
    remove: async () => {
      this.log.push('remove');
      this.endpointExists = false;
      this.members.clear();
    },
    list: async () => [],
  };

  private status() {
    return { kind: 'test', address: '127.0.0.1:1', members: [...this.members].map(([machineId, state]) => ({ machineId, state })) };
  }
}

let ssh: TestSshServer;
let http: HttpServer;
let httpPort: number;

before(async () => {
  ssh = await startSshServer();
  http = createServer((req, res) => {
    res.statusCode = req.url === '/up' ? 200 : 503;
    res.end(req.url);
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  httpPort = (http.address() as { port: number }).port;
});
after(async () => {
  await ssh.close();
  http.close();
});

function setup(opts: { servers: number; old: number; batch?: number; path?: string; parallel?: number; noEndpoint?: boolean }) {
  const provider = new RecordingProvider(ssh, opts.servers);
  const oldNames = Array.from({ length: opts.old }, (_, i) => `app${i + 1}.staging`);
  if (opts.old) provider.seed(oldNames, v1, !opts.noEndpoint);
  const deployment: Record<string, DeploymentImageConfig> = {
    app: {
      servers: opts.servers,
      'cold-only': false,
      drain: 0.05,
      endpoint: opts.noEndpoint ? undefined : { port: 1 },
      rollout: opts.batch ? { batch: opts.batch } : undefined,
      'health-check': { http: { port: httpPort, path: opts.path ?? '/up', status: 200 }, timeout: 1, passes: 2 },
    },
  };
  const plan = planEnvironment({ environment: 'staging', deployment, versions: [v1, v2], servers: provider.servers, mode: 'warm' });
  const controller = new AbortController();
  const run = () =>
    applyPlan({
      provider: provider as unknown as Provider,
      project: 'rollout',
      plan,
      deployment,
      keys: { privateKey: ssh.key.privateKey, privateKeyPath: '', authorizedKeys: ssh.key.publicKey },
      runtime: {},
      parallel: opts.parallel ?? 8,
      events: nullSink,
      signal: controller.signal,
      healthIntervalMs: 10,
    });
  return { provider, run, controller, oldNames };
}

const members = (p: RecordingProvider) => [...p.members.keys()].sort();

describe('rollout through an endpoint', () => {
  beforeEach(() => ssh.forwards.splice(0));

  it('batch 1: each new server is healthy and attached before one old server is detached and drained; the old ones are destroyed once every batch is in', async () => {
    const { provider, run } = setup({ servers: 3, old: 3, batch: 1 });
    const result = await run();
    assert.deepEqual(provider.log, [
      'launch app4.staging', 'attach app4.staging', 'detach app1.staging',
      'launch app5.staging', 'attach app5.staging', 'detach app2.staging',
      'launch app6.staging', 'attach app6.staging', 'detach app3.staging',
      'destroy app1.staging', 'destroy app2.staging', 'destroy app3.staging',
      // The existing endpoint takes the config's settings (its health check) once every new server passed it.
      'ensure',
    ]);
    assert.equal(provider.lowest, 3, 'the endpoint never had fewer than 3 healthy members');
    assert.deepEqual(members(provider), ['app4.staging', 'app5.staging', 'app6.staging']);
    assert.deepEqual(result.destroyed, ['app1.staging', 'app2.staging', 'app3.staging']);
    assert.equal(result.endpoints['app']?.members.length, 3);
    // The HTTP check went through the SSH connection to the port: twice in a row per server.
    assert.ok(ssh.forwards.filter((p) => p === httpPort).length >= 6);
  });

  it('default batch: all new servers at once, then all old ones leave', async () => {
    const { provider, run } = setup({ servers: 2, old: 2 });
    await run();
    assert.deepEqual(provider.log, ['launch app3.staging,app4.staging', 'attach app3.staging,app4.staging', 'detach app1.staging,app2.staging', 'destroy app1.staging', 'destroy app2.staging', 'ensure']);
    assert.equal(provider.lowest, 2);
  });

  it('--parallel bounds the machines in launch at once', async () => {
    const { provider, run } = setup({ servers: 5, old: 0, parallel: 2 });
    await run();
    assert.equal(provider.mostInLaunch, 2);
    assert.equal(provider.log.filter((l) => l.startsWith('launch')).length, 3);
    assert.deepEqual(members(provider), ['app1.staging', 'app2.staging', 'app3.staging', 'app4.staging', 'app5.staging']);
  });

  it('a new server that fails its health check never joins; the old ones keep serving', async () => {
    const { provider, run, oldNames } = setup({ servers: 2, old: 2, path: '/down' });
    await assert.rejects(run(), /did not get healthy: .*GET \/down on port \d+: status 503, not 200/);
    assert.deepEqual(members(provider), oldNames);
    assert.ok(!provider.log.some((l) => l.startsWith('attach') || l.startsWith('detach app1') || l === 'ensure'), 'the endpoint was not touched, its settings neither');
    assert.deepEqual(provider.servers.map((s) => s.name).sort(), oldNames, 'the new servers were removed');
    assert.equal(provider.lowest, 2);
  });

  it('a failure in batch 2 undoes the whole rollout: the endpoint is as it was before the deploy', async () => {
    const { provider, run, oldNames } = setup({ servers: 2, old: 2, batch: 1 });
    provider.failLaunchOf.add('app4.staging');
    await assert.rejects(run(), /launch of app4.staging failed/);
    assert.deepEqual(members(provider), oldNames, 'the old servers are the members again');
    assert.ok([...provider.members.values()].every((s) => s === 'healthy'));
    assert.deepEqual(provider.servers.map((s) => s.name).sort(), oldNames, "batch 1's new server was removed, no old server was destroyed");
    assert.deepEqual(provider.log.slice(-3), ['attach app1.staging', 'detach app3.staging', 'destroy app3.staging']);
    assert.ok(!provider.log.some((l) => l.startsWith('destroy app1') || l.startsWith('destroy app2')));
    assert.equal(provider.lowest, 2);
    assert.deepEqual(readdirSync(join(process.env.PROVISIONAL_STATE_DIR!, 'runs', 'rollout')), [], 'nothing left for cleanup');
  });

  it('interrupted while old servers drain: they are attached again, the new ones leave and go', async () => {
    const { provider, run, controller, oldNames } = setup({ servers: 2, old: 2 });
    provider.onDetach = () => {
      if (provider.log.at(-1) === 'detach app1.staging,app2.staging') setTimeout(() => controller.abort(), 10);
    };
    await assert.rejects(run(), /interrupted/);
    assert.deepEqual(members(provider), oldNames);
    assert.deepEqual(provider.log.slice(-5), ['detach app1.staging,app2.staging', 'attach app1.staging,app2.staging', 'detach app3.staging,app4.staging', 'destroy app4.staging', 'destroy app3.staging']);
    assert.deepEqual(provider.servers.map((s) => s.name).sort(), oldNames);
    assert.ok([...provider.members.values()].every((s) => s === 'healthy'));
    assert.equal(provider.lowest, 2);
  });

  it('a first deploy that fails removes the endpoint it created, and the journal forgets it', async () => {
    const { provider, run } = setup({ servers: 1, old: 0 });
    provider.failLaunchOf.add('app1.staging');
    await assert.rejects(run(), /launch of app1.staging failed/);
    assert.equal(provider.endpointExists, false);
    assert.deepEqual(provider.log, ['ensure', 'launch app1.staging', 'remove']);
    assert.deepEqual(readdirSync(join(process.env.PROVISIONAL_STATE_DIR!, 'runs', 'rollout')), []);
  });

  it('without an endpoint: create-before-destroy as before', async () => {
    const { provider, run } = setup({ servers: 1, old: 1, noEndpoint: true });
    await run();
    assert.deepEqual(provider.log, ['launch app2.staging', 'destroy app1.staging']);
  });
});
