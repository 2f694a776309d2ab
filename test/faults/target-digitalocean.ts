/** The fault matrix's view of the DigitalOcean emulator: droplets, keys, snapshots and machines. */
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDigitalOceanEmulator, type DigitalOceanEmulator } from '../../src/emulators/digitalocean/server.js';
import type { TempProject } from '../helpers/project.js';
import { faultProject } from './project.js';
import type { FaultTarget, Inventory } from './target.js';

export class DigitalOceanTarget implements FaultTarget {
  readonly provider = 'digitalocean';
  readonly slow = false;
  readonly secrets: string[];

  private constructor(
    readonly emulator: DigitalOceanEmulator,
    readonly project: TempProject,
    readonly stateDir: string,
    readonly env: NodeJS.ProcessEnv,
    canary: string,
  ) {
    this.secrets = [canary, emulator.token];
  }

  static async open(): Promise<DigitalOceanTarget> {
    const canary = `canary-${randomBytes(12).toString('hex')}`;
    const emulator = await startDigitalOceanEmulator({
      token: `dop_v1_${randomBytes(32).toString('hex')}`,
      // destroy: the builder's removal takes a moment, as on the real API, so that a signal can land in it.
      delays: { create: 300, shutdown: 200, power_off: 200, power_on: 300, snapshot: 1500, transfer: 800, destroy: 800 },
      onError: () => undefined,
    });
    const project = faultProject({
      provider: `  name: digitalocean\n  api-url: \${DO_API_URL}\n  ssh-port: ${emulator.sshPort}\n  create-timeout: 10\n  shutdown-timeout: 10`,
      baseImage: 'debian-12-x64',
      appExtra: '    regions: [nyc3, sfo3]\n',
    });
    const stateDir = mkdtempSync(join(tmpdir(), 'provisional-faults-do-state-'));
    const env = { DIGITALOCEAN_TOKEN: emulator.token, DO_API_URL: emulator.url, PROVISIONAL_STATE_DIR: stateDir, CANARY_TOKEN: canary };
    return new DigitalOceanTarget(emulator, project, stateDir, env, canary);
  }

  async inventory(): Promise<Inventory> {
    const cloud = this.emulator.cloud;
    const droplets = cloud.liveDroplets();
    const machines = droplets.map((d) => {
      const tag = (key: string) => d.tags.find((t) => t.startsWith(`${key}:`))?.slice(key.length + 1);
      return { id: String(d.id), name: d.name, env: tag('provisional-env'), version: tag('provisional-version'), running: d.status === 'active' };
    });
    const temporaries: string[] = [];
    for (const key of cloud.keys.values()) if (key.name.startsWith('provisional-build-')) temporaries.push(`build key ${key.name}`);
    for (const image of cloud.images.values()) {
      if (image.type !== 'snapshot') continue;
      if (!image.description.startsWith('provisional:')) temporaries.push(`snapshot ${image.name} without metadata`);
      else if (image.status !== 'available') temporaries.push(`snapshot ${image.name} ${image.status}`);
    }
    const backing = new Set(droplets.map((d) => d.machineId).filter(Boolean));
    for (const m of this.emulator.pool.list()) if (!backing.has(m.id)) temporaries.push(`machine ${m.name} (${m.id}) of no droplet`);
    return { machines, temporaries };
  }

  async busy(): Promise<boolean> {
    const cloud = this.emulator.cloud;
    // A create action of a droplet deleted while it booted stays in progress for ever (the emulator drops it).
    return [...cloud.actions.values()].some((a) => a.status === 'in-progress' && (a.type !== 'create' || cloud.droplets.has(a.resourceId)));
  }

  faultsFired(): number {
    const f = this.emulator.faults.fired;
    return f.http + f.actions + f.noAddress + f.sshDrop;
  }

  clearFaults(): void {
    this.emulator.faults.clear();
  }

  async close(): Promise<void> {
    await this.emulator.close();
    this.project.remove();
    rmSync(this.stateDir, { recursive: true, force: true });
  }
}
