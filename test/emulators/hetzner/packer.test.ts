/**
 * Conformance with a real client: Packer 1.6.6's hcloud builder (Debian's `packer`, hcloud-go
 * inside), pointed at the emulator with HCLOUD_ENDPOINT and HCLOUD_TOKEN, builds a snapshot; its
 * shell provisioner really runs on the server over SSH, and a server created from the snapshot
 * shows what it wrote. Every answer Packer got is checked against hcloud-go's schema.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sshExec, waitForSsh } from '../../contract/ssh.js';
import { makeKeyPair } from '../machines/test-support.js';
import { apiClient, until } from '../digitalocean/test-client.js';
import { runPacker } from '../run-packer.js';
import { startHetznerEmulator } from '../../../src/emulators/hetzner/server.js';
import { validateLogged } from './hcloud-schema.js';

test('Packer 1.6.6 (hcloud builder) builds a snapshot against the emulator; a server from it shows the provisioner\'s file', { timeout: 420_000 }, async () => {
  const [emu, key] = await Promise.all([startHetznerEmulator({ delays: { create: 1000, create_image: 1500 } }), makeKeyPair()]);
  const dir = await mkdtemp(join(tmpdir(), 'packer-hcloud-'));
  try {
    const template = {
      builders: [
        {
          type: 'hcloud',
          image: 'debian-12',
          location: 'fsn1',
          server_type: 'cx22',
          server_name: 'packer-builder',
          ssh_username: 'root',
          ...(emu.sshPort !== 22 ? { ssh_port: emu.sshPort } : {}),
          ssh_timeout: '2m',
          snapshot_name: 'packer-conformance-{{timestamp}}',
          snapshot_labels: { app: 'packer-test', built_by: 'packer' },
        },
      ],
      provisioners: [{ type: 'shell', inline: ['echo packer-was-here > /root/packer-marker', 'sync'] }],
    };
    await writeFile(join(dir, 'template.json'), JSON.stringify(template, null, 2));
    const started = Date.now();
    // No token or endpoint in the template: Packer reads both from the environment, as users set them.
    const { code, output } = await runPacker(['build', '-color=false', 'template.json'], dir, 300_000, { HCLOUD_TOKEN: emu.token, HCLOUD_ENDPOINT: emu.endpoint });
    const seconds = (Date.now() - started) / 1000;
    assert.equal(code, 0, `packer failed:\n${output}`);
    const m = /A snapshot was created: '([^']+)' \(ID: (\d+)\)/.exec(output);
    assert.ok(m, `no artifact line in Packer's output:\n${output}`);
    const snapshotId = Number(m[2]);
    console.log(`packer build: ${seconds.toFixed(1)} s, ${emu.requests.total} API requests: ${JSON.stringify(emu.requests.counts())}`);

    // Packer went through the API as designed, and cleaned up after itself.
    const counts = emu.requests.counts();
    for (const op of ['POST /v1/ssh_keys', 'POST /v1/servers', 'POST /v1/servers/{id}/actions/shutdown', 'POST /v1/servers/{id}/actions/create_image', 'DELETE /v1/servers/{id}', 'DELETE /v1/ssh_keys/{id}']) {
      assert.equal(counts[op], 1, `${op}: ${JSON.stringify(counts)}`);
    }
    assert.ok((counts['GET /v1/actions/{id}'] ?? 0) >= 3, 'Packer waits on actions');
    const api = apiClient(emu.endpoint, emu.token);
    assert.equal((await api('GET', '/servers')).body.meta.pagination.total_entries, 0);
    assert.equal((await api('GET', '/ssh_keys')).body.meta.pagination.total_entries, 0);
    const image = (await api('GET', `/images/${snapshotId}`)).body.image;
    assert.equal(image.type, 'snapshot');
    assert.equal(image.status, 'available');
    assert.equal(image.description, m[1]);
    assert.deepEqual(image.labels, { app: 'packer-test', built_by: 'packer' });
    assert.equal(image.created_from.name, 'packer-builder');

    // Every answer Packer got has hcloud-go's shape.
    assert.deepEqual(validateLogged(emu.requests.entries), []);

    const k = (await api('POST', '/ssh_keys', { name: 'check', public_key: key.publicKey })).body.ssh_key;
    const created = await api('POST', '/servers', { name: 'from-packer', server_type: 'cx22', image: snapshotId, location: 'fsn1', ssh_keys: [k.id] });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    await until('server from the snapshot running', async () => (await api('GET', `/servers/${created.body.server.id}`)).body.server.status === 'running', 30_000);
    const ssh = await waitForSsh({ host: created.body.server.public_net.ipv4.ip, port: emu.sshPort, user: 'root' }, key.privateKey, 30_000);
    const r = await sshExec(ssh, 'cat /root/packer-marker');
    ssh.end();
    assert.equal(r.stdout.trim(), 'packer-was-here');
  } finally {
    await emu.close();
    await key.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
});
