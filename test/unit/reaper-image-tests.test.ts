/**
 * `cleanup` and image tests (pipeline/reaper.ts): a test server of a run that did not finish, and a
 * version still marked as being tested by such a run (found by its mark, or by the run's journal),
 * are leftovers; the machines go first (a test server boots from the version). A version marked by
 * a live run, or whose tests passed, is left alone.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunJournal } from '../../src/core/journal.js';
import { describeLeftovers, findLeftovers, removeLeftovers } from '../../src/pipeline/reaper.js';
import { LABELS, type ImageVersion, type Provider, type Server } from '../../src/providers/types.js';

process.env.PROVISIONAL_STATE_DIR = mkdtempSync(join(tmpdir(), 'reaper-tests-state-'));

const machine = (name: string, run: string, role: string): Server => ({
  id: `${name}-id`,
  name,
  ssh: { host: '127.0.0.1', port: 22, user: 'root' },
  labels: { [LABELS.project]: 'shop', [LABELS.role]: role, [LABELS.run]: run, [LABELS.image]: 'app' },
  state: 'running',
});
const version = (stamp: string, testing?: string): ImageVersion => ({
  image: 'app',
  version: `app-${stamp}`,
  id: `id-${stamp}`,
  parent: { kind: 'base', ref: 'debian-12' },
  inputHash: 'h',
  toolVersion: '0',
  createdAt: '2026-01-01T00:00:00Z',
  status: 'available',
  ...(testing ? { testing } : {}),
});

describe('cleanup and image tests', () => {
  it('removes the test server and the untested version of a dead run, machines first; leaves a live run\'s and tested ones', async () => {
    const dir = join(process.env.PROVISIONAL_STATE_DIR!, 'runs', 'shop');
    mkdirSync(dir, { recursive: true });
    // A build killed during its tests (pid 2^22+1 cannot be alive): its journal names the version.
    writeFileSync(
      join(dir, 'dead1234.json'),
      JSON.stringify({ runId: 'dead1234', project: 'shop', provider: 'fake', pid: 4194305, host: hostname(), command: 'image update', started: '', entries: [{ kind: 'version', name: 'app-20260102000000' }] }),
    );
    // A run of this process is live: what it tests is not a leftover.
    const live = await RunJournal.open('shop', 'fake', 'live5678');
    const versions = [version('20260101000000'), version('20260102000000', 'dead1234'), version('20260103000000', 'gone9999'), version('20260104000000', 'live5678')];
    const calls: string[] = [];
    const provider = {
      name: 'fake',
      listServers: async () => [machine('provisional-test-app-dead1234', 'dead1234', 'test'), machine('provisional-test-app-live5678', 'live5678', 'test'), machine('app1.staging', 'x', 'server')],
      listImageVersions: async () => versions,
      destroyMachine: async (m: Server) => void calls.push(`destroy ${m.name}`),
      deleteImageVersion: async (v: ImageVersion) => void calls.push(`delete ${v.version}`),
    } as unknown as Provider;
    const signal = new AbortController().signal;
    const found = await findLeftovers(provider, 'shop', signal);
    assert.deepEqual(describeLeftovers(found), [
      'provisional-test-app-dead1234 (test server of run dead1234, which did not finish)',
      'version app-20260102000000 (being tested by run dead1234, which did not finish: its tests never passed)',
      'version app-20260103000000 (being tested by run gone9999, which did not finish: its tests never passed)',
    ]);
    await removeLeftovers(provider, 'shop', found, signal);
    assert.deepEqual(calls, ['destroy provisional-test-app-dead1234', 'delete app-20260102000000', 'delete app-20260103000000']);
    await live.finish();
  });
});
