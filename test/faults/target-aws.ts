/** The fault matrix's view of the EC2 emulator: instances, key pairs, security groups, AMIs, EBS snapshots. */
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEc2Emulator, type Ec2Emulator } from '../../src/emulators/aws/server.js';
import type { Ec2Faults } from '../../src/emulators/aws/cloud.js';
import type { MachinePool } from '../../src/emulators/machines/pool.js';
import type { TempProject } from '../helpers/project.js';
import { faultProject } from './project.js';
import type { FaultTarget, Inventory } from './target.js';
import { awsCliEnv } from '../helpers/aws-env.js';

const REGION = 'us-east-1';

export class AwsTarget implements FaultTarget {
  readonly provider = 'aws';
  readonly slow = false;
  readonly secrets: string[];
  /** Fault answers counted by the test itself (SSH cuts), besides the emulator's error answers. */
  private extraFired = 0;

  private constructor(
    readonly emulator: Ec2Emulator,
    readonly project: TempProject,
    readonly stateDir: string,
    readonly env: NodeJS.ProcessEnv,
    canary: string,
  ) {
    this.secrets = [canary, emulator.secretAccessKey];
  }

  static async open(): Promise<AwsTarget> {
    const canary = `canary-${randomBytes(12).toString('hex')}`;
    const emulator = await startEc2Emulator({
      accessKeyId: 'AKIDFAULTMATRIX',
      secretAccessKey: `secret-${randomBytes(16).toString('hex')}`,
      delays: { instancePendingMs: 300, instanceStoppingMs: 200, instanceShuttingDownMs: 200, imagePendingMs: 1500, terminatedRetentionMs: 60_000 },
    });
    const project = faultProject({
      provider: '  name: aws\n  region: us-east-1\n  endpoint: ${EC2_URL}\n  ssh-user: root\n  create-timeout: 10',
      baseImage: '136693071363/debian-12-amd64-*',
    });
    const stateDir = mkdtempSync(join(tmpdir(), 'provisional-faults-aws-state-'));
    const env = { ...awsCliEnv(emulator, stateDir), CANARY_TOKEN: canary };
    return new AwsTarget(emulator, project, stateDir, env, canary);
  }

  private get region() {
    return this.emulator.cloud.region(REGION);
  }

  private get pool(): MachinePool {
    return (this.emulator.cloud.backend as unknown as { pool: MachinePool }).pool;
  }

  async inventory(): Promise<Inventory> {
    const region = this.region;
    const live = [...region.instances.values()].filter((i) => i.state !== 'terminated');
    const machines = live.map((i) => ({
      id: i.id,
      name: i.tags.get('Name') ?? i.id,
      env: i.tags.get('provisional-env'),
      version: i.tags.get('provisional-version'),
      running: i.state === 'running',
    }));
    const temporaries: string[] = [];
    for (const key of region.keyPairs.values()) if (key.name.startsWith('provisional-build-')) temporaries.push(`key pair ${key.name}`);
    for (const group of region.groups.values()) if (group.name.startsWith('provisional-build-')) temporaries.push(`security group ${group.name}`);
    const used = new Set<string>();
    for (const image of region.images.values()) {
      if (image.ownerId === '136693071363') continue;
      image.snapshotIds.forEach((s) => used.add(s));
      if (image.state !== 'available') temporaries.push(`AMI ${image.name} ${image.state}`);
      else if (!image.tags.get('provisional-version')) temporaries.push(`AMI ${image.name} without metadata`);
    }
    for (const snapshot of region.snapshots.values()) {
      if (!snapshot.deleted && !used.has(snapshot.id)) temporaries.push(`EBS snapshot ${snapshot.id} of no AMI (${snapshot.state})`);
    }
    const backing = new Set(live.map((i) => i.machine).filter(Boolean));
    for (const m of this.pool.list()) if (!backing.has(m.id)) temporaries.push(`machine ${m.name} (${m.id}) of no instance`);
    return { machines, temporaries };
  }

  /** Switch faults on (see Ec2Faults); failed images and missing addresses count as fired once used up. */
  arm(faults: Partial<Ec2Faults>): void {
    this.settle();
    Object.assign(this.emulator.faults, faults);
    this.armed = { failImages: faults.failImages ?? 0, noAddress: faults.noAddress ?? 0 };
  }

  private armed = { failImages: 0, noAddress: 0 };

  private settle(): void {
    const f = this.emulator.faults;
    this.extraFired += this.armed.failImages - f.failImages + this.armed.noAddress - f.noAddress;
    this.armed = { failImages: f.failImages, noAddress: f.noAddress };
  }

  async busy(): Promise<boolean> {
    const region = this.region;
    return (
      [...region.instances.values()].some((i) => ['pending', 'stopping', 'shutting-down'].includes(i.state)) ||
      [...region.images.values()].some((i) => i.state === 'pending') ||
      [...region.snapshots.values()].some((s) => !s.deleted && s.state === 'pending')
    );
  }

  faultsFired(): number {
    this.settle();
    return this.emulator.requests.count(undefined, 'RequestLimitExceeded') + this.emulator.requests.count(undefined, 'InternalError') + this.extraFired;
  }

  async dropSsh(name: string): Promise<number> {
    const instance = [...this.region.instances.values()].find((i) => i.state === 'running' && (i.tags.get('Name') ?? '').startsWith(name));
    if (!instance?.machine) throw new Error(`no running instance named ${name}*`);
    const dropped = await this.pool.dropSsh(instance.machine);
    this.extraFired += dropped > 0 ? 1 : 0;
    return dropped;
  }

  clearFaults(): void {
    this.settle();
    this.armed = { failImages: 0, noAddress: 0 };
    const f = this.emulator.faults;
    f.throttle = 0;
    f.internalError = 0;
    f.failImages = 0;
    f.noAddress = 0;
    f.actions = undefined;
    f.rateLimit = undefined;
  }

  async close(): Promise<void> {
    await this.emulator.close();
    this.project.remove();
    rmSync(this.stateDir, { recursive: true, force: true });
  }
}
