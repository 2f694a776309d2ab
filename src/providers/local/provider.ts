/**
 * The local provider, assembled: bases (bases.ts), machines (machines.ts), versions (versions.ts),
 * warm builders (warm-launch.ts, warm.ts).
 */
import { dirname, join } from 'node:path';
import { CancelledError, UserFacingError, throwIfAborted } from '../../core/errors.js';
import { sleep } from '../../core/wait.js';
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
import { chooseAccelerator } from './accelerator.js';
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
  writeMachine,
  type LaunchSpec,
  type MachineRecord,
} from './machines.js';
import { launchWarm, warmShape } from './warm-launch.js';
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
    const shape = this.settings['warm-builders'] ? await warmShape(req, spec, signal) : undefined;
    const record = shape ? await launchWarm(spec, shape, this.ctx.events, signal) : await launch(spec, signal);
    this.ctx.events.emit({
      type: 'debug',
      message: `machine ${record.name} (${record.id}) runs under ${accel.accelerator}, SSH on 127.0.0.1:${record.ssh.port}, serial log ${join(machineDir(record.project, record.id), 'serial.log')}`,
    });
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
