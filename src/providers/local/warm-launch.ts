/**
 * Launching a warm builder (warm.ts has the saved machines and why): which launches qualify
 * (`warmShape`), and `launchWarm`: resume the saved machine of the shape, or make it first (boot,
 * settle, save, resume), then hand it over; a saved machine that does not resume is forgotten and
 * the builder boots.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CancelledError } from '../../core/errors.js';
import { step, type EventSink } from '../../core/events.js';
import { poll } from '../../core/wait.js';
import { generateKeyPair, waitForSsh } from '../../ssh/client.js';
import { LABELS, type LaunchRequest } from '../types.js';
import { hardwareFor } from './accelerator.js';
import { machineDir } from './layout.js';
import { OVERLAY, isRunning, killMachineProcess, launch, removeMachine, restartMachine, type LaunchSpec, type MachineRecord } from './machines.js';
import { qemuVersion } from './qemu.js';
import { hostnameFor } from './qemu-args.js';
import { qmpCommand } from './qmp.js';
import { adoptCommand, forgetWarm, lockWarm, readWarm, saveWarm, WARM_HOSTNAME, warmKey, type WarmShape, type WarmState } from './warm.js';

/**
 * Whether a machine resumes a saved one instead of booting (warm.ts): a builder, from a base that
 * boots its own kernel, under TCG (under KVM a boot takes a few seconds), without port forwards.
 */
export async function warmShape(req: LaunchRequest, spec: LaunchSpec, signal: AbortSignal): Promise<WarmShape | undefined> {
  if (spec.accelerator !== 'tcg' || req.labels[LABELS.role] !== 'builder') return undefined;
  if (spec.source.kind !== 'base' || !spec.boot.kernel || spec.ports.length) return undefined;
  return { boot: spec.boot, hardware: hardwareFor(spec.accelerator, true), memoryMiB: spec.memoryMiB, cpus: spec.cpus, qemuVersion: await qemuVersion(signal) };
}

/** A builder resumed from the saved machine of its shape, made first by this builder if there is none. */
export async function launchWarm(spec: LaunchSpec, shape: WarmShape, events: EventSink, signal: AbortSignal): Promise<MachineRecord> {
  const key = warmKey(shape);
  let state = await readWarm(key);
  if (!state) {
    const lock = await lockWarm(key, signal);
    try {
      state = await readWarm(key);
      if (!state) return await makeWarm(spec, shape, key, events, signal);
    } finally {
      await lock.release();
    }
  }
  let record: MachineRecord | undefined;
  try {
    const startedAt = performance.now();
    record = await launch(
      { ...spec, backing: state.overlay, backingFormat: 'qcow2', authorizedKey: state.publicKey, hostname: WARM_HOSTNAME, warm: { incoming: state.incoming }, rebaseOnto: { backing: spec.backing, format: spec.backingFormat } },
      signal,
    );
    return await adopt(record, state, spec, events, signal, startedAt);
  } catch (err) {
    if (record) await removeMachine(record.project, record.id).catch(() => undefined);
    if (err instanceof CancelledError || signal.aborted) throw err;
    events.emit({ type: 'warn', message: `${spec.name} did not resume from the saved builder (${(err as Error).message}): booting it instead; the saved builder is made again next time` });
    await forgetWarm(key);
    return launch(spec, signal);
  }
}

/**
 * Boot a machine with a key of its own, let it settle, save it as the warm state of `key`, and
 * resume it as the builder. If saving fails, the builder boots as usual.
 */
async function makeWarm(spec: LaunchSpec, shape: WarmShape, key: string, events: EventSink, signal: AbortSignal): Promise<MachineRecord> {
  const keys = generateKeyPair('provisional-warm');
  const warmSpec: LaunchSpec = { ...spec, authorizedKey: keys.publicKey, hostname: WARM_HOSTNAME, warm: {} };
  const record = await launch(warmSpec, signal);
  const dir = machineDir(record.project, record.id);
  try {
    const state = await step(events, 'save-builder', `saving a booted ${spec.boot.baseRef} builder for the next builds to resume (once)`, async () => {
      const ssh = await waitForSsh(record.ssh, keys.privateKey, { timeoutMs: 300_000, signal, what: `SSH on ${spec.name}` });
      try {
        // Settled: the units after sshd have run, so a resumed builder starts idle.
        await ssh.exec('systemctl is-system-running --wait >/dev/null 2>&1; true', { timeoutMs: 120_000, signal });
      } finally {
        ssh.close();
      }
      const saved = await saveWarm(key, { qmp: record.qmp, overlay: join(dir, OVERLAY) }, keys, shape);
      // Paused and flushed by the save: its overlay is the saved one's copy, to resume on as it is.
      await killMachineProcess(record.pid!, dir);
      return saved;
    });
    const startedAt = performance.now();
    await restartMachine({ ...warmSpec, warm: { incoming: state.incoming } }, record, signal);
    return await adopt(record, state, spec, events, signal, startedAt);
  } catch (err) {
    await removeMachine(record.project, record.id).catch(() => undefined);
    if (err instanceof CancelledError || signal.aborted) throw err;
    events.emit({ type: 'warn', message: `could not save a booted builder to resume later (${(err as Error).message}): booting ${spec.name} as usual` });
    return launch(spec, signal);
  }
}

/**
 * Hand a resumed machine over: the request's keys, its own host name, the host's clock (warm.ts
 * adoptCommand). Says (debug) how long the resume took from QEMU's start (`startedAt`) to SSH
 * answering, and the hand-over after it: bench/packer-compare.ts counts the first as the
 * machine's start and the second as the tool's own work.
 */
async function adopt(record: MachineRecord, state: WarmState, spec: LaunchSpec, events: EventSink, signal: AbortSignal, startedAt: number): Promise<MachineRecord> {
  await waitResumed(record, signal);
  const ssh = await waitForSsh(record.ssh, state.privateKey, { timeoutMs: 120_000, signal, what: `SSH on the resumed ${spec.name}` });
  const answered = performance.now();
  try {
    const r = await ssh.exec(adoptCommand(spec.authorizedKey, spec.hostname ?? hostnameFor(spec.name)), { timeoutMs: 60_000, signal });
    if (r.code !== 0) throw new Error(`preparing the resumed machine failed (exit ${r.code}): ${r.stderr.trim()}`);
  } finally {
    ssh.close();
  }
  const handOverMs = Math.round(performance.now() - answered);
  events.emit({ type: 'debug', message: `${spec.name} resumed: QEMU start to SSH ${Math.round(answered - startedAt)} ms, hand-over ${handOverMs} ms` });
  return record;
}

/** Until a machine started from a saved state runs; fails at once if QEMU could not load it. */
async function waitResumed(record: MachineRecord, signal: AbortSignal, timeoutMs = 120_000): Promise<void> {
  const outcome = await poll(
    async () => {
      if (!(await isRunning(record))) {
        const said = await readFile(join(machineDir(record.project, record.id), 'qemu.log'), 'utf8').catch(() => '');
        return { failed: `QEMU exited while resuming${said.trim() ? `: ${said.trim().split('\n').slice(-3).join(' ')}` : ''}` };
      }
      // No answer yet (its QMP socket not ready): poll again.
      const { status } = (await qmpCommand(record.qmp, 'query-status', 5000)) as { status?: string };
      if (status === 'running') return { failed: undefined };
      return status && status !== 'inmigrate' ? { failed: `the resumed machine is ${status}, not running` } : undefined;
    },
    { what: `${record.name} to resume`, timeoutMs, intervalMs: 100, factor: 1, signal },
  );
  if (outcome.failed) throw new Error(outcome.failed);
}
