/**
 * The fault matrix's view of the local provider: machine folders, QEMU processes and version
 * files under a data directory of its own (the debian-12 base cache is shared).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { qemuProcessesMentioning } from '../helpers/cli.js';
import type { TempProject } from '../helpers/project.js';
import { faultProject } from './project.js';
import type { FaultTarget, Inventory, InventoryMachine } from './target.js';

function list(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

export class LocalTarget implements FaultTarget {
  readonly provider = 'local';
  readonly slow = true;
  readonly secrets: string[];

  private constructor(
    readonly project: TempProject,
    readonly dataDir: string,
    readonly stateDir: string,
    readonly env: NodeJS.ProcessEnv,
    canary: string,
  ) {
    this.secrets = [canary];
  }

  static async open(): Promise<LocalTarget> {
    const canary = `canary-${randomBytes(12).toString('hex')}`;
    const project = faultProject({ provider: '  name: local\n  memory: 512\n  cpus: 1\n  stop-timeout: 20', baseImage: 'debian-12' });
    const dataDir = mkdtempSync(join(tmpdir(), 'provisional-faults-local-'));
    const stateDir = join(dataDir, 'state');
    const env = { PROVISIONAL_DATA_DIR: dataDir, PROVISIONAL_STATE_DIR: stateDir, CANARY_TOKEN: canary };
    return new LocalTarget(project, dataDir, stateDir, env, canary);
  }

  private get projectDir(): string {
    return join(this.dataDir, 'local', 'faults');
  }

  async inventory(): Promise<Inventory> {
    const machines: InventoryMachine[] = [];
    const temporaries: string[] = [];
    const machinesDir = join(this.projectDir, 'machines');
    const dirs = list(machinesDir);
    for (const id of dirs) {
      const file = join(machinesDir, id, 'machine.json');
      if (!existsSync(file)) {
        temporaries.push(`machine folder ${id} without machine.json`);
        continue;
      }
      const record = JSON.parse(readFileSync(file, 'utf8')) as { id: string; name: string; pid?: number; labels: Record<string, string> };
      const running = !!record.pid && cmdline(record.pid).includes(`${join(machinesDir, id)}/`);
      machines.push({ id: record.id, name: record.name, env: record.labels['provisional-env'], version: record.labels['provisional-version'], running });
    }
    for (const pid of qemuProcessesMentioning(this.dataDir)) {
      const line = cmdline(pid);
      if (!dirs.some((id) => line.includes(`${join(machinesDir, id)}/`))) temporaries.push(`QEMU process ${pid} of no machine`);
    }
    const imagesDir = join(this.projectDir, 'images');
    for (const image of list(imagesDir)) {
      const files = list(join(imagesDir, image));
      for (const f of files) {
        if (f.endsWith('.qcow2') && !files.includes(f.replace(/\.qcow2$/, '.json'))) temporaries.push(`half-saved version ${image}/${f}`);
        else if (!f.endsWith('.qcow2') && !f.endsWith('.json')) temporaries.push(`stray file ${image}/${f}`);
      }
    }
    return { machines, temporaries };
  }

  async busy(): Promise<boolean> {
    return false;
  }

  faultsFired(): number {
    return 0;
  }

  clearFaults(): void {}

  async close(): Promise<void> {
    for (const pid of qemuProcessesMentioning(this.dataDir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    this.project.remove();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
