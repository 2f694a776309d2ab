/**
 * Warm builders on real QEMU (src/providers/local/warm.ts): the first builder of a shape boots,
 * is saved and resumed; the next ones resume the saved machine. What a build can see must be a
 * builder's own: its keys only (the saved machine's key cannot log in), its host name, the host's
 * clock, its own random numbers; a version from it is on the base's disk alone. A saved state that
 * does not resume is forgotten and the builder boots instead; a launch cancelled at any moment
 * leaves nothing. Under TCG only (the provider resumes nothing under KVM), which is forced here.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, truncateSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { CancelledError } from '../../src/core/errors.js';
import type { ProgressEvent } from '../../src/core/events.js';
import { LABELS, type Machine, type Provider, type SourceImage } from '../../src/providers/types.js';
import local from '../../src/providers/local/index.js';
import { hardwareFor } from '../../src/providers/local/accelerator.js';
import { BaseStore } from '../../src/providers/local/bases.js';
import { qemuVersion } from '../../src/providers/local/qemu.js';
import { forgetWarm, readWarm, warmKey, warmRoot } from '../../src/providers/local/warm.js';
import { sshConnect, sshExec, waitForSsh } from '../contract/ssh.js';
import { generateKeyPair } from '../../src/ssh/client.js';
import { cleanFilesCommand, POWER_OFF_REQUEST } from '../../src/pipeline/pipeline.js';
import { processesMentioning } from '../helpers/processes.js';

const project = 'e2e-warm';
const root = mkdtempSync(join(tmpdir(), 'provisional-e2e-warm-'));
const dataDir = join(root, 'data');
const machinesDir = join(dataDir, 'local', project, 'machines');
const signal = new AbortController().signal;

function assertNothingLeft(): void {
  assert.deepEqual(processesMentioning(dataDir), [], 'no QEMU left');
  assert.deepEqual(existsSync(machinesDir) ? readdirSync(machinesDir) : [], [], 'no run folder left');
  assert.deepEqual(readdirSync(warmRoot()).filter((f) => /\.work-|\.lock$/.test(f)), [], 'no half-saved builder or held lock left');
}

describe('local provider: warm builders (resumed from a saved machine) on real QEMU', { timeout: 20 * 60_000 }, () => {
  let provider: Provider;
  let base: SourceImage & { kind: 'base' };
  let key: string;
  const events: ProgressEvent[] = [];
  const previous = process.env.PROVISIONAL_DATA_DIR;
  const machines: Machine[] = [];
  const a = generateKeyPair('warm-a');
  const b = generateKeyPair('warm-b');
  let baseDisk: string;
  const builder = (name: string, authorizedKey: string) => ({ name, source: base, authorizedKey, labels: { [LABELS.project]: project, [LABELS.role]: 'builder', [LABELS.run]: 'warm' } });

  before(async () => {
    process.env.PROVISIONAL_DATA_DIR = dataDir;
    provider = await local.create(local.settingsSchema.parse({ accelerator: 'tcg', 'stop-timeout': 10 }), { project, projectDir: root, events: { emit: (e) => events.push(e) } });
    base = await provider.prepareBase('debian-12', signal);
    const settings = local.settingsSchema.parse({});
    const ready = await new BaseStore(settings, { emit: () => undefined }).prepare('debian-12', signal);
    baseDisk = ready.boot.baseDisk;
    key = warmKey({ boot: ready.boot, hardware: hardwareFor('tcg', true), memoryMiB: settings.memory, cpus: settings.cpus, qemuVersion: await qemuVersion() });
    // The first builder makes the saved machine, whatever an earlier run left.
    await forgetWarm(key);
  });

  after(async () => {
    for (const m of machines) await provider.destroyMachine(m, signal).catch(() => undefined);
    if (previous === undefined) delete process.env.PROVISIONAL_DATA_DIR;
    else process.env.PROVISIONAL_DATA_DIR = previous;
    await rm(root, { recursive: true, force: true });
  });

  /** What a build script would see: host name, clock, keys, 16 random bytes. */
  async function look(machine: Machine, privateKey: string) {
    const client = await waitForSsh(machine.ssh, privateKey, 120_000);
    try {
      const r = await sshExec(client, 'hostname; date +%s; cat /root/.ssh/authorized_keys; head -c 16 /dev/urandom | od -An -tx1 | tr -d " \\n"; echo');
      assert.equal(r.code, 0, r.stderr);
      const [hostname, clock, ...rest] = r.stdout.trim().split('\n');
      return { hostname, clockSkewS: Math.abs(Number(clock) - Date.now() / 1000), keys: rest.slice(0, -1), random: rest.at(-1) };
    } finally {
      client.end();
    }
  }

  it('the first builder boots and is saved, the next resumes; each is its own machine, and the saved key cannot log in', async () => {
    const first = await provider.launchMachine(builder('warm-a', a.publicKey), signal);
    machines.push(first);
    assert.ok(events.some((e) => e.type === 'step' && /saving a booted debian-12 builder/.test(e.message)), 'the first builder made the saved machine');
    const saved = await readWarm(key);
    assert.ok(saved, 'the saved machine is complete');
    events.length = 0;
    const second = await provider.launchMachine(builder('warm-b', b.publicKey), signal);
    machines.push(second);
    assert.ok(!events.some((e) => e.type === 'step' && /saving a booted/.test(e.message)), 'the second resumed it');
    assert.ok(!events.some((e) => e.type === 'warn'), JSON.stringify(events.filter((e) => e.type === 'warn')));

    const seenA = await look(first, a.privateKey);
    const seenB = await look(second, b.privateKey);
    assert.equal(seenA.hostname, 'warm-a');
    assert.equal(seenB.hostname, 'warm-b');
    assert.deepEqual(seenA.keys, [a.publicKey.trim()], 'only its own key');
    assert.deepEqual(seenB.keys, [b.publicKey.trim()], 'only its own key');
    assert.ok(seenA.clockSkewS < 5 && seenB.clockSkewS < 5, `clocks set: ${seenA.clockSkewS}, ${seenB.clockSkewS} s off`);
    assert.match(seenA.random!, /^[0-9a-f]{32}$/);
    assert.notEqual(seenA.random, seenB.random, 'random numbers of their own');
    await assert.rejects(sshConnect(second.ssh, saved.privateKey), /authentication/i, "the saved machine's key is gone");
  });

  it('a version from a resumed builder is on the base disk alone, and a server from it has what the build wrote', async () => {
    const builderMachine = machines.pop()!; // warm-b: resumed, its disk on the saved machine's
    const client = await waitForSsh(builderMachine.ssh, b.privateKey, 60_000);
    const marker = `warm-${Date.now()}`;
    // The build's own clean step and power-off request, as the pipeline runs them.
    const wrote = await sshExec(client, `echo ${marker} > /root/warm-marker && ${cleanFilesCommand(b.publicKey)}`);
    assert.equal(wrote.code, 0, wrote.stderr);
    await sshExec(client, POWER_OFF_REQUEST, 10_000).catch(() => undefined);
    client.end();
    await provider.stopMachine(builderMachine, signal);
    const version = await provider.snapshotMachine(
      builderMachine,
      { image: 'warm', version: 'warm-20260101000001', parent: { kind: 'base', ref: 'debian-12' }, inputHash: `sha256:${'0'.repeat(64)}`, toolVersion: 'e2e', createdAt: new Date().toISOString() },
      signal,
    );
    await provider.destroyMachine(builderMachine, signal);
    try {
      const info = JSON.parse(spawnSync('qemu-img', ['info', '--output=json', '-U', version.id], { encoding: 'utf8' }).stdout) as { 'full-backing-filename'?: string; 'backing-filename'?: string };
      assert.equal(info['full-backing-filename'] ?? info['backing-filename'], baseDisk, 'the version is an overlay on the base disk');
      const s = generateKeyPair('warm-server');
      const server = await provider.launchMachine({ name: 'warm-server', source: { kind: 'version', version }, authorizedKey: s.publicKey, labels: { [LABELS.project]: project, [LABELS.role]: 'server' } }, signal);
      try {
        const seen = await waitForSsh(server.ssh, s.privateKey, 300_000);
        const r = await sshExec(seen, 'cat /root/warm-marker; hostname; cat /root/.ssh/authorized_keys');
        seen.end();
        assert.deepEqual(r.stdout.trim().split('\n'), [marker, 'warm-server', s.publicKey.trim()]);
      } finally {
        await provider.destroyMachine(server, signal);
      }
    } finally {
      await provider.deleteImageVersion(version, signal);
    }
  });

  it('a saved state that does not resume is forgotten: the builder boots instead, with a warning', async () => {
    const saved = await readWarm(key);
    assert.ok(saved);
    truncateSync(join(saved.dir, 'state'), 4096);
    events.length = 0;
    const c = generateKeyPair('warm-c');
    const machine = await provider.launchMachine(builder('warm-c', c.publicKey), signal);
    machines.push(machine);
    const warnings = events.filter((e) => e.type === 'warn').map((e) => (e as { message: string }).message);
    assert.ok(warnings.some((w) => /did not resume from the saved builder/.test(w)), warnings.join('\n'));
    assert.equal(await readWarm(key), undefined, 'forgotten');
    const seen = await look(machine, c.privateKey);
    assert.equal(seen.hostname, 'warm-c');
    assert.deepEqual(seen.keys, [c.publicKey.trim()]);
  });

  it('a builder launch cancelled at any moment, making or resuming the saved machine, leaves nothing (and a made one stays)', async () => {
    for (const m of machines.splice(0)) await provider.destroyMachine(m, signal);
    assertNothingLeft();
    const cancelledAfter = async (delayMs: number): Promise<boolean> => {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), delayMs);
      const outcome = await provider.launchMachine(builder(`cancelled-${delayMs}`, generateKeyPair('x').publicKey), controller.signal).then(
        (m) => m,
        (err: unknown) => err,
      );
      clearTimeout(timer);
      if (outcome instanceof Error) assert.ok(outcome instanceof CancelledError, `cancelled, not ${outcome.message}`);
      else await provider.destroyMachine(outcome as Machine, signal);
      assertNothingLeft();
      return outcome instanceof Error;
    };
    // None saved now (the case before forgot it): making one takes a boot (over 8 s), so each of
    // these lands in it: before the machine starts, while it boots, while it waits for SSH.
    assert.equal(await readWarm(key), undefined);
    for (const delayMs of [0, 300, 3000, 8000]) {
      assert.ok(await cancelledAfter(delayMs), `cancelled after ${delayMs} ms, while making the saved machine`);
      assert.equal(await readWarm(key), undefined, 'nothing half-saved counts as saved');
    }
    // Made by one that runs to the end; then cancels while resuming it.
    const made = await provider.launchMachine(builder('warm-d', generateKeyPair('warm-d').publicKey), signal);
    await provider.destroyMachine(made, signal);
    assert.ok(await readWarm(key));
    let cancelled = 0;
    for (const delayMs of [0, 150, 500, 1000]) if (await cancelledAfter(delayMs)) cancelled++;
    assert.ok(cancelled >= 2, `${cancelled} of 4 launches were cancelled while resuming`);
    assert.ok(await readWarm(key), 'a cancelled resume does not forget the saved machine');
  });
});
