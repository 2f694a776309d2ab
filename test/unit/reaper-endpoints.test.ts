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
});
