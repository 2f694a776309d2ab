/**
 * Conformance with a real client: Packer 1.6.6's digitalocean builder (Debian's `packer`) builds a
 * snapshot against the emulator, its shell provisioner really runs on the droplet over SSH, and a
 * droplet created from the snapshot shows what it wrote. Every answer Packer got is checked
 * against the OpenAPI description.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sshExec, waitForSsh } from '../../contract/ssh.js';
import { makeKeyPair } from '../machines/test-support.js';
import { OpenApiValidator } from './openapi.js';
import { startDigitalOceanEmulator } from '../../../src/emulators/digitalocean/server.js';
import { apiClient, until } from './test-client.js';
import { runPacker } from '../run-packer.js';

test('Packer 1.6.6 (digitalocean builder) builds a snapshot against the emulator; a droplet from it shows the provisioner\'s file', { timeout: 420_000 }, async () => {
  const [emu, validator, key] = await Promise.all([
    startDigitalOceanEmulator({ delays: { create: 1000, shutdown: 500, snapshot: 1500 } }),
    OpenApiValidator.load(),
    makeKeyPair(),
  ]);
  const dir = await mkdtemp(join(tmpdir(), 'packer-do-'));
  try {
    const template = {
      builders: [
        {
          type: 'digitalocean',
          api_token: emu.token,
          api_url: emu.url,
          image: 'debian-12-x64',
          region: 'nyc3',
          size: 's-1vcpu-1gb',
          ssh_username: 'root',
          ...(emu.sshPort !== 22 ? { ssh_port: emu.sshPort } : {}),
          ssh_timeout: '2m',
          state_timeout: '2m',
          snapshot_timeout: '3m',
          snapshot_name: 'packer-conformance-{{timestamp}}',
          droplet_name: 'packer-builder',
          tags: ['packer-test'],
        },
      ],
      provisioners: [{ type: 'shell', inline: ['echo packer-was-here > /root/packer-marker', 'sync'] }],
    };
    await writeFile(join(dir, 'template.json'), JSON.stringify(template, null, 2));
    const started = Date.now();
    const { code, output } = await runPacker(['build', '-color=false', 'template.json'], dir, 300_000);
    const seconds = (Date.now() - started) / 1000;
    assert.equal(code, 0, `packer failed:\n${output}`);
    const m = /A snapshot was created: '([^']+)' \(ID: (\d+)\)/.exec(output);
    assert.ok(m, `no artifact line in Packer's output:\n${output}`);
    const snapshotId = Number(m[2]);
    console.log(`packer build: ${seconds.toFixed(1)} s, ${emu.requests.total} API requests: ${JSON.stringify(emu.requests.counts())}`);

    // Packer cleaned up after itself: no droplet, no temporary key.
    const api = apiClient(emu.url, emu.token);
    assert.equal((await api('GET', '/v2/droplets')).body.meta.total, 0);
    assert.equal((await api('GET', '/v2/account/keys')).body.meta.total, 0);
    const image = (await api('GET', `/v2/images/${snapshotId}`)).body.image;
    assert.equal(image.type, 'snapshot');
    assert.equal(image.name, m[1]);

    // Every answer Packer got conforms to DigitalOcean's description.
    assert.deepEqual(validator.validateAll(emu.requests.entries), []);

    const k = (await api('POST', '/v2/account/keys', { name: 'check', public_key: key.publicKey })).body.ssh_key;
    const created = await api('POST', '/v2/droplets', { name: 'from-packer', region: 'nyc3', size: 's-1vcpu-1gb', image: snapshotId, ssh_keys: [k.id] });
    assert.equal(created.status, 202);
    const droplet = await until('droplet from the snapshot active', async () => {
      const d = (await api('GET', `/v2/droplets/${created.body.droplet.id}`)).body.droplet;
      return d.status === 'active' ? d : undefined;
    }, 30_000);
    const ssh = await waitForSsh({ host: droplet.networks.v4[0].ip_address, port: emu.sshPort, user: 'root' }, key.privateKey, 30_000);
    const r = await sshExec(ssh, 'cat /root/packer-marker');
    ssh.end();
    assert.equal(r.stdout.trim(), 'packer-was-here');
  } finally {
    await emu.close();
    await key.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
});
