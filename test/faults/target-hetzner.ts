/** The fault matrix's view of the Hetzner emulator: servers, keys, snapshots and machines. */
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHetznerEmulator, type HetznerEmulator } from '../../src/emulators/hetzner/server.js';
import type { TempProject } from '../helpers/project.js';
import { faultProject } from './project.js';
import type { FaultTarget, Inventory } from './target.js';

export class HetznerTarget implements FaultTarget {
  readonly provider = 'hetzner';
  readonly slow = false;
  readonly secrets: string[];

  private constructor(
    readonly emulator: HetznerEmulator,
    readonly project: TempProject,
    readonly stateDir: string,
    readonly env: NodeJS.ProcessEnv,
    canary: string,
  ) {
    this.secrets = [canary, emulator.token];
  }

  static async open(): Promise<HetznerTarget> {
    const canary = `canary-${randomBytes(12).toString('hex')}`;
    const emulator = await startHetznerEmulator({
      token: randomBytes(32).toString('base64url').slice(0, 64),
      delays: { create: 300, shutdown: 200, poweroff: 200, poweron: 300, create_image: 1500, delete: 200 },
      onError: () => undefined,
    });
    const project = faultProject({
      provider: `  name: hetzner\n  ssh-port: ${emulator.sshPort}\n  create-timeout: 10\n  shutdown-timeout: 10`,
      baseImage: 'debian-12',
    });
    const stateDir = mkdtempSync(join(tmpdir(), 'provisional-faults-hetzner-state-'));
    const env = { HCLOUD_TOKEN: emulator.token, HCLOUD_ENDPOINT: emulator.endpoint, PROVISIONAL_STATE_DIR: stateDir, CANARY_TOKEN: canary };
    return new HetznerTarget(emulator, project, stateDir, env, canary);
  }

  async inventory(): Promise<Inventory> {
    const cloud = this.emulator.cloud;
    const servers = cloud.liveServers();
    const machines = servers.map((s) => ({
      id: String(s.id),
      name: s.name,
      env: s.labels['provisional-env'],
      version: s.labels['provisional-version'],
      running: s.status === 'running',
    }));
    const temporaries: string[] = [];
    for (const key of cloud.keys.values()) if (key.name.startsWith('provisional-build-')) temporaries.push(`build key ${key.name}`);
    for (const image of cloud.images.values()) {
      if (image.type !== 'snapshot') continue;
      if (!image.description.startsWith('provisional:')) temporaries.push(`snapshot ${image.id} without metadata`);
      else if (image.status !== 'available') temporaries.push(`snapshot ${image.labels['provisional-version']} ${image.status}`);
    }
    const backing = new Set(servers.map((s) => s.machineId));
    for (const m of this.emulator.pool.list()) if (!backing.has(m.id)) temporaries.push(`machine ${m.name} (${m.id}) of no server`);
    return { machines, temporaries };
  }

  async busy(): Promise<boolean> {
    const cloud = this.emulator.cloud;
    // A create action of a server deleted while it booted stays running for ever (the emulator drops it).
    return [...cloud.actions.values()].some((a) => a.status === 'running' && (a.command !== 'create_server' && a.command !== 'start_server' || cloud.servers.has(a.resources[0]!.id)));
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
