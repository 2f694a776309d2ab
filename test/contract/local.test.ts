/**
 * The provider contract against the local provider: real QEMU (TCG when KVM is unusable), real
 * SSH. Versions and machines go to a temporary data dir; the debian-12 base comes from the shared
 * cache (~/.cache/provisional, or $PROVISIONAL_CACHE_DIR) so that it is built once per machine.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProgressEvent } from '../../src/core/events.js';
import local from '../../src/providers/local/index.js';
import { providerContract } from './provider-contract.js';
import { processesMentioning } from '../helpers/processes.js';

const dataDir = mkdtempSync(join(tmpdir(), 'provisional-contract-local-'));
process.env.PROVISIONAL_DATA_DIR = dataDir;
const project = 'contract';

/** A port nothing listens on now, for an endpoint. */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

providerContract(
  'local',
  async () => {
    const events: ProgressEvent[] = [];
    const provider = await local.create(local.settingsSchema.parse({}), {
      project,
      projectDir: dataDir,
      events: { emit: (e) => events.push(e) },
    });
    return {
      provider,
      cleanup: async () => {
        assert.deepEqual(processesMentioning(dataDir), [], 'no QEMU left running');
        const machines = join(dataDir, 'local', project, 'machines');
        assert.deepEqual(existsSync(machines) ? readdirSync(machines) : [], [], 'no machine folder left');
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  },
  {
    baseRef: 'debian-12',
    project,
    // Local sizes are memory (and CPUs); ranges that cannot overlap: 640 MiB shows at most 640, 896 at least 672.
    sizes: [{ memory: 640 }, { memory: 896 }],
    assertSize: async (machine, options, run) => {
      const kib = Number(/MemTotal:\s+(\d+)/.exec(await run('cat /proc/meminfo'))?.[1]);
      const mib = kib / 1024;
      assert.ok(mib <= options.memory! && mib >= options.memory! * 0.75, `${machine.name} has ${Math.round(mib)} MiB, asked for ${options.memory}`);
    },
    // HAProxy in front of the servers' port 8080, which a host forward added to each QEMU reaches
    // (so the responder listens on the guest's every address). TCP: a half-sent request held
    // through it is already on a member (in HTTP mode HAProxy picks one once the request is whole).
    endpoints: {
      webPort: 8080,
      responderAddress: '0.0.0.0',
      kinds: [{ kind: 'haproxy', single: false, spec: { port: 0, 'target-port': 8080, protocol: 'tcp' } }],
      prepare: async (kind) => ({ ...kind, spec: { ...(kind.spec as object), port: await freePort() } }),
      assertRemoved: async () => assert.deepEqual(processesMentioning(join(dataDir, 'local', project, 'endpoints')), [], 'no HAProxy left'),
    },
    assertMachineGone: async (machine) => {
      assert.equal(existsSync(join(dataDir, 'local', project, 'machines', machine.id)), false, 'run folder removed');
      assert.deepEqual(processesMentioning(join(dataDir, 'local', project, 'machines', machine.id)), [], 'QEMU process gone');
    },
  },
);
