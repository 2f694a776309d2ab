/** The shared kit for cloud providers (src/providers/kit): batch launch, options, metadata, handles. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EXIT, UserFacingError } from '../../src/core/errors.js';
import { refuseIfBuiltOn } from '../../src/images/dependents.js';
import { machineHandles } from '../../src/providers/kit/handle.js';
import { groupRequests, launchBatch, shareKeyOf, type BatchLauncher } from '../../src/providers/kit/launch.js';
import { fitProvenance, labelChanges, metadataFromDescription, metadataFromLabels, metadataToDescription, metadataToLabels, patchMetadata, PROVENANCE_TAGS, TAG_VALUE_MAX } from '../../src/providers/kit/metadata.js';
import { readLaunchOptions } from '../../src/providers/kit/options.js';
import { awsLaunchOptionsSchema } from '../../src/providers/aws/settings.js';
import { digitalOceanLaunchOptionsSchema } from '../../src/providers/digitalocean/settings.js';
import type { ImageVersionMetadata, LaunchRequest, Machine, Server } from '../../src/providers/types.js';
import { endpointName, nextHolder, refOf, theOneMachine } from '../../src/providers/kit/endpoints.js';
import { findOrCreate, sharedResources } from '../../src/providers/kit/shared-resource.js';

const req = (name: string, image: string, size: string): LaunchRequest => ({
  name,
  source: { kind: 'base', ref: image, id: image, identity: image },
  authorizedKey: 'ssh-ed25519 AAAA test',
  labels: { 'provisional-image': image },
  options: { size },
});
const signal = new AbortController().signal;

/** A fake cloud: records each create call; `failOn` makes the call for that name fail. */
function fakeCloud(failOn?: string) {
  const calls: string[][] = [];
  const removed: string[] = [];
  const launcher: BatchLauncher<{ id: string; req: LaunchRequest }> = {
    perCall: 2,
    shareKey: (r) => shareKeyOf(r.source, r.options?.size, r.labels),
    create: async (group) => {
      calls.push(group.map((r) => r.name));
      if (group.some((r) => r.name === failOn)) throw new Error(`create of ${failOn} refused`);
      return group.map((r) => ({ id: `id-${r.name}`, req: r }));
    },
    waitReady: async (created) => created.map((c): Machine => ({ id: c.id, name: c.req.name, ssh: { host: 'h', port: 22, user: 'u' }, labels: c.req.labels })),
    remove: async (created) => {
      removed.push(...created.map((c) => c.id));
    },
  };
  return { calls, removed, launcher };
}

describe('kit: batch launch', () => {
  it('groups by what one call can share, cut at perCall, keeping every request\'s own data', async () => {
    const reqs = [req('a1', 'app', 's'), req('d1', 'db', 'm'), req('a2', 'app', 's'), req('a3', 'app', 's'), req('a4', 'app', 'l')];
    assert.deepEqual(
      groupRequests(reqs, (r) => shareKeyOf(r.source, r.options?.size), 2).map((g) => g.map((c) => c.req.name)),
      [['a1', 'a2'], ['a3'], ['d1'], ['a4']],
    );
    const cloud = fakeCloud();
    const machines = await launchBatch(reqs, cloud.launcher, signal);
    assert.deepEqual(machines.map((m) => [m.name, m.labels['provisional-image']]), [['a1', 'app'], ['d1', 'db'], ['a2', 'app'], ['a3', 'app'], ['a4', 'app']], 'in request order, each with its labels');
    assert.deepEqual(cloud.removed, []);
  });

  it('a failed call removes what the batch made, and the error comes through', async () => {
    const cloud = fakeCloud('d1');
    await assert.rejects(launchBatch([req('a1', 'app', 's'), req('d1', 'db', 'm')], cloud.launcher, signal), /create of d1 refused/);
    assert.deepEqual(cloud.removed, ['id-a1']);
  });

  it('an aborted signal creates nothing', async () => {
    const cloud = fakeCloud();
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(launchBatch([req('a1', 'app', 's')], cloud.launcher, controller.signal), /interrupted/);
    assert.deepEqual(cloud.calls, []);
  });
});

