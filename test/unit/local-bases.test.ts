/**
 * The local base store's generations, with a stand-in for mmdebstrap (the real build is the same
 * `make` path every first use takes): `base update` makes a new build beside the current one, points
 * the base at it, keeps the old one for the versions built on it; the identity is the disk's digest.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { nullSink } from '../../src/core/events.js';
import { UserFacingError } from '../../src/core/errors.js';
import { BaseStore, baseIdentity, type BaseMaker } from '../../src/providers/local/bases.js';
import { localSettingsSchema } from '../../src/providers/local/settings.js';

let cacheDir: string;
const previous = process.env.PROVISIONAL_CACHE_DIR;
const signal = new AbortController().signal;
let made = 0;
/** Writes a disk of fresh random bytes: each build differs, as a build from newer packages does. */
const maker: BaseMaker = async (_ref, work) => {
  made++;
  writeFileSync(join(work, 'disk.qcow2'), randomBytes(4096));
  return { disk: 'disk.qcow2', format: 'qcow2', sizeBytes: 4096, source: { mirror: 'test', suite: 'bookworm' } };
};
const settings = localSettingsSchema.parse({ bases: { 'cloud-12': { url: 'https://example.com/x.qcow2', checksum: `sha256:${'a'.repeat(64)}` } } });

describe('local bases: base update', () => {
  before(() => {
    cacheDir = mkdtempSync(join(tmpdir(), 'provisional-bases-'));
    process.env.PROVISIONAL_CACHE_DIR = cacheDir;
  });
  after(() => {
    if (previous === undefined) delete process.env.PROVISIONAL_CACHE_DIR;
    else process.env.PROVISIONAL_CACHE_DIR = previous;
    rmSync(cacheDir, { recursive: true, force: true });
  });

  it('builds a new generation beside the old one, which stays; the base then resolves to the new digest', async () => {
    const store = new BaseStore(settings, nullSink, maker);
    const first = await store.prepare('debian-12', signal);
    const digest = (path: string) => `sha256:${createHash('sha256').update(readFileSync(path)).digest('hex')}`;
    assert.equal(baseIdentity(first.record), digest(first.boot.baseDisk), 'the identity is the digest of the disk');
    assert.equal((await store.prepare('debian-12', signal)).record.buildId, first.record.buildId, 'made once');

    const { previous: old, current } = await store.update('debian-12', signal);
    assert.equal(made, 2);
    assert.equal(old?.record.buildId, first.record.buildId);
    assert.notEqual(baseIdentity(current.record), baseIdentity(first.record));
    assert.ok(existsSync(first.boot.baseDisk), 'the previous build stays for the versions built on it');
    assert.match(current.dir, /debian-12@[^/]+~\d{14}$/);
    assert.equal(dirname(current.boot.baseDisk), current.dir);
    // Every later use, in this process or another, takes the new one.
    const again = new BaseStore(settings, nullSink, maker);
    assert.equal((await again.prepare('debian-12', signal)).record.buildId, current.record.buildId);
    const listed = (await again.list()).find((b) => b.ref === 'debian-12')!;
    assert.deepEqual([listed.id, listed.createdAt, listed.ready], [baseIdentity(current.record), current.record.createdAt, true]);
    assert.equal(made, 2, 'nothing more was built');
  });

  it('a base made before digests were kept is known by its build id', () => {
    assert.equal(baseIdentity({ ref: 'debian-12', buildId: 'b-1', createdAt: '', disk: 'd', format: 'qcow2', sizeBytes: 1, source: {} }), 'build-b-1');
  });

  it('refuses to update a downloaded base (it changes with its checksum) or an unknown one, building nothing', async () => {
    const store = new BaseStore(settings, nullSink, maker);
    await assert.rejects(store.update('cloud-12', signal), (err: unknown) => err instanceof UserFacingError && err.exitCode === 2 && /changes when its url and checksum change/.test(err.message));
    await assert.rejects(store.update('nope', signal), /no base image "nope"/);
    assert.equal(made, 2);
  });
});
