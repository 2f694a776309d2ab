/**
 * The local version store with fake files: no QEMU involved (versions are listed and deleted
 * from their JSON files alone).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nullSink } from '../../src/core/events.js';
import type { ImageVersionMetadata } from '../../src/providers/types.js';
import { LocalProvider } from '../../src/providers/local/provider.js';
import { localSettingsSchema } from '../../src/providers/local/settings.js';
import { saveVersion, type VersionRecord } from '../../src/providers/local/versions.js';
import type { BootSpec } from '../../src/providers/local/base-record.js';

const project = 'unit';
let dataDir: string;
const previous = process.env.PROVISIONAL_DATA_DIR;
const signal = new AbortController().signal;
const boot: BootSpec = { baseRef: 'debian-12', baseBuildId: 'b1', baseDisk: '/cache/bases/debian-12/disk.qcow2', kernel: '/k', initrd: '/i', append: 'root=/dev/vda' };

const imagesDir = () => join(dataDir, 'local', project, 'images');

function fakeVersion(image: string, version: string, backing: string, parent: ImageVersionMetadata['parent']): VersionRecord {
  const dir = join(imagesDir(), image);
  mkdirSync(dir, { recursive: true });
  const disk = join(dir, `${version}.qcow2`);
  writeFileSync(disk, 'qcow2');
  const record: VersionRecord = {
    image,
    version,
    parent,
    inputHash: `sha256:${version}`,
    toolVersion: 'test',
    createdAt: '2026-01-01T00:00:00.000Z',
    id: disk,
    status: 'available',
    sizeBytes: 5,
    local: { backing, boot },
  };
  writeFileSync(join(dir, `${version}.json`), JSON.stringify(record));
  return record;
}

function provider(): LocalProvider {
  return new LocalProvider(localSettingsSchema.parse({}), { project, projectDir: dataDir, events: nullSink });
}

describe('local version store', () => {
  before(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'provisional-unit-local-'));
    process.env.PROVISIONAL_DATA_DIR = dataDir;
  });
  after(() => {
    if (previous === undefined) delete process.env.PROVISIONAL_DATA_DIR;
    else process.env.PROVISIONAL_DATA_DIR = previous;
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('lists complete versions only, without the local details', async () => {
    const base = fakeVersion('base', 'base-20260101000000', boot.baseDisk, { kind: 'base', ref: 'debian-12' });
    fakeVersion('app', 'app-20260101000000', base.id, { kind: 'image', image: 'base', version: base.version });
    // Incomplete: a disk without metadata, a metadata file still being written.
    writeFileSync(join(imagesDir(), 'app', 'app-20260102000000.qcow2'), 'x');
    writeFileSync(join(imagesDir(), 'app', 'app-20260102000000.json.123.abcd.partial'), '{');
    const versions = await provider().listImageVersions(signal);
    assert.deepEqual(versions.map((v) => v.version), ['app-20260101000000', 'base-20260101000000']);
    assert.ok(!('local' in versions[0]!), 'no provider-internal fields');
    assert.equal(versions[0]!.status, 'available');
    assert.deepEqual(versions[0]!.parent, { kind: 'image', image: 'base', version: 'base-20260101000000' });
  });

  it('refuses to delete a version others are built on, naming them', async () => {
    const p = provider();
    const [, base] = await p.listImageVersions(signal);
    fakeVersion('db', 'db-20260101000000', join(imagesDir(), 'base', 'base-20260101000000.qcow2'), { kind: 'image', image: 'base', version: 'base-20260101000000' });
    await assert.rejects(p.deleteImageVersion(base!, signal), (err: Error) => {
      assert.equal(err.name, 'UserFacingError');
      assert.match(err.message, /cannot delete base-20260101000000: versions app-20260101000000, db-20260101000000 are built on it/);
      return true;
    });
    assert.ok(existsSync(join(imagesDir(), 'base', 'base-20260101000000.qcow2')));
  });

  it('refuses while a machine runs from it', async () => {
    const p = provider();
    const version = (await p.listImageVersions(signal)).find((v) => v.version === 'db-20260101000000')!;
    const machineDir = join(dataDir, 'local', project, 'machines', 'db1-abc123');
    mkdirSync(machineDir, { recursive: true });
    writeFileSync(join(machineDir, 'machine.json'), JSON.stringify({ id: 'db1-abc123', name: 'db1.staging', project, labels: {}, backing: version.id, boot }));
    await assert.rejects(p.deleteImageVersion(version, signal), /machine db1.staging runs from it/);
    rmSync(machineDir, { recursive: true });
  });

  it('deletes a leaf version (metadata and disk), idempotently', async () => {
    const p = provider();
    const version = (await p.listImageVersions(signal)).find((v) => v.version === 'db-20260101000000')!;
    await p.deleteImageVersion(version, signal);
    await p.deleteImageVersion(version, signal);
    assert.deepEqual(readdirSync(join(imagesDir(), 'db')), []);
    assert.ok(!(await p.listImageVersions(signal)).some((v) => v.version === version.version));
  });

  it('saves an overlay as a version: moved, read-only, metadata last', async () => {
    const overlay = join(dataDir, 'overlay.qcow2');
    writeFileSync(overlay, Buffer.alloc(64 * 1024, 1));
    const meta: ImageVersionMetadata = {
      image: 'web',
      version: 'web-20260101000000',
      parent: { kind: 'base', ref: 'debian-12' },
      inputHash: 'sha256:x',
      toolVersion: 't',
      createdAt: '2026-01-01T00:00:00.000Z',
    };
    const saved = await saveVersion({ project, meta, overlay, backing: boot.baseDisk, boot, signal });
    assert.equal(existsSync(overlay), false, 'moved, not copied');
    assert.equal(saved.id, join(imagesDir(), 'web', 'web-20260101000000.qcow2'));
    assert.equal(statSync(saved.id).mode & 0o777, 0o444);
    assert.ok(saved.sizeBytes! >= 64 * 1024, 'allocated size');
    assert.deepEqual(readdirSync(join(imagesDir(), 'web')).sort(), ['web-20260101000000.json', 'web-20260101000000.qcow2']);
    await assert.rejects(saveVersion({ project, meta, overlay, backing: boot.baseDisk, boot, signal }), /exists already/);
  });

  it('removes half-made versions of a crashed run, and only those', async () => {
    const dir = join(imagesDir(), 'web');
    writeFileSync(join(dir, 'web-20260105000000.qcow2'), 'x'); // disk moved, metadata never written
    writeFileSync(join(dir, 'web-20260106000000.qcow2.partial'), 'x');
    const p = provider();
    const names = ['web-20260105000000', 'web-20260106000000', 'web-20260101000000'];
    const dry = await p.removeRunResources('run1', { dryRun: true, signal, snapshots: names });
    assert.equal(dry.length, 2, dry.join('\n'));
    assert.ok(existsSync(join(dir, 'web-20260105000000.qcow2')), 'a dry run removes nothing');
    await p.removeRunResources('run1', { dryRun: false, signal, snapshots: names });
    assert.deepEqual(readdirSync(dir).sort(), ['web-20260101000000.json', 'web-20260101000000.qcow2'], 'the complete version stays');
  });

  // How fast: bench/list.ts prints the figure (a timed assertion here would fail on a busy machine).
  it('lists 1,000 versions, each once, with its image and status', async () => {
    const made = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const stamp = String(20260201000000 + i);
      const version = `img${i % 10}-${stamp}`;
      fakeVersion(`img${i % 10}`, version, boot.baseDisk, { kind: 'base', ref: 'debian-12' });
      made.add(version);
    }
    const versions = (await provider().listImageVersions(signal)).filter((v) => made.has(v.version));
    assert.equal(versions.length, 1000);
    assert.equal(new Set(versions.map((v) => v.version)).size, 1000);
    assert.ok(versions.every((v) => v.version.startsWith(`${v.image}-`) && v.status === 'available'), JSON.stringify(versions.find((v) => !v.version.startsWith(`${v.image}-`) || v.status !== 'available')));
  });
});
