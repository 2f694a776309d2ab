/** `provisional-emulator digitalocean|hetzner` starts on its own, prints its URL and token, serves, and cleans up on Ctrl-C. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { readFile } from 'node:fs/promises';
import { nspawnPids } from './machines/test-support.js';
import { emulatorCacheDir } from '../../src/emulators/machines/rootfs.js';

const BIN = fileURLToPath(new URL('../../../bin/provisional-emulator.js', import.meta.url));

/** How to reach each cloud's API through the command, and make one machine there. */
const CLOUDS = [
  {
    cloud: 'digitalocean',
    check: '/v2/account',
    create: (name: string) => ['/v2/droplets', { name, size: 's-1vcpu-1gb', image: 'debian-12-x64' }, 202] as const,
    status: async (url: string, body: any, headers: Record<string, string>) => {
      const d = ((await (await fetch(`${url}/v2/droplets/${body.droplet.id}`, { headers })).json()) as any).droplet;
      return d.status === 'active';
    },
  },
  {
    cloud: 'hetzner',
    check: '/v1/locations',
    create: (name: string) => ['/v1/servers', { name, server_type: 'cx22', image: 'debian-12' }, 201] as const,
    status: async (url: string, body: any, headers: Record<string, string>) => {
      const s = ((await (await fetch(`${url}/v1/servers/${body.server.id}`, { headers })).json()) as any).server;
      return s.status === 'running';
    },
  },
];

for (const c of CLOUDS) {
  test(`provisional-emulator ${c.cloud}: prints its API URL and token, serves machines, removes them on SIGINT`, { timeout: 120_000 }, async () => {
    const child = spawn(process.execPath, [BIN, c.cloud, '--port', '0', '--token', 'cli-token'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const name = `cli-${c.cloud}-${process.pid}`;
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      const deadline = Date.now() + 60_000;
      while (!/Press Ctrl-C/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      const url = /API emulator at (http:\/\/\S+)/.exec(out)?.[1];
      assert.ok(url, out);
      assert.match(out, /token:\s+cli-token/);
      const headers = { authorization: 'Bearer cli-token', 'content-type': 'application/json' };
      assert.equal((await fetch(`${url}${c.check}`, { headers })).status, 200);
      const [path, body, expected] = c.create(name);
      const created = await fetch(`${url}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
      assert.equal(created.status, expected);
      const answer = await created.json();
      let up = false;
      while (!up && Date.now() < deadline) {
        up = await c.status(url, answer, headers);
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.ok(up, 'the machine came up');
      const runs: number[] = [];
      for (const pid of await nspawnPids(`${emulatorCacheDir()}/runs`)) {
        if ((await readFile(`/proc/${pid}/cmdline`, 'utf8')).includes(`--machine=${name}`)) runs.push(pid);
      }
      assert.ok(runs.length >= 1, 'the machine is a running container');
      child.kill('SIGINT');
      const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 60_000))]);
      assert.equal(code, 0, out);
      for (const pid of runs) {
        const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
        assert.ok(!stat || / [ZX] /.test(stat.slice(stat.lastIndexOf(')'))), `machine process ${pid} left running`);
      }
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
}

test('provisional-emulator: an unknown cloud is a usage error (exit 2)', async () => {
  const child = spawn(process.execPath, [BIN, 'nimbus'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 2);
  assert.match(err, /unknown cloud "nimbus"/);
  assert.match(err, /digitalocean/);
  assert.match(err, /hetzner/);
});
