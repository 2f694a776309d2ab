/**
 * The local provider, assembled: bases (bases.ts), machines (machines.ts), versions (versions.ts).
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CancelledError, UserFacingError, throwIfAborted } from '../../core/errors.js';
import { poll, sleep } from '../../core/wait.js';
import {
  LABELS,
  type BaseImage,
  type ImageVersion,
  type ImageVersionMetadata,
  type LaunchOptions,
  type LaunchRequest,
  type Machine,
  type Provider,
  type ProviderContext,
  type Server,
  type SourceImage,
  type VersionMetadataPatch,
} from '../types.js';
import { chooseAccelerator, hardwareFor } from './accelerator.js';
import { readBaseRecord, type BootSpec } from './base-record.js';
import { BaseStore, baseIdentity } from './bases.js';
import { machineDir } from './layout.js';
import {
  OVERLAY,
  forwardGuestPort,
  isRunning,
  killMachineProcess,
  launch,
  listMachines,
  readMachine,
  removeMachine,
  restartMachine,
  writeMachine,
  type LaunchSpec,
  type MachineRecord,
} from './machines.js';
import { adoptCommand, forgetWarm, lockWarm, readWarm, saveWarm, WARM_HOSTNAME, warmKey, type WarmShape, type WarmState } from './warm.js';
import { hostnameFor } from './qemu-args.js';
import { generateKeyPair, waitForSsh } from '../../ssh/client.js';
import { step } from '../../core/events.js';
import { launchBatch, launchOne } from '../kit/launch.js';
import { readLaunchOptions } from '../kit/options.js';
import { qmpCommand } from './qmp.js';
import { LocalEndpoints } from './endpoints.js';
import { qemuVersion, rebaseOverlay } from './qemu.js';
import { machineOptionsSchema, parsePortForward, type LocalSettings } from './settings.js';
import { deleteVersion, listVersionRecords, readVersionRecord, removeHalfMadeVersions, saveVersion, toImageVersion, updateVersionRecord } from './versions.js';


export class LocalProvider implements Provider {
  readonly name = 'local';
  private readonly bases: BaseStore;
  /** One HAProxy per endpoint, reaching each server through a host forward added to its QEMU. */
  readonly endpoints: LocalEndpoints;

  constructor(
    private readonly settings: LocalSettings,
    private readonly ctx: ProviderContext,
  ) {
    this.bases = new BaseStore(settings, ctx.events);
    this.endpoints = new LocalEndpoints(ctx.project, async (machine, targetPort) => ({ host: '127.0.0.1', port: await forwardGuestPort(ctx.project, machine.id, targetPort) }));
  }

  async describe(): Promise<string> {
    const [version, accel] = await Promise.all([
      qemuVersion().catch(() => 'not installed'),
      chooseAccelerator(this.settings.accelerator),
    ]);
    return `local QEMU ${version}, accelerator ${accel.accelerator} (${accel.reason})`;
  }

  async listBaseImages(signal: AbortSignal): Promise<BaseImage[]> {
    throwIfAborted(signal);
    return this.bases.list();
  }

  async listImageVersions(signal: AbortSignal): Promise<ImageVersion[]> {
    throwIfAborted(signal);
    const records = await listVersionRecords(this.ctx.project);
    return records
      .map(toImageVersion)
      .sort((a, b) => a.image.localeCompare(b.image) || b.version.localeCompare(a.version));
  }

  async prepareBase(ref: string, signal: AbortSignal): Promise<SourceImage & { kind: 'base' }> {
    const base = await this.bases.prepare(ref, signal);
    return { kind: 'base', ref, id: base.boot.baseDisk, identity: baseIdentity(base.record) };
  }

  /** The digest of the base's current build; undefined until it is built (nothing is built here). */
  async resolveBase(ref: string, signal: AbortSignal): Promise<string | undefined> {
    throwIfAborted(signal);
    if (!this.bases.refs().includes(ref)) return undefined;
    const ready = await this.bases.ready(ref);
    return ready && baseIdentity(ready.record);
  }

  sizeOf(options: LaunchOptions | undefined): string {
    return `${options?.memory ?? this.settings.memory} MiB, ${options?.cpus ?? this.settings.cpus} vCPU`;
  }

  /** `provisional base update`: a new build of the base from current packages; the old one stays for the versions built on it. */
  async updateBase(ref: string, signal: AbortSignal): Promise<{ previous?: string; current: string; createdAt: string }> {
    const { previous, current } = await this.bases.update(ref, signal);
    return { previous: previous && baseIdentity(previous.record), current: baseIdentity(current.record), createdAt: current.record.createdAt };
  }

  launchMachine(req: LaunchRequest, signal: AbortSignal): Promise<Machine> {
    return launchOne(req, (reqs, s) => this.launchMachines(reqs, s), signal);
  }

  /** Every machine is its own QEMU process: a batch is one create per request, two at a time. */
  launchMachines(reqs: LaunchRequest[], signal: AbortSignal): Promise<Machine[]> {
    return launchBatch<MachineRecord>(
      reqs,
      {
        perCall: 1,
        concurrency: 2,
        shareKey: (req) => req.name,
        create: async ([req], s) => [await this.startMachine(req!, s)],
        // QEMU runs once started; SSH answering is the caller's wait.
        waitReady: async (records) => records.map(toMachine),
        remove: async (records) => {
          for (const record of records) await removeMachine(this.ctx.project, record.id);
        },
      },
      signal,
      this.ctx.events,
    );
  }

  private async startMachine(req: LaunchRequest, signal: AbortSignal): Promise<MachineRecord> {
    throwIfAborted(signal);
    const options = readLaunchOptions(machineOptionsSchema, req, 'local');
    const accel = await chooseAccelerator(this.settings.accelerator);
    if (accel.unusable) {
      throw new UserFacingError(`KVM is unusable here: ${accel.unusable}`, { hint: 'set provider.accelerator to auto or tcg' });
    }
    const ports = (options.ports ?? []).map((spec) => {
      try {
        return parsePortForward(spec);
      } catch (err) {
        throw new UserFacingError(`bad port forward for ${req.name}: ${(err as Error).message}`);
      }
    });
    const disk = await this.resolveSource(req.source, signal);
    const spec: LaunchSpec = {
      project: this.ctx.project,
      name: req.name,
      labels: req.labels,
      source: disk.source,
      backing: disk.backing,
      backingFormat: disk.format,
      boot: disk.boot,
      accelerator: accel.accelerator,
      memoryMiB: options.memory ?? this.settings.memory,
      cpus: options.cpus ?? this.settings.cpus,
      ports,
      authorizedKey: req.authorizedKey,
    };
    const shape = await this.warmShape(req, spec, signal);
    const record = shape ? await this.startWarm(spec, shape, signal) : await launch(spec, signal);
    this.ctx.events.emit({
      type: 'debug',
      message: `machine ${record.name} (${record.id}) runs under ${accel.accelerator}, SSH on 127.0.0.1:${record.ssh.port}, serial log ${join(machineDir(record.project, record.id), 'serial.log')}`,
    });
    return record;
  }

  /**
   * Whether a machine resumes a saved one instead of booting (warm.ts): a builder, from a base that
   * boots its own kernel, under TCG (under KVM a boot takes a few seconds), without port forwards.
   */
  private async warmShape(req: LaunchRequest, spec: LaunchSpec, signal: AbortSignal): Promise<WarmShape | undefined> {
    if (!this.settings['warm-builders'] || spec.accelerator !== 'tcg' || req.labels[LABELS.role] !== 'builder') return undefined;
    if (spec.source.kind !== 'base' || !spec.boot.kernel || spec.ports.length) return undefined;
    return { boot: spec.boot, hardware: hardwareFor(spec.accelerator, true), memoryMiB: spec.memoryMiB, cpus: spec.cpus, qemuVersion: await qemuVersion(signal) };
  }

  /** A builder resumed from the saved machine of its shape, made first by this builder if there is none. */
  private async startWarm(spec: LaunchSpec, shape: WarmShape, signal: AbortSignal): Promise<MachineRecord> {
    const key = warmKey(shape);
    let state = await readWarm(key);
    if (!state) {
      const lock = await lockWarm(key, signal);
      try {
        state = await readWarm(key);
        if (!state) return await this.makeWarm(spec, shape, key, signal);
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
      return await this.adopt(record, state, spec, signal, startedAt);
    } catch (err) {
      if (record) await removeMachine(record.project, record.id).catch(() => undefined);
      if (err instanceof CancelledError || signal.aborted) throw err;
      this.ctx.events.emit({ type: 'warn', message: `${spec.name} did not resume from the saved builder (${(err as Error).message}): booting it instead; the saved builder is made again next time` });
      await forgetWarm(key);
      return launch(spec, signal);
    }
  }

  /**
   * Boot a machine with a key of its own, let it settle, save it as the warm state of `key`, and
   * resume it as the builder. If saving fails, the builder boots as usual.
   */
  private async makeWarm(spec: LaunchSpec, shape: WarmShape, key: string, signal: AbortSignal): Promise<MachineRecord> {
    const keys = generateKeyPair('provisional-warm');
    const warmSpec: LaunchSpec = { ...spec, authorizedKey: keys.publicKey, hostname: WARM_HOSTNAME, warm: {} };
    const record = await launch(warmSpec, signal);
    const dir = machineDir(record.project, record.id);
    try {
      const state = await step(this.ctx.events, 'save-builder', `saving a booted ${spec.boot.baseRef} builder for the next builds to resume (once)`, async () => {
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
      return await this.adopt(record, state, spec, signal, startedAt);
    } catch (err) {
      await removeMachine(record.project, record.id).catch(() => undefined);
      if (err instanceof CancelledError || signal.aborted) throw err;
      this.ctx.events.emit({ type: 'warn', message: `could not save a booted builder to resume later (${(err as Error).message}): booting ${spec.name} as usual` });
      return launch(spec, signal);
    }
  }

  /**
   * Hand a resumed machine over: the request's keys, its own host name, the host's clock (warm.ts
   * adoptCommand). Says (debug) how long the resume took from QEMU's start (`startedAt`) to SSH
   * answering, and the hand-over after it: bench/packer-compare.ts counts the first as the
   * machine's start and the second as the tool's own work.
   */
  private async adopt(record: MachineRecord, state: WarmState, spec: LaunchSpec, signal: AbortSignal, startedAt: number): Promise<MachineRecord> {
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
    this.ctx.events.emit({ type: 'debug', message: `${spec.name} resumed: QEMU start to SSH ${Math.round(answered - startedAt)} ms, hand-over ${handOverMs} ms` });
    return record;
  }

  /** The disk a machine's overlay goes on, and how to boot it. */
  private async resolveSource(
    source: SourceImage,
    signal: AbortSignal,
  ): Promise<{ backing: string; format: string; boot: BootSpec; source: MachineRecord['source'] }> {
    if (source.kind === 'base') {
      const base = await this.bases.prepare(source.ref, signal);
      return { backing: base.boot.baseDisk, format: base.record.format, boot: base.boot, source: { kind: 'base', ref: source.ref } };
    }
    const { image, version } = source.version;
    const record = await readVersionRecord(this.ctx.project, image, version);
    if (!record) throw new UserFacingError(`version ${version} of ${image} does not exist (any more) in the local store`);
    await this.checkBaseUnchanged(record.local.boot, version);
    return {
      backing: record.id,
      format: 'qcow2',
      boot: record.local.boot,
      source: { kind: 'version', image, version, disk: record.id },
    };
  }

  /** A version's bottom layer is the base it was built on; a base rebuilt since would corrupt it. */
  private async checkBaseUnchanged(boot: BootSpec, version: string): Promise<void> {
    const base = await readBaseRecord(dirname(boot.baseDisk));
    if (base?.buildId === boot.baseBuildId) return;
    throw new UserFacingError(
      `version ${version} was built on a ${boot.baseRef} base image that is ${base ? 'no longer the one in' : 'missing from'} the cache (${dirname(boot.baseDisk)})`,
      { hint: 'rebuild the images built on it: provisional image update --force' },
    );
  }

  async stopMachine(machine: Machine, signal: AbortSignal): Promise<void> {
    const record = await readMachine(this.ctx.project, machine.id);
    if (!record) return;
    if (await isRunning(record)) {
      // The pipeline has asked the guest to power off over SSH; give it `stop-timeout`, then press
      // its (ACPI) power button, and only then kill it: a killed machine may lose its last writes.
      const graceMs = this.settings['stop-timeout'] * 1000;
      let stopped = await waitForExit(record, graceMs, signal);
      if (!stopped) {
        this.ctx.events.emit({ type: 'warn', message: `${record.name} did not power off within ${graceMs / 1000} s: pressing its power button` });
        await qmpCommand(record.qmp, 'system_powerdown').catch((err: Error) =>
          this.ctx.events.emit({ type: 'warn', message: `could not press the power button of ${record.name}: ${err.message}` }),
        );
        stopped = await waitForExit(record, graceMs, signal);
      }
      if (!stopped) {
        this.ctx.events.emit({ type: 'warn', message: `${record.name} ignored its power button: killing it (its disk may miss the last writes)` });
        await killMachineProcess(record.pid!, machineDir(record.project, record.id));
      }
    }
    record.stoppedAt = new Date().toISOString();
    await writeMachine(record);
  }

  async snapshotMachine(machine: Machine, meta: ImageVersionMetadata, signal: AbortSignal): Promise<ImageVersion> {
    const record = await readMachine(this.ctx.project, machine.id);
    if (!record) throw new UserFacingError(`machine ${machine.name} does not exist (any more)`);
    if (await isRunning(record)) throw new UserFacingError(`machine ${machine.name} is still running: stop it before saving it as a version`);
    const overlay = join(machineDir(record.project, record.id), OVERLAY);
    // A resumed builder's disk is on the saved machine's: a version is on the base alone.
    if (record.rebaseOnto) {
      await rebaseOverlay(overlay, record.rebaseOnto.backing, record.rebaseOnto.format, signal);
      record.backing = record.rebaseOnto.backing;
      record.rebaseOnto = undefined;
      await writeMachine(record);
    }
    return saveVersion({
      project: this.ctx.project,
      meta,
      overlay,
      backing: record.backing,
      boot: record.boot,
      signal,
    });
  }

  async destroyMachine(machine: Machine, _signal: AbortSignal): Promise<void> {
    // Not cut short by the signal: this is what cleanup runs, and half a removal helps nobody.
    await removeMachine(this.ctx.project, machine.id);
  }

  async updateVersionMetadata(version: ImageVersion, patch: VersionMetadataPatch, signal: AbortSignal): Promise<ImageVersion> {
    throwIfAborted(signal);
    return updateVersionRecord(this.ctx.project, version, patch);
  }

  async deleteImageVersion(version: ImageVersion, signal: AbortSignal): Promise<void> {
    throwIfAborted(signal);
    await deleteVersion(this.ctx.project, version, async (disk) => {
      const machines = await listMachines(this.ctx.project);
      return machines.filter((m) => m.record.backing === disk).map((m) => m.record.name);
    });
  }

  /** Machines are found by listServers; what else a crashed run can leave is a half-made version. */
  async removeRunResources(_runId: string, opts: { dryRun: boolean; signal: AbortSignal; snapshots?: string[] }): Promise<string[]> {
    throwIfAborted(opts.signal);
    return removeHalfMadeVersions(this.ctx.project, opts.snapshots ?? [], opts.dryRun);
  }

  async listServers(filter: Partial<Record<keyof typeof LABELS, string>>, signal: AbortSignal): Promise<Server[]> {
    throwIfAborted(signal);
    const wanted = Object.entries(filter).map(([key, value]) => [LABELS[key as keyof typeof LABELS], value] as const);
    const machines = await listMachines(this.ctx.project);
    return machines
      .filter(({ record }) => wanted.every(([label, value]) => record.labels[label] === value))
      .map(({ record, state }) => ({ ...toMachine(record), state, address: '127.0.0.1' }));
  }
}

function toMachine(record: MachineRecord): Machine {
  return { id: record.id, name: record.name, ssh: { ...record.ssh }, labels: { ...record.labels } };
}

/** Polls until the machine's process is gone; false when `ms` passed first. */
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

async function waitForExit(record: MachineRecord, ms: number, signal: AbortSignal): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    if (!(await isRunning(record))) return true;
    if (signal.aborted) throw new CancelledError();
    // Often: every poll interval is waited in full by every build (and a check is cheap, /proc).
    await sleep(50, signal);
  }
  return !(await isRunning(record));
}
