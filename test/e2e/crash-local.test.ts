/**
 * A build killed with SIGKILL cannot clean up after itself: the next command must notice, and
 * `provisional cleanup` must remove what it left (the builder VM and its overlay), on the local
 * provider with real QEMU.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, startCli, qemuProcessesMentioning } from '../helpers/cli.js';
import { tempProject, type TempProject } from '../helpers/project.js';

let project: TempProject;
let dataDir: string;
let env: NodeJS.ProcessEnv;
const cli = (...args: string[]) => runCli(args, { cwd: project.dir, env });

describe('SIGKILL during a build, then cleanup (local provider)', { timeout: 20 * 60_000 }, () => {
  before(() => {
    project = tempProject('provisional-crash-');
    dataDir = mkdtempSync(join(tmpdir(), 'provisional-crash-data-'));
    env = { PROVISIONAL_DATA_DIR: dataDir, PROVISIONAL_STATE_DIR: join(dataDir, 'state') };
    project.writeConfig('images:\n  base:\n    base-image: debian-12\n');
    project.write('config/provisional/base/scripts/10-slow.sh', '#!/bin/sh\necho started\nsleep 600\n', 0o755);
  });
  after(() => {
    for (const pid of qemuProcessesMentioning(dataDir)) process.kill(pid, 'SIGKILL');
    project.remove();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('the next command says a run did not finish, and cleanup removes its builder', async () => {
    const run = startCli(['image', 'create', 'base'], { cwd: project.dir, env });
    await run.waitFor(/10-slow\.sh \| started/);
    run.child.kill('SIGKILL');
    await run.done;
    assert.equal(qemuProcessesMentioning(dataDir).length, 1, 'the killed build left its builder running');

    const list = await cli('image', 'list');
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stderr, /`provisional image create base` \(pid \d+, .*\) did not finish and may have left provisional-build-base-[0-9a-f]+; run `provisional cleanup`/);

    const dry = await cli('cleanup', '--dry-run');
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /would remove:\n {2}provisional-build-base-[0-9a-f]+ \(builder of run [0-9a-f]+, which did not finish\)/);
    assert.equal(qemuProcessesMentioning(dataDir).length, 1, '--dry-run removed something');

    const refused = await cli('cleanup');
    assert.equal(refused.code, 2, 'cleanup without a terminal must ask for --yes');

    const r = await cli('cleanup', '--yes');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /removed 1: provisional-build-base-/);
    assert.deepEqual(qemuProcessesMentioning(dataDir), []);
    const machines = join(dataDir, 'local', project.dir.split('/').pop()!.toLowerCase().replace(/[^a-z0-9-]+/g, '-'), 'machines');
    assert.deepEqual(existsSync(machines) ? readdirSync(machines) : [], []);

    const again = await cli('image', 'list');
    assert.doesNotMatch(again.stderr, /did not finish/);
    const nothing = await cli('cleanup', '--yes');
    assert.match(nothing.stdout, /nothing to clean up/);
  });
});
