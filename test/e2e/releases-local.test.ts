/**
 * Releases on local QEMU: the shared flow (releases-flow.ts) with one server per environment and
 * only the boots the flow needs (two builds, five servers); the breadth (failing deploy scripts,
 * rollback with promotion, refusals) runs through the emulators and the unit tests.
 */
import { describe, before, after } from 'node:test';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { qemuProcessesMentioning, runCli } from '../helpers/cli.js';
import { tempProject, type TempProject } from '../helpers/project.js';
import { releaseFlow } from './releases-flow.js';

let project: TempProject;
let dataDir: string;
let env: NodeJS.ProcessEnv;
const machinesDir = () => join(dataDir, 'local', 'releases', 'machines');

describe('releases end to end on the local provider (QEMU)', { timeout: 45 * 60_000 }, () => {
  before(() => {
    project = tempProject('provisional-releases-local-');
    dataDir = mkdtempSync(join(tmpdir(), 'provisional-releases-data-'));
    env = { PROVISIONAL_DATA_DIR: dataDir, PROVISIONAL_STATE_DIR: join(dataDir, 'state') };
  });
  after(async () => {
    for (const e of ['staging', 'production']) await runCli(['destroy', e, '--yes'], { cwd: project.dir, env: { ...env, CANARY_TOKEN: 'x', DB_PASSWORD: 'x' } }).catch(() => undefined);
    for (const pid of qemuProcessesMentioning(dataDir)) process.kill(pid, 'SIGKILL');
    project.remove();
    rmSync(dataDir, { recursive: true, force: true });
  });

  releaseFlow({
    project: () => project,
    env: () => env,
    // TCG, as the suite's machine has: on this host a KVM that passes the provider's probe has been
    // seen to hang full guests, and this test is about releases, not accelerators.
    providerYaml: () => '  name: local\n  accelerator: tcg',
    baseImage: 'debian-12',
    labelsText: async () => readdirSync(machinesDir()).map((id) => readFileSync(join(machinesDir(), id, 'machine.json'), 'utf8')).join('\n'),
    // A machine is its folder (and a QEMU process while it runs): both must go with it.
    machines: async () => [
      ...(existsSync(machinesDir()) ? readdirSync(machinesDir()).map((id) => (JSON.parse(readFileSync(join(machinesDir(), id, 'machine.json'), 'utf8')) as { name: string }).name) : []),
      ...qemuProcessesMentioning(dataDir).map((pid) => `qemu pid ${pid}`),
    ],
    localDirs: () => [join(dataDir, 'state'), machinesDir()],
    breadth: false,
  });
});
