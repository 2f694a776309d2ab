/** The saved builders' store (src/providers/local/warm.ts): what counts as saved, what is pruned. */
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pruneWarm, readWarm, warmRoot } from '../../src/providers/local/warm.js';

describe('saved builders in the cache', () => {
  const previous = process.env.PROVISIONAL_CACHE_DIR;
  const cache = mkdtempSync(join(tmpdir(), 'warm-store-'));
  const saved = (key: string, { complete = true, usedDaysAgo = 0 } = {}) => {
    const dir = join(warmRoot(), key);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'key'), 'PRIVATE');
    writeFileSync(join(dir, 'key.pub'), 'ssh-ed25519 AAAA warm\n');
    if (complete) {
      writeFileSync(join(dir, 'warm.json'), '{}');
      const when = new Date(Date.now() - usedDaysAgo * 24 * 3600_000);
      utimesSync(join(dir, 'warm.json'), when, when);
    }
  };
  before(() => (process.env.PROVISIONAL_CACHE_DIR = cache));
  after(() => {
    if (previous === undefined) delete process.env.PROVISIONAL_CACHE_DIR;
    else process.env.PROVISIONAL_CACHE_DIR = previous;
    rmSync(cache, { recursive: true, force: true });
  });

  it('is saved only once warm.json is written; reading it marks it used', async () => {
    saved('debian-12-half', { complete: false });
    assert.equal(await readWarm('debian-12-half'), undefined);
    saved('debian-12-old', { usedDaysAgo: 3 });
    const state = await readWarm('debian-12-old');
    assert.equal(state?.publicKey, 'ssh-ed25519 AAAA warm');
    assert.match(state?.incoming ?? '', /^exec:cat .*debian-12-old\/state$/);
    assert.deepEqual(await pruneWarm(), ['debian-12-half'], 'read just now: kept; the half one goes');
  });

  it('prunes what was not used for a day, never a lock or a save in progress', async () => {
    saved('debian-12-unused', { usedDaysAgo: 2 });
    saved('debian-12-recent', { usedDaysAgo: 0.5 });
    writeFileSync(join(warmRoot(), 'debian-12-recent.lock'), '{}');
    mkdirSync(join(warmRoot(), 'debian-12-recent.work-1a2b3c4d'));
    assert.deepEqual(await pruneWarm(), ['debian-12-unused']);
    assert.deepEqual(readdirSync(warmRoot()).sort(), ['debian-12-old', 'debian-12-recent', 'debian-12-recent.lock', 'debian-12-recent.work-1a2b3c4d']);
  });
});
