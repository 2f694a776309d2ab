/**
 * The machines behind the emulators: real containers, real SSH, snapshots that keep what was written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { sshExec, waitForSsh } from '../../contract/ssh.js';
import { BASE_LAYER, MachinePool, orphanedMachines } from '../../../src/emulators/machines/pool.js';
import { descendants } from '../../../src/emulators/machines/container.js';
import { portFree } from '../../../src/emulators/machines/addresses.js';
import { makeKeyPair, nspawnPids, overlayMountsBelow } from './test-support.js';

test('machines: boot, SSH on their own address, snapshot, a machine from the snapshot, nothing left', { timeout: 240_000 }, async () => {
  const key = await makeKeyPair();
  const pool = await MachinePool.open({ stopTimeoutMs: 20_000 });
  try {
    let t = Date.now();
    const first = await pool.create({ name: 'first', layer: BASE_LAYER, authorizedKeys: [key.publicKey], labels: { role: 'builder' } });
    assert.match(first.ip, /^127\.0\.\d+\.\d+$/);
    assert.equal(first.state, 'running');
    const ssh1 = await waitForSsh({ host: first.ip, port: first.port, user: 'root' }, key.privateKey, 30_000);
    const bootMs = Date.now() - t;
    const r1 = await sshExec(ssh1, 'hostname && echo built-by-script > /etc/provisional-marker && systemctl is-system-running --wait; cat /etc/ssh/ssh_host_ed25519_key.pub');
    ssh1.end();
    assert.equal(r1.code, 0, r1.stderr);
    const [hostname, state, hostKey1] = r1.stdout.trim().split('\n');
    assert.equal(hostname, 'first');
    assert.equal(state, 'running');

    t = Date.now();
    await pool.stop(first.id);
    const stopMs = Date.now() - t;
    assert.equal(pool.get(first.id)?.state, 'stopped');
    const layer = await pool.snapshot(first.id);
    assert.ok(pool.hasLayer(layer));

    const second = await pool.create({ name: 'second', layer, authorizedKeys: [key.publicKey] });
    assert.notEqual(second.ip, first.ip);
    const ssh2 = await waitForSsh({ host: second.ip, port: second.port, user: 'root' }, key.privateKey, 30_000);
    const r2 = await sshExec(ssh2, 'hostname; cat /etc/provisional-marker; cat /etc/ssh/ssh_host_ed25519_key.pub');
    ssh2.end();
    assert.equal(r2.code, 0, r2.stderr);
    const [hostname2, marker, hostKey2] = r2.stdout.trim().split('\n');
    assert.equal(hostname2, 'second');
    assert.equal(marker, 'built-by-script');
    assert.notEqual(hostKey2, hostKey1, 'each machine has its own host keys');

    // The stopped first machine starts again, over its snapshot.
    await pool.start(first.id);
    const ssh3 = await waitForSsh({ host: first.ip, port: first.port, user: 'root' }, key.privateKey, 30_000);
    assert.equal((await sshExec(ssh3, 'cat /etc/provisional-marker')).stdout.trim(), 'built-by-script');
    ssh3.end();

    // A guest poweroff is seen as a stop.
    const ssh4 = await waitForSsh({ host: second.ip, port: second.port, user: 'root' }, key.privateKey, 30_000);
    sshExec(ssh4, 'systemctl poweroff', 5000).catch(() => undefined);
    const deadline = Date.now() + 30_000;
    while (pool.get(second.id)?.state !== 'stopped' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    ssh4.end();
    assert.equal(pool.get(second.id)?.state, 'stopped');

    await pool.destroy(second.id);
    assert.equal(pool.get(second.id), undefined);
    console.log(`boot to SSH ${bootMs} ms, clean stop ${stopMs} ms`);
  } finally {
    await pool.close();
  }
  assert.equal(existsSync(pool.runDir), false, 'the run directory is gone');
  assert.deepEqual(await overlayMountsBelow(pool.runDir), []);
  assert.deepEqual(await nspawnPids(pool.runDir), []);
});

test('machines: an emulator killed with SIGKILL leaves no machine running, and the next pool reaps its files', { timeout: 120_000 }, async () => {
  const { child, runDir } = await childPool('orphan');
  const started = Date.now() + 10_000;
  while ((await nspawnPids(runDir)).length === 0 && Date.now() < started) await new Promise((r) => setTimeout(r, 100));
  assert.ok((await nspawnPids(runDir)).length >= 1);
  const pid = child.pid!;
  child.kill('SIGKILL');
  const deadline = Date.now() + 30_000;
  while ((await nspawnPids(runDir)).length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(await nspawnPids(runDir), [], 'the container shut down when its emulator died');
  assert.deepEqual(await descendants(pid), []);
  assert.deepEqual(await overlayMountsBelow(runDir), []);
  const next = await MachinePool.open();
  await next.close();
  assert.equal(existsSync(runDir), false, 'the dead run was reaped');
  assert.ok(!(await readFile('/proc/mounts', 'utf8')).includes(runDir));
});

test('machines: a machine whose systemd-nspawn was killed (orphaned to init) is killed by the next pool, freeing its address', { timeout: 120_000 }, async () => {
  const { child, runDir, ip, port } = await childPool('orphan2');
  const listening = Date.now() + 20_000;
  while ((await portFree(ip, port)) && Date.now() < listening) await new Promise((r) => setTimeout(r, 100));
  assert.equal(await portFree(ip, port), false, 'the machine\'s sshd listens');
  // The fault: nspawn dies first (SIGKILL, so it cannot take its machine along), then the emulator.
  const [nspawn] = await nspawnPids(runDir);
  assert.ok(nspawn, 'systemd-nspawn runs');
  const [{ pid: init } = { pid: 0 }] = await orphanedMachines(runDir);
  assert.ok(init, 'the machine\'s systemd is found by its overlay');
  process.kill(nspawn, 'SIGKILL');
  child.kill('SIGKILL');
  const reparented = Date.now() + 10_000;
  while (ppidOf(init) !== 1 && Date.now() < reparented) await new Promise((r) => setTimeout(r, 100));
  assert.equal(ppidOf(init), 1, 'the fault landed: the machine\'s systemd outlived its nspawn and belongs to init');
  assert.equal(await portFree(ip, port), false, 'the orphan still holds the address');
  const next = await MachinePool.open();
  await next.close();
  const gone = Date.now() + 10_000;
  while (ppidOf(init) !== undefined && Date.now() < gone) await new Promise((r) => setTimeout(r, 100));
  assert.equal(ppidOf(init), undefined, 'the orphaned machine was killed');
  assert.equal(await portFree(ip, port), true, 'its address is free again');
  assert.equal(existsSync(runDir), false, 'the dead run was reaped');
});

/** A live process's parent pid, undefined once it is gone (or a zombie). */
function ppidOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] === 'Z' ? undefined : Number(fields[1]);
  } catch {
    return undefined;
  }
}

