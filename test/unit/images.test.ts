import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, chmodSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageGraph } from '../../src/images/graph.js';
import { byNewest, parseImageRef, parseVersionName, versionName } from '../../src/images/naming.js';
import { canonicalJson, inputHash } from '../../src/images/inputs.js';

describe('image graph', () => {
  const graph = new ImageGraph({
    web: { 'base-image': 'app' },
    app: { 'base-image': 'base' },
    db: { 'base-image': 'base' },
    base: { 'base-image': 'debian-12' },
    tools: { 'base-image': 'debian-12' },
  });
  it('orders parents before children', () => {
    const order = graph.order();
    assert.deepEqual(order, ['base', 'tools', 'app', 'db', 'web']);
    for (const name of order) {
      const parent = graph.parentOf(name);
      if (parent) assert.ok(order.indexOf(parent) < order.indexOf(name));
    }
  });
  it('knows parents, children, roots and descendants', () => {
    assert.equal(graph.parentOf('app'), 'base');
    assert.equal(graph.parentOf('base'), undefined);
    assert.deepEqual(graph.childrenOf('base'), ['app', 'db']);
    assert.equal(graph.rootBaseOf('web'), 'debian-12');
    assert.deepEqual(graph.descendantsOf('base').sort(), ['app', 'db', 'web']);
  });
  it('finds cycles', () => {
    const cyclic = new ImageGraph({ a: { 'base-image': 'b' }, b: { 'base-image': 'a' }, c: { 'base-image': 'a' } });
    assert.deepEqual(cyclic.cycles(), [['a', 'b', 'a']]);
    assert.deepEqual(graph.cycles(), []);
  });
});

describe('version names', () => {
  it('is NAME-YYYYMMDDHHMMSS in UTC', () => {
    assert.equal(versionName('app', new Date(Date.UTC(2026, 0, 2, 3, 4, 5))), 'app-20260102030405');
  });
  it('parses back, and rejects what is not a version', () => {
    const parsed = parseVersionName('my-app-20261124205501');
    assert.equal(parsed?.image, 'my-app');
    assert.equal(parsed?.date.toISOString(), '2026-11-24T20:55:01.000Z');
    assert.equal(parseVersionName('app-2026112420550'), undefined);
    assert.equal(parseVersionName('app-20261399205501'), undefined);
  });
  it('parses references', () => {
    assert.deepEqual(parseImageRef('app'), { image: 'app' });
    assert.deepEqual(parseImageRef('app@app-20260101000000'), { image: 'app', version: 'app-20260101000000' });
    assert.deepEqual(parseImageRef('app@20260101000000'), { image: 'app', version: 'app-20260101000000' });
  });
  it('sorts newest first', () => {
    const list = [{ version: 'a-20250101000000' }, { version: 'a-20260101000000' }, { version: 'a-20251231235959' }];
    assert.deepEqual(list.sort(byNewest).map((v) => v.version), ['a-20260101000000', 'a-20251231235959', 'a-20250101000000']);
  });
});

describe('input hash', () => {
  const setup = () => {
    const dir = mkdtempSync(join(tmpdir(), 'provisional-hash-'));
    mkdirSync(join(dir, 'scripts'));
    mkdirSync(join(dir, 'files'));
    writeFileSync(join(dir, 'scripts', '10-a.sh'), '#!/bin/sh\necho a\n');
    chmodSync(join(dir, 'scripts', '10-a.sh'), 0o755);
    writeFileSync(join(dir, 'files', 'f.txt'), 'hello');
    return { dir, dirs: { scriptsDir: join(dir, 'scripts'), filesDir: join(dir, 'files') } };
  };
  it('is stable, and changes with each input', async () => {
    const { dir, dirs } = setup();
    try {
      const config = { 'base-image': 'base', 'build-timeout': 3600 };
      const h0 = await inputHash({ imageConfig: config, dirs, parent: 'image:base-20260101000000' });
      assert.equal(h0, await inputHash({ imageConfig: { 'build-timeout': 3600, 'base-image': 'base' }, dirs, parent: 'image:base-20260101000000' }));
      assert.notEqual(h0, await inputHash({ imageConfig: config, dirs, parent: 'image:base-20260102000000' }));
      assert.notEqual(h0, await inputHash({ imageConfig: { ...config, 'build-timeout': 60 }, dirs, parent: 'image:base-20260101000000' }));
      writeFileSync(join(dir, 'files', 'f.txt'), 'hello!');
      const h1 = await inputHash({ imageConfig: config, dirs, parent: 'image:base-20260101000000' });
      assert.notEqual(h0, h1);
      chmodSync(join(dir, 'files', 'f.txt'), 0o755);
      const h2 = await inputHash({ imageConfig: config, dirs, parent: 'image:base-20260101000000' });
      assert.notEqual(h1, h2);
      chmodSync(join(dir, 'files', 'f.txt'), 0o775); // only the executable bit counts
      assert.equal(h2, await inputHash({ imageConfig: config, dirs, parent: 'image:base-20260101000000' }));
      writeFileSync(join(dir, 'scripts', '20-b.sh'), '#!/bin/sh\n');
      assert.notEqual(h2, await inputHash({ imageConfig: config, dirs, parent: 'image:base-20260101000000' }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('includes the image tests; no tests/ folder (and no test-timeout) leaves older hashes as they were', async () => {
    const { dir, dirs } = setup();
    try {
      const config = { 'base-image': 'base', 'build-timeout': 3600 };
      const parent = 'image:base-20260101000000';
      const before = await inputHash({ imageConfig: config, dirs, parent });
      const withTests = { ...dirs, testsDir: join(dir, 'tests') };
      assert.equal(await inputHash({ imageConfig: { ...config, 'test-timeout': undefined }, dirs: withTests, parent }), before, 'absent folder, unset timeout: same hash');
      mkdirSync(join(dir, 'tests'));
      writeFileSync(join(dir, 'tests', '10-t.sh'), '#!/bin/sh\ntrue\n', { mode: 0o755 });
      const tested = await inputHash({ imageConfig: config, dirs: withTests, parent });
      assert.notEqual(tested, before, 'a test is an input');
      writeFileSync(join(dir, 'tests', '10-t.sh'), '#!/bin/sh\nfalse\n', { mode: 0o755 });
      assert.notEqual(await inputHash({ imageConfig: config, dirs: withTests, parent }), tested, 'a changed test is a changed input');
      assert.notEqual(await inputHash({ imageConfig: { ...config, 'test-timeout': 60 }, dirs: withTests, parent }), await inputHash({ imageConfig: config, dirs: withTests, parent }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('canonical JSON sorts keys and drops undefined', () => {
    assert.equal(canonicalJson({ b: 1, a: [{ d: 2, c: undefined }] }), '{"a":[{"d":2}],"b":1}');
  });
});
