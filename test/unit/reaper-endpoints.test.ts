/**
 * `cleanup` and endpoints (pipeline/reaper.ts): members whose servers are gone are detached, and an
 * endpoint that a run which did not finish created (its journal names it), left with no member, is
 * removed; an endpoint nobody's dead run created stays, whatever its members.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeLeftovers, findLeftovers, removeLeftovers } from '../../src/pipeline/reaper.js';
import { LABELS, type EndpointStatus, type EndpointRef, type Provider, type Server } from '../../src/providers/types.js';

process.env.PROVISIONAL_STATE_DIR = mkdtempSync(join(tmpdir(), 'reaper-state-'));

const server = (name: string): Server => ({
  id: `${name}-id`,
  name,
  ssh: { host: '127.0.0.1', port: 22, user: 'root' },
  labels: { [LABELS.project]: 'shop', [LABELS.role]: 'server', [LABELS.environment]: name.split('.')[1]!, [LABELS.image]: 'app' },
  state: 'running',
});

describe('cleanup and endpoints', () => {
  it("detaches members whose servers are gone, removes an endpoint a dead run created once it has none, and keeps others'", async () => {
    const dir = join(process.env.PROVISIONAL_STATE_DIR!, 'runs', 'shop');
    mkdirSync(dir, { recursive: true });
    // A deploy killed after it created production's endpoint (pid 2^22+1 cannot be alive).
    writeFileSync(
      join(dir, 'dead1234.json'),
      JSON.stringify({ runId: 'dead1234', project: 'shop', provider: 'fake', pid: 4194305, host: hostname(), command: 'deploy production', started: '', entries: [{ kind: 'endpoint', name: 'production/app' }] }),
    );
    const endpoints: (EndpointRef & EndpointStatus)[] = [
      { project: 'shop', environment: 'staging', image: 'app', kind: 'test', address: '127.0.0.1:1', members: [{ machineId: 'app1.staging-id', name: 'app1.staging', state: 'unknown' }, { machineId: 'app2.staging-id', name: 'app2.staging', state: 'healthy' }] },
      { project: 'shop', environment: 'production', image: 'app', kind: 'test', address: '127.0.0.1:2', members: [{ machineId: 'app9.production-id', name: 'app9.production', state: 'unknown' }] },
    ];
    const calls: string[] = [];
    const provider = {
      name: 'fake',
      listServers: async () => [server('app2.staging')],
      listImageVersions: async () => [],
      destroyMachine: async (m: Server) => void calls.push(`destroy ${m.name}`),
      endpoints: {
        list: async () => endpoints,
        detach: async (ref: EndpointRef, _spec: unknown, machines: { name: string }[], drainMs: number) => void calls.push(`detach ${ref.environment} ${machines.map((m) => m.name).join(',')} ${drainMs}`),
        remove: async (ref: EndpointRef) => void calls.push(`remove ${ref.environment}`),
      },
    } as unknown as Provider;
    const signal = new AbortController().signal;
    const found = await findLeftovers(provider, 'shop', signal);
    assert.deepEqual(describeLeftovers(found), [
      'app1.staging in the endpoint of app in staging (its server is gone)',
      'app9.production in the endpoint of app in production (its server is gone)',
      'the endpoint of app in production at 127.0.0.1:2 (created by `provisional deploy production`, which did not finish)',
    ]);
    await removeLeftovers(provider, 'shop', found, signal);
    assert.deepEqual(calls, ['detach staging app1.staging 0', 'detach production app9.production 0', 'remove production']);
  });

  it('puts back into its endpoint a running server that a dead deploy took out to drain, with the spec from the config, before the dead run\'s member leaves', async () => {
    const dir = join(process.env.PROVISIONAL_STATE_DIR!, 'runs', 'shop');
    mkdirSync(dir, { recursive: true });
    // A warm deploy of staging killed while draining app0 and app1: app3 (its new server) is a member,
    // app1 is not (a load balancer that forgets removed members), app0 is draining (one that lists them until drained).
    const labels = { [LABELS.project]: 'shop', [LABELS.role]: 'server', [LABELS.environment]: 'staging', [LABELS.image]: 'app' };
    writeFileSync(
      join(dir, 'dead5678.json'),
      JSON.stringify({ runId: 'dead5678', project: 'shop', provider: 'fake', pid: 4194305, host: hostname(), command: 'deploy staging', started: '', entries: [{ kind: 'machine', name: 'app3.staging', labels }] }),
    );
    const endpoints: (EndpointRef & EndpointStatus)[] = [
      { project: 'shop', environment: 'staging', image: 'app', kind: 'test', address: '127.0.0.1:1', members: [{ machineId: 'app0.staging-id', name: 'app0.staging', state: 'draining' }, { machineId: 'app2.staging-id', name: 'app2.staging', state: 'healthy' }, { machineId: 'app3.staging-id', name: 'app3.staging', state: 'healthy' }] },
      // Another image of staging, which the dead run did not deploy: a server outside it is left alone.
      { project: 'shop', environment: 'staging', image: 'db', kind: 'test', address: '127.0.0.1:2', members: [] },
    ];
    const db1 = { ...server('db1.staging'), labels: { ...server('db1.staging').labels, [LABELS.image]: 'db' } };
    const stopped = { ...server('app4.staging'), state: 'stopped' as const };
    const calls: string[] = [];
    const provider = {
      name: 'fake',
      listServers: async () => [server('app0.staging'), server('app1.staging'), server('app2.staging'), server('app3.staging'), stopped, db1],
      listImageVersions: async () => [],
      destroyMachine: async (m: Server) => void calls.push(`destroy ${m.name}`),
      endpoints: {
        list: async () => endpoints,
        attach: async (ref: EndpointRef, spec: unknown, machines: Server[]) => void calls.push(`attach ${ref.image} ${JSON.stringify(spec)} ${machines.map((m) => m.name).join(',')}`),
        detach: async (ref: EndpointRef, _spec: unknown, machines: { name: string }[]) => void calls.push(`detach ${ref.image} ${machines.map((m) => m.name).join(',')}`),
        remove: async (ref: EndpointRef) => void calls.push(`remove ${ref.image}`),
      },
    } as unknown as Provider;
    const signal = new AbortController().signal;
    const specs: Record<string, unknown> = { 'staging/app': { port: 8080 }, 'staging/db': { port: 5432 } };
    const found = await findLeftovers(provider, 'shop', signal, (ref) => specs[`${ref.environment}/${ref.image}`]);
    assert.deepEqual(describeLeftovers(found).filter((l) => !l.includes('dead1234') && !l.includes('production')), [
      'app0.staging back into the endpoint of app in staging (taken out by `provisional deploy staging`, which did not finish)',
      'app1.staging back into the endpoint of app in staging (taken out by `provisional deploy staging`, which did not finish)',
      'app3.staging in the endpoint of app in staging (its server is a leftover)',
      'app3.staging (created by `provisional deploy staging`, which did not finish)',
    ]);
    await removeLeftovers(provider, 'shop', found, signal);
    const mine = calls.filter((c) => !c.includes('production') && !c.includes('app9'));
    assert.deepEqual(mine, ['attach app {"port":8080} app0.staging,app1.staging', 'detach app app3.staging', 'destroy app3.staging']);
    // Without the config's endpoint settings, nothing is attached: the next deploy does it.
    writeFileSync(
      join(dir, 'dead9999.json'),
      JSON.stringify({ runId: 'dead9999', project: 'shop', provider: 'fake', pid: 4194305, host: hostname(), command: 'deploy staging', started: '', entries: [{ kind: 'machine', name: 'app5.staging', labels }] }),
    );
    assert.deepEqual((await findLeftovers(provider, 'shop', signal)).rejoin, []);
  });

  it('removes an endpoint a dead first deploy created before any server joined it, which the provider does not list, asking for it by name', async () => {
    const dir = join(process.env.PROVISIONAL_STATE_DIR!, 'runs', 'shop');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'deadabcd.json'),
      JSON.stringify({ runId: 'deadabcd', project: 'shop', provider: 'fake', pid: 4194305, host: hostname(), command: 'deploy qa', started: '', entries: [{ kind: 'endpoint', name: 'qa/web' }, { kind: 'endpoint', name: 'qa/gone' }] }),
    );
    const calls: string[] = [];
    const provider = {
      name: 'fake',
      listServers: async () => [],
      listImageVersions: async () => [],
      destroyMachine: async () => undefined,
      endpoints: {
        list: async () => [],
        status: async (ref: EndpointRef, spec: unknown) => {
          calls.push(`status ${ref.environment}/${ref.image} ${JSON.stringify(spec)}`);
          return ref.image === 'web' ? { kind: 'test', address: '127.0.0.1:3', members: [] } : undefined;
        },
        remove: async (ref: EndpointRef) => void calls.push(`remove ${ref.environment}/${ref.image}`),
      },
    } as unknown as Provider;
    const signal = new AbortController().signal;
    const found = await findLeftovers(provider, 'shop', signal, (ref) => (ref.image === 'web' ? { port: 80 } : undefined));
    assert.deepEqual(describeLeftovers(found), ['the endpoint of web in qa at 127.0.0.1:3 (created by `provisional deploy qa`, which did not finish)']);
    await removeLeftovers(provider, 'shop', found, signal);
    assert.deepEqual(calls, ['status qa/web {"port":80}', 'status qa/gone undefined', 'remove qa/web']);
  });
});