test('machines: a forced stop kills the whole container (no orphan keeps its overlay or its address)', { timeout: 120_000 }, async () => {
  const pool = await MachinePool.open();
  try {
    const m = await pool.create({ name: 'forced', layer: BASE_LAYER, authorizedKeys: [] });
    const deadline = Date.now() + 20_000;
    while ((await portFree(m.ip, m.port)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await portFree(m.ip, m.port), false, 'sshd listens on the machine address');
    await pool.stop(m.id, { force: true });
    assert.deepEqual(await overlayMountsBelow(pool.runDir), []);
    assert.equal(await portFree(m.ip, m.port), true, 'nothing listens on the address any more');
  } finally {
    await pool.close();
  }
});

/** A machine pool in a child process (to be killed), with one machine: the child, its run directory and the machine's SSH address. */
async function childPool(name: string) {
  const script = `
    const { MachinePool, BASE_LAYER } = await import(${JSON.stringify(new URL('../../../src/emulators/machines/pool.js', import.meta.url).href)});
    const pool = await MachinePool.open();
    const m = await pool.create({ name: ${JSON.stringify(name)}, layer: BASE_LAYER, authorizedKeys: [] });
    console.log(JSON.stringify({ runDir: pool.runDir, ip: m.ip, port: m.port }));
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the child pool did not start within 60 s')), 60_000);
    child.stdout.once('data', (d: Buffer) => {
      clearTimeout(timer);
      resolve(d.toString());
    });
  });
  return { child, ...(JSON.parse(line) as { runDir: string; ip: string; port: number }) };
}