describe('kit: launch options', () => {
  it('refuses, with exit 2 and the machine\'s name, what a provider cannot honour', () => {
    assert.throws(
      () => readLaunchOptions(digitalOceanLaunchOptionsSchema, { ...req('web1', 'app', 's'), options: { region: 'New York' } }, 'digitalocean'),
      (err: UserFacingError) => err.exitCode === EXIT.usage && /web1/.test(err.message) && /region/.test(err.message),
    );
    assert.throws(() => readLaunchOptions(awsLaunchOptionsSchema, { ...req('web1', 'app', 's'), options: { flavour: 'x' } as never }, 'aws'), /flavour/);
    assert.deepEqual(readLaunchOptions(awsLaunchOptionsSchema, { ...req('web1', 'app', 't3.small'), options: { size: 't3.small', ports: ['80:80'] } }, 'aws'), { size: 't3.small', ports: undefined });
  });
});

describe('kit: version metadata', () => {
  const meta: ImageVersionMetadata = {
    image: 'app',
    version: 'app-20260101120000',
    parent: { kind: 'image', image: 'base-x', version: 'base-x-20251231000000' },
    inputHash: `sha256:${'a'.repeat(64)}`,
    toolVersion: '0.1.0',
    createdAt: '2026-01-01T12:00:00.000Z',
  };

  it('round-trips through labels and descriptions, parents parsed as version names', () => {
    assert.deepEqual(metadataFromLabels(metadataToLabels(meta, 'p'), 'p'), meta);
    assert.deepEqual(metadataFromDescription(metadataToDescription(meta, 'p'), 'p'), meta);
    const base = { ...meta, parent: { kind: 'base' as const, ref: '136693071363/debian-12-amd64-*' } };
    assert.deepEqual(metadataFromLabels(metadataToLabels(base, 'p'), 'p'), base);
  });

  it('carries the marks (testing, revoked) both ways; a patch sets and lifts them, and says which tags change', () => {
    const marked = patchMetadata(meta, { testing: 'run1', revoked: { reason: 'bad "TLS", see #12', at: '2026-01-02T00:00:00.000Z' } });
    assert.deepEqual(metadataFromLabels(metadataToLabels(marked, 'p'), 'p'), marked);
    assert.deepEqual(metadataFromDescription(metadataToDescription(marked, 'p'), 'p'), marked);
    assert.deepEqual(patchMetadata(marked, { testing: null, revoked: null }), meta, 'null lifts a mark');
    assert.deepEqual(patchMetadata(marked, {}), marked, 'absent leaves it');
    assert.deepEqual(labelChanges(metadataToLabels(marked, 'p'), metadataToLabels(patchMetadata(marked, { testing: null }), 'p')), { set: {}, remove: ['provisional-testing'] });
    assert.deepEqual(labelChanges(metadataToLabels(meta, 'p'), metadataToLabels(patchMetadata(meta, { revoked: { reason: 'r', at: 't' } }), 'p')), {
      set: { 'provisional-revoked-at': 't', 'provisional-revoked-reason': 'r' },
      remove: [],
    });
  });

  it('is not another project\'s, nor a malformed one', () => {
    assert.equal(metadataFromLabels(metadataToLabels(meta, 'p'), 'q'), undefined);
    assert.equal(metadataFromLabels({ ...metadataToLabels(meta, 'p'), 'provisional-version': 'app-latest' }, 'p'), undefined);
    assert.equal(metadataFromDescription('provisional:{not json', 'p'), undefined);
    assert.equal(metadataFromDescription('a user snapshot', 'p'), undefined);
  });

  it('carries the base id and the provenance; versions without them (older ones) still parse', () => {
    const full: ImageVersionMetadata = {
      ...meta,
      baseId: 'ami-0123456789abcdef0',
      provenance: { commit: 'c'.repeat(40), dirty: true, builderSize: 't3.micro', scripts: ['10-a.sh', '20-b.sh'], tests: ['10-smoke'] },
    };
    assert.deepEqual(metadataFromLabels(metadataToLabels(full, 'p'), 'p'), full);
    assert.deepEqual(metadataFromDescription(metadataToDescription(full, 'p'), 'p'), full);
    const old = metadataFromLabels(metadataToLabels(meta, 'p'), 'p')!;
    assert.equal(old.baseId, undefined);
    assert.equal(old.provenance, undefined);
    // A malformed provenance is dropped, never the version.
    const broken = metadataFromLabels({ ...metadataToLabels(full, 'p'), 'provisional-provenance': '{"scripts": 3' }, 'p');
    assert.equal(broken?.version, meta.version);
    assert.equal(broken?.provenance, undefined);
  });

  it('as tags, fits EC2: values of at most 256 characters, the provenance in at most PROVENANCE_TAGS tags', () => {
    const scripts = Array.from({ length: 400 }, (_, i) => `${String(i).padStart(3, '0')}-a-rather-long-script-name.sh`);
    const labels = metadataToLabels({ ...meta, baseId: 'x', provenance: { commit: 'c'.repeat(40), scripts, tests: ['t1'] } }, 'p');
    assert.ok(Object.values(labels).every((v) => v.length <= TAG_VALUE_MAX));
    const parts = Object.keys(labels).filter((k) => k.startsWith('provisional-provenance'));
    assert.ok(parts.length > 1 && parts.length <= PROVENANCE_TAGS, `${parts.length} provenance tags`);
    assert.ok(Object.keys(labels).length <= 50);
    const back = metadataFromLabels(labels, 'p')!.provenance!;
    assert.deepEqual(back.scripts.slice(0, 3), scripts.slice(0, 3));
    assert.match(back.scripts.at(-1)!, /^… \(\d+ more\)$/);
    assert.equal(back.scripts.length - 1 + Number(/\d+/.exec(back.scripts.at(-1)!)![0]), 400);
    assert.deepEqual(back.tests, ['t1']);
    assert.deepEqual(fitProvenance({ scripts: ['a'], tests: [] }, 1000), { scripts: ['a'], tests: [] });
  });
});

