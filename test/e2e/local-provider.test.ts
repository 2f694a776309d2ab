/**
 * The local provider with real QEMU beyond the contract: cancelling a base build or a launch, a
 * machine that will not power off, a machine that died, a port that is taken. After each, nothing
 * may be left running or on disk. And a configured base (file:// download, checksum, direct kernel boot).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer, type Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { CancelledError } from '../../src/core/errors.js';
import type { ProgressEvent } from '../../src/core/events.js';
import type { Machine, Provider, SourceImage } from '../../src/providers/types.js';
import local from '../../src/providers/local/index.js';
import { sshExec, waitForSsh } from '../contract/ssh.js';
import { qmpCommand } from '../../src/providers/local/qmp.js';
import { generateKeyPair } from '../../src/ssh/client.js';
import { processesMentioning } from '../helpers/processes.js';

const project = 'e2e';
const root = mkdtempSync(join(tmpdir(), 'provisional-e2e-local-'));
const dataDir = join(root, 'data');
const machinesDir = join(dataDir, 'local', project, 'machines');
const key = generateKeyPair('e2e').publicKey;

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function assertNothingLeft(): void {
  assert.deepEqual(processesMentioning(dataDir), [], 'no QEMU left');
  assert.deepEqual(existsSync(machinesDir) ? readdirSync(machinesDir) : [], [], 'no run folder left');
}

async function makeProvider(settings: Record<string, unknown> = {}, events: ProgressEvent[] = []): Promise<Provider> {
  return local.create(local.settingsSchema.parse(settings), { project, projectDir: root, events: { emit: (e) => events.push(e) } });
}

describe('local provider with real QEMU: failure paths, configured bases', () => {
  let provider: Provider;
  let base: SourceImage;
  const previous = process.env.PROVISIONAL_DATA_DIR;

  before(async () => {
    process.env.PROVISIONAL_DATA_DIR = dataDir;
    provider = await makeProvider({ 'stop-timeout': 3 });
    // The shared cache: built once per machine (the contract suite needs it too).
    base = await provider.prepareBase('debian-12', new AbortController().signal);
  });

  after(async () => {
    if (previous === undefined) delete process.env.PROVISIONAL_DATA_DIR;
    else process.env.PROVISIONAL_DATA_DIR = previous;
    await rm(root, { recursive: true, force: true });
  });

  it('says which accelerator it uses, and why', async () => {
    const line = await provider.describe();
    assert.match(line, /^local QEMU \d+\.\d+(\.\d+)?, accelerator (kvm|tcg) \(.+\)$/);
    if (line.includes('accelerator tcg')) assert.match(line, /KVM unusable: |accelerator: tcg/);
  });

  it('a launch cancelled at any moment leaves no process and no files', async () => {
    for (const delayMs of [0, 5, 20, 60, 150, 400]) {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), delayMs);
      const outcome = await provider
        .launchMachine({ name: `cancelled-${delayMs}`, source: base, authorizedKey: key, labels: {} }, controller.signal)
        .then(
          (m) => m,
          (err: unknown) => err,
        );
      clearTimeout(timer);
      if (outcome instanceof Error) assert.ok(outcome instanceof CancelledError, `cancelled, not ${outcome.message}`);
      // The launch won the race: the caller destroys what it got, as the pipeline's cleanup does.
      else await provider.destroyMachine(outcome as Machine, new AbortController().signal);
      assertNothingLeft();
    }
  });

  it('a machine that does not power off gets its power button pressed, then is killed', { timeout: 120_000 }, async () => {
    const events: ProgressEvent[] = [];
    const impatient = await makeProvider({ 'stop-timeout': 2 }, events);
    const signal = new AbortController().signal;
    const machine = await impatient.launchMachine({ name: 'stubborn', source: base, authorizedKey: key, labels: {} }, signal);
    try {
      // Right after launch the guest is still in its firmware or kernel: no ACPI handler yet.
      await impatient.stopMachine(machine, signal);
      const warnings = events.filter((e) => e.type === 'warn').map((e) => (e as { message: string }).message);
      assert.ok(warnings.some((w) => /pressing its power button/.test(w)), warnings.join('\n'));
      assert.ok(!warnings.some((w) => /could not press/.test(w)), warnings.join('\n'));
      const [server] = (await impatient.listServers!({}, signal)).filter((s) => s.id === machine.id);
      assert.equal(server?.state, 'stopped');
    } finally {
      await impatient.destroyMachine(machine, signal);
    }
    assertNothingLeft();
  });

  it('answers QMP on its socket, also when the run folder is too deep for a socket path', async () => {
    const deep = join(root, 'd'.repeat(60), 'e'.repeat(60));
    process.env.PROVISIONAL_DATA_DIR = deep;
    const signal = new AbortController().signal;
    try {
      const machine = await provider.launchMachine({ name: 'deep', source: base, authorizedKey: key, labels: {} }, signal);
      let socket = '';
      try {
        const record = JSON.parse(readFileSync(join(deep, 'local', project, 'machines', machine.id, 'machine.json'), 'utf8')) as { qmp: string };
        socket = record.qmp;
        assert.match(socket, /^\/tmp\/provisional-qmp-\d+\/[0-9a-f]{24}\.sock$/, 'a short socket path');
        assert.deepEqual(await qmpCommand(record.qmp, 'query-status'), { status: 'running', singlestep: false, running: true });
      } finally {
        await provider.destroyMachine(machine, signal);
      }
      assert.deepEqual(processesMentioning(deep), []);
      assert.equal(existsSync(socket), false, 'socket removed');
    } finally {
      process.env.PROVISIONAL_DATA_DIR = dataDir;
    }
  });

  it('a machine whose QEMU died is listed dead, and destroying it cleans up', async () => {
    const signal = new AbortController().signal;
    const machine = await provider.launchMachine({ name: 'doomed', source: base, authorizedKey: key, labels: { 'provisional-role': 'server' } }, signal);
    const pid = Number(readFileSync(join(machinesDir, machine.id, 'qemu.pid'), 'utf8'));
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 50 && processesMentioning(join(machinesDir, machine.id)).length; i++) await new Promise((r) => setTimeout(r, 100));
    const servers = await provider.listServers!({ role: 'server' }, signal);
    assert.deepEqual(servers.map((s) => [s.name, s.state]), [['doomed', 'dead']]);
    await provider.destroyMachine(machine, signal);
    await provider.destroyMachine(machine, signal);
    assertNothingLeft();
  });

  it('a forwarded port that is taken fails the launch with QEMU\'s reason, leaving nothing', async () => {
    const blocker: NetServer = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      await assert.rejects(
        provider.launchMachine({ name: 'clash', source: base, authorizedKey: key, labels: {}, options: { ports: [`${port}:80`] } }, new AbortController().signal),
        (err: Error) => {
          assert.match(err.message, /starting machine clash failed.*(hostfwd|forward)/is);
          return true;
        },
      );
    } finally {
      blocker.close();
    }
    assertNothingLeft();
  });

  it('a configured base is downloaded once, verified, and boots; a wrong checksum is refused', { timeout: 600_000 }, async () => {
    // The "download" is the debian-12 base this machine built, over file://, so that it needs no network.
    const builtIn = await provider.listBaseImages(new AbortController().signal);
    assert.ok(builtIn.some((b) => b.ref === 'debian-12' && b.ready));
    const from = dirname(base.kind === 'base' ? base.id : '');
    const artifact = async (file: string) => ({ url: pathToFileURL(join(from, file)).href, checksum: `sha256:${await sha256(join(from, file))}` });
    const disk = await artifact('disk.qcow2');
    const builtRecord = JSON.parse(readFileSync(join(from, 'base.json'), 'utf8')) as { kernel: string; initrd: string };
    const cacheDir = join(root, 'cache-configured');
    const previousCache = process.env.PROVISIONAL_CACHE_DIR;
    process.env.PROVISIONAL_CACHE_DIR = cacheDir;
    try {
      const bad = await makeProvider({ bases: { broken: { ...disk, checksum: `sha256:${'0'.repeat(64)}` } } });
      await assert.rejects(bad.prepareBase('broken', new AbortController().signal), /does not match its checksum: expected sha256:0+, got sha256:[0-9a-f]{64}/);
      assert.deepEqual(readdirSync(join(cacheDir, 'bases')), [], 'nothing kept of a bad download');

      const events: ProgressEvent[] = [];
      const configured = await makeProvider(
        { bases: { copy: { ...disk, kernel: await artifact(builtRecord.kernel), initrd: await artifact(builtRecord.initrd), append: 'root=/dev/vda rw console=ttyS0' } } },
        events,
      );
      const signal = new AbortController().signal;
      assert.deepEqual((await configured.listBaseImages(signal)).map((b) => [b.ref, b.ready]), [['debian-12', false], ['copy', false]], 'listing never downloads');
      const source = await configured.prepareBase('copy', signal);
      assert.ok(events.some((e) => e.type === 'step' && /downloading the base image copy/.test(e.message)));
      assert.deepEqual((await configured.listBaseImages(signal)).find((b) => b.ref === 'copy')?.ready, true);
      events.length = 0;
      await configured.prepareBase('copy', signal);
      assert.equal(events.filter((e) => e.type === 'step').length, 0, 'cached: not downloaded again');

      const pair = generateKeyPair('e2e-copy');
      const machine = await configured.launchMachine({ name: 'from-copy', source, authorizedKey: pair.publicKey, labels: {} }, signal);
      try {
        const client = await waitForSsh(machine.ssh, pair.privateKey, 300_000);
        const result = await sshExec(client, 'hostname');
        client.end();
        assert.equal(result.stdout.trim(), 'from-copy');
      } finally {
        await configured.destroyMachine(machine, signal);
      }
      assertNothingLeft();
    } finally {
      if (previousCache === undefined) delete process.env.PROVISIONAL_CACHE_DIR;
      else process.env.PROVISIONAL_CACHE_DIR = previousCache;
    }
  });

  it('a base build cancelled midway removes its work folder and releases its lock', { timeout: 180_000 }, async () => {
    const cacheDir = join(root, 'cache');
    const previousCache = process.env.PROVISIONAL_CACHE_DIR;
    process.env.PROVISIONAL_CACHE_DIR = cacheDir;
    try {
      const events: ProgressEvent[] = [];
      const fresh = await makeProvider({}, events);
      const controller = new AbortController();
      // Cancel while dpkg runs in the chroot (with /proc, /sys, /dev mounted in it).
      const watcher = setInterval(() => {
        if (events.some((e) => e.type === 'info' && /^installing remaining packages/.test(e.message))) controller.abort();
      }, 100);
      await assert.rejects(fresh.prepareBase('debian-12', controller.signal), CancelledError);
      clearInterval(watcher);
      assert.ok(controller.signal.aborted, 'cancelled during the build, not failed before it');
      assert.deepEqual(readdirSync(join(cacheDir, 'bases')), [], 'no work folder, no lock, no base');
      assert.deepEqual(processesMentioning(cacheDir), [], 'mmdebstrap and its children are gone');
      assert.equal(readFileSync('/proc/self/mountinfo', 'utf8').includes(cacheDir), false, 'nothing mounted');
      assert.deepEqual((await fresh.listBaseImages(new AbortController().signal)).map((b) => [b.ref, b.ready]), [['debian-12', false]]);
    } finally {
      if (previousCache === undefined) delete process.env.PROVISIONAL_CACHE_DIR;
      else process.env.PROVISIONAL_CACHE_DIR = previousCache;
    }
  });
});
