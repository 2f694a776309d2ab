/**
 * The installed package is the tool: `npm pack`, installed into an empty project (and globally),
 * gives `provisional` started from its bundle and `provisional-emulator` serving both clouds, as a
 * new user runs them (npx). Needs the built checkout (npm test builds first), root and the npm registry.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installGlobally, packAndInstall, writeLoadLogger, type InstalledPackage } from '../helpers/package.js';
import { nspawnPids } from '../emulators/machines/test-support.js';
import { emulatorCacheDir } from '../../src/emulators/machines/rootfs.js';

let pkg: InstalledPackage;
before(() => {
  pkg = packAndInstall();
});
after(() => pkg?.remove());

/** Starts `npx provisional-emulator ARGS` in its own process group (as a shell would), until `ready` is printed. */
async function startEmulator(args: string[], ready: RegExp) {
  const child = spawn('npx', ['--no-install', 'provisional-emulator', ...args], { cwd: pkg.project, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  // 'close' comes once every process holding the output pipes ended: npx, and the emulator itself.
  const exited = new Promise<string>((resolve) => child.on('close', (code, signal) => resolve(code === null ? String(signal) : `exit ${code}`)));
  for (const deadline = Date.now() + 90_000; !ready.test(out); ) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`provisional-emulator ${args.join(' ')} did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    output: () => out,
    /**
     * Ctrl-C: SIGINT to the whole process group (npx, its shell, the emulator), as a terminal sends it.
     * Resolves once all of them ended: npx exits 0 or, as npm does on Ctrl-C, by SIGINT itself.
     */
    interrupt: async () => {
      const emulatorPids = readdirSync('/proc').filter((p) => /^\d+$/.test(p) && isInstalledEmulator(readFileSyncSafe(`/proc/${p}/cmdline`)));
      assert.equal(emulatorPids.length, 1, 'one emulator process, from the installed package');
      process.kill(-child.pid!, 'SIGINT');
      const how = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('still running after 60 s'), 60_000).unref())]);
      assert.ok(how === 'exit 0' || how === 'SIGINT', `npx ended with ${how}\n${out}`);
      assert.equal(readFileSyncSafe(`/proc/${emulatorPids[0]}/cmdline`), '', 'the emulator process still runs');
      assert.match(out, /stopping the emulator and removing its machines/);
      assert.doesNotMatch(out, /cleanup failed|second interrupt/);
    },
    kill: () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // the group has ended
      }
    },
  };
}

/** The emulator's node process: started from the project's node_modules/.bin (npx puts it on the PATH). */
function isInstalledEmulator(cmdline: string): boolean {
  const [program, script] = cmdline.split('\0');
  return /node$/.test(program ?? '') && !!script?.startsWith(`${pkg.project}/node_modules/`) && script.includes('provisional-emulator');
}

function readFileSyncSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

async function machinesNamed(name: string): Promise<number[]> {
  const pids: number[] = [];
  for (const pid of await nspawnPids(`${emulatorCacheDir()}/runs`)) {
    if ((await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).includes(`--machine=${name}`)) pids.push(pid);
  }
  return pids;
}

describe('the installed package', { timeout: 15 * 60_000 }, () => {
  it('carries the bundle, the compiled CLI and emulators, and no tests', () => {
    const listing = execFileSync('tar', ['-tzf', pkg.tarball], { encoding: 'utf8' }).split('\n');
    for (const path of ['package/bin/provisional.js', 'package/dist/bundle/cli/main.js', 'package/dist/src/emulators/main.js', 'package/schema/config.schema.json']) {
      assert.ok(listing.includes(path), `${path} is not in the tarball`);
    }
    assert.deepEqual(listing.filter((p) => p.startsWith('package/dist/test/') || p.endsWith('.map') || p.endsWith('.ts')), []);
  });

  it('npx provisional --help starts from the bundle', () => {
    const plain = spawnSync('npx', ['--no-install', 'provisional', '--help'], { cwd: pkg.project, encoding: 'utf8' });
    assert.equal(plain.status, 0, plain.stderr);
    assert.match(plain.stdout, /image/);
    // Which modules the command loaded: the bundle's entry, and none of the plain compiled CLI.
    const scratch = mkdtempSync(join(tmpdir(), 'provisional-load-log-'));
    try {
      const log = join(scratch, 'loaded.txt');
      const logged = spawnSync('npx', ['--no-install', 'provisional', '--help'], {
        cwd: pkg.project,
        encoding: 'utf8',
        env: { ...process.env, LOAD_LOG: log, NODE_OPTIONS: `--import=${writeLoadLogger(scratch)}` },
      });
      assert.equal(logged.status, 0, logged.stderr);
      const own = readFileSync(log, 'utf8').split('\n').filter((url) => url.includes('/node_modules/provisional/'));
      assert.ok(own.some((url) => url.endsWith('/node_modules/provisional/dist/bundle/cli/main.js')), `the bundle was not loaded:\n${own.join('\n')}`);
      assert.deepEqual(own.filter((url) => url.includes('/dist/src/')), [], 'modules of the unbundled CLI were loaded');
      assert.ok(own.length <= 10, `${own.length} modules of the package loaded:\n${own.join('\n')}`);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  it('a global install (npm install -g) gives provisional on the PATH', () => {
    const prefix = mkdtempSync(join(tmpdir(), 'provisional-global-'));
    try {
      const bin = installGlobally(pkg.tarball, prefix);
      assert.ok(readdirSync(bin).includes('provisional') && readdirSync(bin).includes('provisional-emulator'), readdirSync(bin).join(' '));
      const r = spawnSync('provisional', ['--help'], { cwd: tmpdir(), encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /Usage: provisional/);
    } finally {
      rmSync(prefix, { recursive: true, force: true });
    }
  });

  it('npx provisional-emulator digitalocean serves the API and a droplet, and removes it on Ctrl-C', async () => {
    const emulator = await startEmulator(['digitalocean', '--port', '0'], /Press Ctrl-C/);
    const name = `pack-${process.pid}`;
    try {
      const url = /API emulator at (http:\/\/\S+)/.exec(emulator.output())?.[1];
      const token = /token:\s+(\S+)/.exec(emulator.output())?.[1];
      assert.ok(url && token, emulator.output());
      const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
      const account = await fetch(`${url}/v2/account`, { headers });
      assert.equal(account.status, 200);
      assert.equal(((await account.json()) as { account: { status: string } }).account.status, 'active');
      assert.equal((await fetch(`${url}/v2/account`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
      const created = await fetch(`${url}/v2/droplets`, { method: 'POST', headers, body: JSON.stringify({ name, size: 's-1vcpu-1gb', image: 'debian-12-x64' }) });
      assert.equal(created.status, 202, await created.clone().text());
      const id = ((await created.json()) as { droplet: { id: number } }).droplet.id;
      let status = '';
      for (const deadline = Date.now() + 120_000; status !== 'active' && Date.now() < deadline; await new Promise((r) => setTimeout(r, 250))) {
        status = ((await (await fetch(`${url}/v2/droplets/${id}`, { headers })).json()) as { droplet: { status: string } }).droplet.status;
      }
      assert.equal(status, 'active');
      const machines = await machinesNamed(name);
      assert.ok(machines.length >= 1, 'the droplet is a running container');
      await emulator.interrupt();
      assert.deepEqual(await machinesNamed(name), [], 'a machine outlived the emulator');
    } finally {
      emulator.kill();
    }
  });

  it('every other cloud of provisional-emulator starts from the package and answers with its token', async () => {
    const clouds = [...spawnSync('npx', ['--no-install', 'provisional-emulator', '--help'], { cwd: pkg.project, encoding: 'utf8' }).stdout.matchAll(/^  (\w+) {2,}/gm)].map((m) => m[1]!);
    assert.ok(clouds.includes('digitalocean') && clouds.includes('aws'), clouds.join(' '));
    for (const cloud of clouds.filter((c) => c !== 'digitalocean' && c !== 'aws')) {
      const emulator = await startEmulator([cloud, '--port', '0'], /Press Ctrl-C/);
      try {
        // Each prints a ready-made request with its token (the "try:" line).
        const [, token, url] = /try:\s+curl -H "Authorization: Bearer (\S+)" (http:\/\/\S+)/.exec(emulator.output()) ?? [];
        assert.ok(token && url, `${cloud}: no try: line\n${emulator.output()}`);
        assert.equal((await fetch(url, { headers: { authorization: `Bearer ${token}` } })).status, 200, `${cloud}: ${url}`);
        assert.notEqual((await fetch(url, { headers: { authorization: 'Bearer wrong' } })).status, 200, `${cloud}: a wrong token was accepted`);
        await emulator.interrupt();
      } finally {
        emulator.kill();
      }
    }
  });

  it('npx provisional-emulator aws answers the AWS CLI (DescribeRegions, signed), and stops on Ctrl-C', async () => {
    const emulator = await startEmulator(['aws', '--port', '0'], /Press Ctrl-C/);
    try {
      const url = /EC2 API emulator at (http:\/\/\S+)/.exec(emulator.output())?.[1];
      const [, accessKey, secret] = /credentials: access key (\S+), secret (\S+)/.exec(emulator.output()) ?? [];
      assert.ok(url && accessKey && secret, emulator.output());
      const aws = (env: Record<string, string>) =>
        spawnSync('aws', ['--endpoint-url', url, '--region', 'us-east-1', '--output', 'json', 'ec2', 'describe-regions'], {
          encoding: 'utf8',
          env: { ...process.env, AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null', ...env },
        });
      const r = aws({ AWS_ACCESS_KEY_ID: accessKey, AWS_SECRET_ACCESS_KEY: secret });
      assert.equal(r.status, 0, r.stderr);
      const regions = (JSON.parse(r.stdout) as { Regions: { RegionName: string }[] }).Regions.map((x) => x.RegionName);
      assert.ok(regions.includes('us-east-1'), r.stdout);
      const forged = aws({ AWS_ACCESS_KEY_ID: accessKey, AWS_SECRET_ACCESS_KEY: `${secret}x` });
      assert.notEqual(forged.status, 0, 'a wrong signature was accepted');
      await emulator.interrupt();
    } finally {
      emulator.kill();
    }
  });
});