describe('kit: built on it, handles', () => {
  it('refuses to delete a version others are built on, naming them', () => {
    const all = [
      { version: 'base-20260101000000', parent: { kind: 'base' as const, ref: 'debian-12' } },
      { version: 'app-20260101000001', parent: { kind: 'image' as const, image: 'base', version: 'base-20260101000000' } },
    ];
    assert.throws(() => refuseIfBuiltOn([all[0]!], all), /cannot delete base-20260101000000: app-20260101000001 is built on it/);
    assert.doesNotThrow(() => refuseIfBuiltOn(all, all), 'deleting both at once is fine');
  });

  it('a handle is opaque: only its own provider reads it, nothing serialises it', () => {
    const mine = machineHandles<{ keyId: number }>();
    const other = machineHandles<{ keyId: number }>();
    const handle = mine.make({ keyId: 7 });
    assert.deepEqual(mine.read({ handle }), { keyId: 7 });
    assert.equal(other.read({ handle }), undefined);
    assert.equal(JSON.stringify({ handle }), '{"handle":{}}');
  });
});

describe('kit/shared-resource: find-or-create what servers share', () => {
  /** A cloud holding one named thing at most, whose create refuses a second with a conflict. */
  function cloud() {
    let held: number | undefined;
    const calls = { find: 0, create: 0 };
    const tick = () => new Promise((r) => setImmediate(r));
    const resource = {
      find: async () => (calls.find++, await tick(), held),
      create: async () => {
        calls.create++;
        await tick();
        if (held !== undefined) throw Object.assign(new Error('already exists'), { conflict: true });
        return (held = 7);
      },
      conflict: (err: unknown) => (err as { conflict?: boolean }).conflict === true,
    };
    return { resource, calls };
  }

  it('two finders that both look before either creates: the loser finds the winner\'s', async () => {
    const { resource, calls } = cloud();
    assert.deepEqual(await Promise.all([findOrCreate(resource), findOrCreate(resource)]), [7, 7]);
    assert.deepEqual(calls, { find: 3, create: 2 }, 'both created, one was refused and looked again');
  });

  it('a refusal that is not a conflict, or a conflict with nothing to find, is the error', async () => {
    const refused = { find: async () => undefined, create: async () => Promise.reject(new Error('quota')), conflict: () => false };
    await assert.rejects(findOrCreate(refused), /quota/);
    const vanished = { find: async () => undefined, create: async () => Promise.reject(new Error('exists')), conflict: () => true };
    await assert.rejects(findOrCreate(vanished), /exists/);
  });

  it('launches in one process share one find-or-create per key while it runs, and look again after', async () => {
    const { resource, calls } = cloud();
    const shared = sharedResources();
    assert.deepEqual(await Promise.all([shared.get('k', resource), shared.get('k', resource), shared.get('k', resource)]), [7, 7, 7]);
    assert.deepEqual(calls, { find: 1, create: 1 });
    assert.equal(await shared.get('k', resource), 7);
    assert.deepEqual(calls, { find: 2, create: 1 }, 'nothing is remembered once settled');
  });
});

