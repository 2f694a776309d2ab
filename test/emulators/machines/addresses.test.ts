/**
 * Address claims: an address is handed out only when every port its claimer needs is free on it, so
 * that a listener left on one of them (an orphaned container's sshd, a host service) never catches
 * connections meant for a new Elastic IP, reserved IP or machine.
 */
import { strict as assert } from 'node:assert';
import { rm, utimes, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { ADDRESS_DIR, claimAddress, releaseAddress } from '../../../src/emulators/machines/addresses.js';

function listen(host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => resolve(server));
  });
}

test('claimAddress skips an address where any of its ports is taken', async () => {
  const [webPort, sshPort] = [18080, 18022];
  const first = await claimAddress([webPort, sshPort]);
  await releaseAddress(first);
  // Something now holds the second port on that address, and only that port.
  const squatter = await listen(first, sshPort);
  try {
    const onlyWeb = await claimAddress(webPort);
    await releaseAddress(onlyWeb);
    assert.equal(onlyWeb, first, 'with one port asked for, the address is still free for it');
    const both = await claimAddress([webPort, sshPort]);
    await releaseAddress(both);
    assert.notEqual(both, first, 'an address with a taken port must not be handed out');
  } finally {
    await new Promise((r) => squatter.close(r));
  }
});

test('concurrent claims in one process never hand out the same address', async () => {
  // Two launches at once (a deploy's two servers) claim side by side. The interleaving that broke
  // this (a claim file read while still empty) is timing-dependent and did not show here on the
  // old code; the next case pins it deterministically. This one pins the property itself.
  for (let round = 0; round < 20; round++) {
    const claimed = await Promise.all(Array.from({ length: 6 }, () => claimAddress(18022)));
    try {
      assert.equal(new Set(claimed).size, claimed.length, `round ${round}: one address handed out twice: ${claimed.join(' ')}`);
    } finally {
      await Promise.all(claimed.map((a) => releaseAddress(a)));
    }
  }
});

test('a claim file without an owner yet is not taken over while it is fresh, and is once it is old', async () => {
  // What a second claimer saw while the first was still writing its pid.
  const first = await claimAddress(18022);
  await releaseAddress(first);
  const path = join(ADDRESS_DIR, first);
  await writeFile(path, '', { flag: 'wx' }); // fails rather than clobber another process's claim made meanwhile
  try {
    const other = await claimAddress(18022);
    await releaseAddress(other);
    assert.notEqual(other, first, 'a claim being written must not be taken over');
    const old = new Date(Date.now() - 60_000);
    await utimes(path, old, old);
    const again = await claimAddress(18022);
    await releaseAddress(again);
    assert.equal(again, first, 'an ownerless claim a minute old is stale');
  } finally {
    await rm(path, { force: true });
  }
});
