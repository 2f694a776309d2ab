/**
 * Address claims: an address is handed out only when every port its claimer needs is free on it, so
 * that a listener left on one of them (an orphaned container's sshd, a host service) never catches
 * connections meant for a new Elastic IP, reserved IP or machine.
 */
import { strict as assert } from 'node:assert';
import { createServer, type Server } from 'node:net';
import { test } from 'node:test';
import { claimAddress, releaseAddress } from '../../../src/emulators/machines/addresses.js';

function listen(host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => resolve(server));
  });
}

test('claimAddress skips an address where any of its ports is taken', async () => {
  const [webPort, sshPort] = [18080, 18022];
  const first = await claimAddress([webPort, sshPort], new Set());
  await releaseAddress(first);
  // Something now holds the second port on that address, and only that port.
  const squatter = await listen(first, sshPort);
  try {
    const onlyWeb = await claimAddress(webPort, new Set());
    await releaseAddress(onlyWeb);
    assert.equal(onlyWeb, first, 'with one port asked for, the address is still free for it');
    const both = await claimAddress([webPort, sshPort], new Set());
    await releaseAddress(both);
    assert.notEqual(both, first, 'an address with a taken port must not be handed out');
  } finally {
    await new Promise((r) => squatter.close(r));
  }
});