describe("kit/endpoints: the rules every provider's endpoints share", () => {
  const server = (id: string, name: string, state: Server['state'] = 'running'): Server => ({ id, name, state, ssh: { host: 'h', port: 22, user: 'root' }, labels: {} });

  it('names an endpoint project.env.image, cut with a hash so that long names stay apart', () => {
    assert.equal(endpointName({ project: 'Shop', environment: 'staging', image: 'web_app' }), 'shop.staging.web-app');
    assert.notEqual(endpointName({ project: 'a-b', environment: 'c', image: 'app' }), endpointName({ project: 'a', environment: 'b-c', image: 'app' }));
    const long = (image: string) => endpointName({ project: 'p'.repeat(40), environment: 'production', image }, 63);
    assert.ok(long('app-one').length <= 63);
    assert.notEqual(long('app-one'), long('app-two'));
    assert.deepEqual(refOf({ 'provisional-project': 'p', 'provisional-env': 'e', 'provisional-image': 'i' }), { project: 'p', environment: 'e', image: 'i' });
    assert.equal(refOf({ 'provisional-project': 'p' }), undefined);
  });

  it('a single address takes exactly one machine', () => {
    assert.throws(() => theOneMachine([server('1', 'a'), server('2', 'b')], 'reserved IP', 'digitalocean'), /serves one server, but 2 were given \(a, b\)/);
    assert.equal(theOneMachine([server('1', 'a')], 'reserved IP', 'digitalocean').id, '1');
  });

  it('detaching the holder moves the address to the newest remaining running server, else it stays', () => {
    const all = [server('1', 'app1-20260101'), server('2', 'app1-20260102'), server('3', 'app1-20260103', 'stopped')];
    assert.equal(nextHolder('9', [{ id: '1' }], all), 'keep', 'the holder is not detached');
    assert.equal(nextHolder(undefined, [{ id: '1' }], all), 'keep');
    assert.equal((nextHolder('1', [{ id: '1' }], all) as Server).id, '2');
    assert.equal(nextHolder('1', [{ id: '1' }, { id: '2' }], all), 'stay', 'no running server remains');
  });
});

describe('ELBv2 emulator: a target group matcher', () => {
  it('takes only the statuses its HttpCode names: one code, a list, a range', async () => {
    const { httpCodeMatcher } = await import('../../src/emulators/aws/elbv2.js');
    const one = httpCodeMatcher('200');
    assert.ok(one(200));
    assert.ok(!one(301), 'a redirect fails the default matcher, as on AWS');
    const list = httpCodeMatcher('200,202');
    assert.ok(list(202) && !list(201));
    const range = httpCodeMatcher('200-299');
    assert.ok(range(204) && !range(300) && !range(199));
  });
});
