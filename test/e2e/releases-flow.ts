/**
 * Releases end to end with the real CLI, the same flow on every provider: staging on v1; v2 built;
 * production (`from: staging`) still gets v1; staging moves to v2, production follows; a changed
 * value replaces a server ("config changed"), `--pin`; the env file's content and mode on the
 * server, read back the same by systemd (EnvironmentFile=) and by a shell (`set -a; . file`); a
 * deploy script's effect; a canary secret in no output, label or local file. `breadth` adds what
 * costs a server boot each (a failing deploy script, rollback with promotion): on for the emulators
 * (containers), off for QEMU. Image tests gate v2 (a test server boots from it; the test's output
 * streams); a failing test fails a build and leaves nothing; revoking steers deploys and refuses
 * --pin, --to and promotion; restore lifts it.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, serverRows, versionNames, type CliResult } from '../helpers/cli.js';
import type { TempProject } from '../helpers/project.js';

export const CANARY = 'canary-Zq7xK2pW9mLr4';
const DB_PASSWORD = 'db-pass-Hv3nT8sQ';

/** Values that need quoting: spaces, both quotes, $, backticks, backslashes, newlines, a tab. */
export const AWKWARD: Record<string, string> = {
  SPACES: '  two  spaces  ',
  QUOTES: `it's "quoted"`,
  DOLLARS: '$HOME ${HOME} $(id -u) `id -u`',
  BACKSLASHES: 'C:\\dir\\n \\$ \\\\ end\\',
  NEWLINES: 'line one\nline two\n\nline four',
  TAB: 'a\tb',
  EMPTY: '',
};

export interface ReleaseTarget {
  project: () => TempProject;
  /** Environment of every CLI run (credentials, state dir). */
  env: () => NodeJS.ProcessEnv;
  /** The `provider:` block's lines, indented under `provider:`. */
  providerYaml: () => string;
  baseImage: string;
  /** Every label/tag the provider holds for servers, as text (for the canary). */
  labelsText: () => Promise<string>;
  /** Names of every machine the provider runs for the project (servers, builders, test servers). */
  machines: () => Promise<string[]>;
  /** Local directories whose files must not hold the canary (state: keys, journals, logs). */
  localDirs: () => string[];
  breadth: boolean;
}

const yamlString = (s: string) => JSON.stringify(s);

function configYaml(t: ReleaseTarget, production: { greeting: string; fail?: boolean }): string {
  // `$${` is the config's literal `${` (it interpolates `${VAR}` itself).
  const awkward = Object.entries(AWKWARD).map(([k, v]) => `        ${k}: ${yamlString(v.replaceAll('${', () => '$${'))}\n`).join('');
  return `project: releases
provider:
${t.providerYaml()}
images:
  app:
    base-image: ${yamlString(t.baseImage)}
deployments:
  staging:
    app:
      servers: 1
      health-check: { command: "test -s /var/lib/app/greeting", timeout: 60 }
      env:
        GREETING: staging
        API_TOKEN: \${CANARY_TOKEN}
        DATABASE_URL: postgres://app:\${DB_PASSWORD}@db/app
${awkward}  production:
    app:
      servers: 1
      from: staging
      health-check: { command: "test -s /var/lib/app/greeting", timeout: 60 }
      env:
        GREETING: ${yamlString(production.greeting)}
        API_TOKEN: \${CANARY_TOKEN}
${production.fail ? '        FAIL_DEPLOY: "yes"\n' : ''}`;
}

const DEPLOY_SCRIPT = `#!/bin/sh
set -eu
mkdir -p /var/lib/app
printf '%s\\n' "$GREETING" > /var/lib/app/greeting
echo "configured with greeting $GREETING and token $API_TOKEN"
if [ -n "\${FAIL_DEPLOY:-}" ]; then echo "failing on purpose" >&2; exit 3; fi
`;

const buildScript = (edition: string) => `#!/bin/sh\nset -eu\necho ${edition} > /etc/app-edition\n`;

/** An image test: runs as root on a server booted from the new version. */
const EDITION_TEST = `#!/bin/sh
set -eu
test "$(id -u)" = 0
echo "testing $PROVISIONAL_VERSION: edition $(cat /etc/app-edition)"
`;
const FAILING_TEST = `#!/bin/sh
echo "checking the edition of $PROVISIONAL_VERSION"
echo "edition $(cat /etc/app-edition) is not what we ship" >&2
exit 4
`;

/** Prints NAME=hex(value) for each name, so that newlines and quotes survive the trip. */
const printValues = (names: string[]) => `for n in ${names.join(' ')}; do printf '%s=' "$n"; eval "printf '%s' \\"\\\${$n}\\"" | od -An -v -tx1 | tr -d ' \\n'; echo; done`;
const hex = (s: string) => Buffer.from(s).toString('hex');

export function releaseFlow(t: ReleaseTarget): void {
  const outputs: CliResult[] = [];
  const cli = async (...args: string[]) => {
    const r = await runCli(args, { cwd: t.project().dir, env: { ...t.env(), CANARY_TOKEN: CANARY, DB_PASSWORD } });
    outputs.push(r);
    return r;
  };
  const ok = async (...args: string[]) => {
    const r = await cli(...args);
    assert.equal(r.code, 0, `provisional ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
    return r;
  };
  const servers = (env: string) => serverRows(env, { cwd: t.project().dir, env: { ...t.env(), CANARY_TOKEN: CANARY, DB_PASSWORD } });
  const versions = () => versionNames('app', { cwd: t.project().dir, env: { ...t.env(), CANARY_TOKEN: CANARY, DB_PASSWORD } });
  /** Runs a shell command as root on a server, whatever user SSH logs in as. */
  const onServer = async (server: string, command: string) =>
    (await ok('ssh', server, '--', `if [ "$(id -u)" = 0 ]; then sh -c ${shq(command)}; else sudo -n sh -c ${shq(command)}; fi`)).stdout;
  const only = async (env: string) => {
    const list = await servers(env);
    assert.equal(list.length, 1, JSON.stringify(list));
    assert.equal(list[0]!.state, 'running');
    return list[0]!;
  };
  let v1 = '';
  let v2 = '';

  it('staging runs v1 with its runtime config: the env file (0600 root) reads the same in systemd and a shell; the deploy script ran before the health check', async () => {
    const p = t.project();
    p.writeConfig(configYaml(t, { greeting: 'production one' }));
    p.write('config/provisional/app/scripts/10-app.sh', buildScript('v1'), 0o755);
    p.write('config/provisional/app/deploy/10-configure.sh', DEPLOY_SCRIPT, 0o755);
    await ok('validate');
    await ok('image', 'update');
    [v1] = await versions();
    const deploy = await ok('deploy', 'staging');
    assert.match(deploy.stderr + deploy.stdout, /app: app-\d{14} \(latest\)/);
    assert.match(deploy.stderr, /deploy\/10-configure\.sh \| configured with greeting staging and token \[redacted\]/);
    const staging = await only('staging');
    assert.equal(staging.version, v1);
    assert.equal((await onServer(staging.name, 'stat -c "%a %U %G" /etc/provisional/env')).trim(), '600 root root');
    assert.equal((await onServer(staging.name, 'cat /var/lib/app/greeting')).trim(), 'staging');
    assert.equal((await onServer(staging.name, 'cat /etc/app-edition')).trim(), 'v1');
    const names = ['GREETING', ...Object.keys(AWKWARD), 'API_TOKEN', 'DATABASE_URL'];
    const expected = [
      `GREETING=${hex('staging')}`,
      ...Object.entries(AWKWARD).map(([k, v]) => `${k}=${hex(v)}`),
      `API_TOKEN=${hex(CANARY)}`,
      `DATABASE_URL=${hex(`postgres://app:${DB_PASSWORD}@db/app`)}`,
    ].join('\n');
    const byShell = await onServer(staging.name, `set -a; . /etc/provisional/env; set +a; ${printValues(names)}`);
    assert.equal(byShell.trim(), expected, 'a POSIX shell reads other values');
    // A transient oneshot unit with EnvironmentFile= (systemd-run's --wait/--pipe need D-Bus, which minimal images lack).
    const bySystemd = await onServer(
      staging.name,
      `printf '%s\\n' ${shq(printValues(names))} > /run/envcheck.sh && systemd-run --quiet --unit=provisional-envcheck --collect -p Type=oneshot -p EnvironmentFile=/etc/provisional/env -p StandardOutput=file:/run/envcheck.out /bin/sh /run/envcheck.sh && cat /run/envcheck.out`,
    );
    assert.equal(bySystemd.trim(), expected, "systemd's EnvironmentFile= reads other values");
  });

  it('v2 built and gated by its image test (a test server from v2, output streamed, gone after); production (from: staging) still gets v1, and says why', async () => {
    t.project().write('config/provisional/app/scripts/10-app.sh', buildScript('v2'), 0o755);
    t.project().write('config/provisional/app/tests/10-edition.sh', EDITION_TEST, 0o755);
    const machinesBefore = (await t.machines()).sort();
    const built = await ok('image', 'update');
    [v2] = await versions();
    assert.notEqual(v2, v1);
    assert.match(built.stderr, new RegExp(`launching a test server from ${v2}`));
    assert.match(built.stderr, new RegExp(`tests/10-edition\\.sh \\| testing ${v2}: edition v2`), 'the test ran on a server from v2, its output streamed');
    assert.match(built.stderr, new RegExp(`${v2} passed its 1 test`));
    assert.deepEqual((await t.machines()).sort(), machinesBefore, 'the test server is gone');
    const listed = JSON.parse((await ok('image', 'list', '--json')).stdout).images[0].versions.find((v: { version: string }) => v.version === v2);
    assert.equal(listed.testing, undefined, 'the mark is lifted once the test passed');
    assert.equal(listed.status, 'available');
    const plan = await ok('deploy', 'production', '--plan');
    assert.match(plan.stdout, new RegExp(`app: ${v1} \\(from staging\\)`));
    assert.match(plan.stdout, /\+ app1\.production/);
    const json = JSON.parse((await ok('deploy', 'production', '--plan', '--json')).stdout.trim().split('\n').pop()!);
    assert.deepEqual([json.images[0].target, json.images[0].reason], [v1, 'from staging']);
    await ok('deploy', 'production');
    const production = await only('production');
    assert.equal(production.version, v1);
    assert.equal((await onServer(production.name, 'cat /etc/app-edition')).trim(), 'v1');
    assert.equal((await onServer(production.name, 'cat /var/lib/app/greeting')).trim(), 'production one');
  });

  it('staging moves to v2 (latest); then production follows', async () => {
    await ok('deploy', 'staging');
    assert.equal((await only('staging')).version, v2);
    const before = await only('production');
    const r = await ok('deploy', 'production', '--json');
    const result = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.deepEqual(result.images, [{ image: 'app', version: v2, reason: 'from staging' }]);
    const production = await only('production');
    assert.equal(production.version, v2);
    assert.notEqual(production.id, before.id);
    assert.equal((await onServer(production.name, 'cat /etc/app-edition')).trim(), 'v2');
  });

  it('a changed value replaces the server on the same version ("config changed"); --pin says "pinned"', async () => {
    const before = await only('production');
    t.project().writeConfig(configYaml(t, { greeting: 'production two' }));
    const plan = await ok('deploy', 'production', '--pin', `app@${v2.slice(-14)}`, '--plan');
    assert.match(plan.stdout, new RegExp(`app: ${v2} \\(pinned\\)`));
    assert.match(plan.stdout, new RegExp(`- ${before.name.replace('.', '\\.')} \\(${v2}, config changed\\)`));
    await ok('deploy', 'production', '--pin', `app@${v2}`);
    const production = await only('production');
    assert.notEqual(production.id, before.id);
    assert.equal((await onServer(production.name, 'cat /var/lib/app/greeting')).trim(), 'production two');
    const again = await ok('deploy', 'production', '--plan');
    assert.match(again.stdout, /nothing to do/);
  });

  if (t.breadth) {
    it('--pin an older version; a failing deploy script fails the deploy and leaves the old server running', async () => {
      await ok('deploy', 'production', '--pin', `app@${v1}`);
      const pinned = await only('production');
      assert.equal(pinned.version, v1);
      t.project().writeConfig(configYaml(t, { greeting: 'production three', fail: true }));
      const r = await cli('deploy', 'production', '--pin', `app@${v1}`);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /deploy script 10-configure\.sh exited with status 3/);
      assert.match(r.stderr, /failing on purpose/);
      assert.match(r.stderr, /the old servers were left running/);
      assert.deepEqual((await servers('production')).map((s) => s.id), [pinned.id]);
      t.project().writeConfig(configYaml(t, { greeting: 'production three' }));
    });

    it('rollback in staging goes to v1 with the current config and does not move production; promotion refusals exit 2', async () => {
      const production = await only('production');
      await ok('rollback', 'staging');
      assert.equal((await only('staging')).version, v1);
      assert.equal((await only('production')).id, production.id);
      const unknown = await cli('deploy', 'production', '--from', 'qa');
      assert.equal(unknown.code, 2);
      assert.match(unknown.stderr, /no environment "qa"/);
      const pin = await cli('deploy', 'production', '--pin', 'app@20200101000000');
      assert.equal(pin.code, 2);
      assert.match(pin.stderr, /is not a version of app/);
      await ok('destroy', 'staging', '--yes');
      const empty = await cli('deploy', 'production', '--plan');
      assert.equal(empty.code, 2);
      assert.match(empty.stderr, /staging has no servers of app/);
      assert.equal((await only('production')).id, production.id);
    });
  }

  it('a failing image test fails the build: exit 1, its name and output; no new version, no machine left', async () => {
    const machinesBefore = (await t.machines()).sort();
    const versionsBefore = await versions();
    t.project().write('config/provisional/app/scripts/10-app.sh', buildScript('v3'), 0o755);
    t.project().write('config/provisional/app/tests/20-ship.sh', FAILING_TEST, 0o755);
    const r = await cli('image', 'update');
    assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
    const said = `${r.stdout}\n${r.stderr}`;
    assert.match(said, /image test 20-ship\.sh of app-\d{14} exited with status 4[\s\S]*last lines of its output:\n[\s\S]*\| edition v3 is not what we ship/, 'its name, status and last lines');
    assert.match(r.stderr, /tests\/10-edition\.sh \| testing app-\d{14}: edition v3/, 'the tests before it ran and passed');
    assert.deepEqual(await versions(), versionsBefore, 'no new version');
    assert.deepEqual((await t.machines()).sort(), machinesBefore, 'no builder or test server left');
    assert.match((await ok('cleanup', '--dry-run')).stdout, /nothing to clean up/);
    rmSync(join(t.project().dir, 'config/provisional/app/tests/20-ship.sh'));
  });

  it('revoke: deploys steer around the version, --pin, --to and promotion refuse with the reason; the servers running it are named; restore lifts it', async () => {
    if (t.breadth) await ok('deploy', 'staging'); // staging runs v2 (the latest) again
    const staging = await only('staging');
    assert.equal(staging.version, v2);
    const revoke = await ok('image', 'revoke', `app@${v2.slice(-14)}`, '--reason', 'bad edition: see #42');
    assert.match(revoke.stdout, new RegExp(`revoked ${v2}: bad edition: see #42`));
    assert.match(revoke.stderr, new RegExp(`${staging.name.replace('.', '\\.')}[^\n]* still runs? ${v2}; replace [^\n]*provisional deploy staging`), 'the warning names the servers and the command');
    const list = await ok('image', 'list');
    assert.match(list.stdout, new RegExp(`${v2} .*revoked on \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ: bad edition: see #42`));
    const json = JSON.parse((await ok('image', 'list', '--json')).stdout).images[0].versions.find((v: { version: string }) => v.version === v2);
    assert.equal(json.revoked.reason, 'bad edition: see #42');
    assert.match(json.revoked.at, /^\d{4}-\d\d-\d\dT/);
    const plan = await ok('deploy', 'staging', '--plan');
    assert.match(plan.stdout, new RegExp(`app: ${v1} \\(latest\\)`), 'latest passes over the revoked version');
    assert.match(plan.stdout, new RegExp(`- ${staging.name.replace('.', '\\.')} \\(${v2}`));
    for (const args of [['deploy', 'staging', '--pin', `app@${v2}`], ['rollback', 'staging', 'app', '--to', v2.slice(-14)], ['deploy', 'production', '--plan']]) {
      const refused = await cli(...args);
      assert.equal(refused.code, 2, `${args.join(' ')}: ${refused.stderr}`);
      assert.match(refused.stderr, new RegExp(`${v2} is revoked on [^\n]*: bad edition: see #42`), args.join(' '));
    }
    if (t.breadth) {
      await ok('deploy', 'staging');
      const steered = await only('staging');
      assert.equal(steered.version, v1);
      assert.equal((await onServer(steered.name, 'cat /etc/app-edition')).trim(), 'v1', 'the server runs v1 from its own image');
    }
    const restored = await ok('image', 'restore', `app@${v2}`);
    assert.match(restored.stdout, new RegExp(`restored ${v2}`));
    assert.match((await ok('deploy', 'staging', '--plan')).stdout, new RegExp(`app: ${v2} \\(latest\\)`));
    const again = JSON.parse((await ok('image', 'list', '--json')).stdout).images[0].versions.find((v: { version: string }) => v.version === v2);
    assert.equal(again.revoked, undefined);
  });

  it('the canary secret is in no output, --json, plan, label or local file', async () => {
    const leaks = (text: string) => text.includes(CANARY) || text.includes(DB_PASSWORD);
    outputs.forEach((r, i) => assert.ok(!leaks(r.stdout) && !leaks(r.stderr), `output ${i} leaked:\n${r.stdout}\n${r.stderr}`));
    assert.ok(outputs.length > 10);
    const labels = await t.labelsText();
    assert.match(labels, /provisional-config/, 'servers carry the runtime-config label');
    assert.ok(!leaks(labels), 'a label leaked the secret');
    assert.ok(!labels.includes(hex(CANARY)));
    for (const dir of t.localDirs()) for (const file of filesUnder(dir)) assert.ok(!leaks(readFileSync(file, 'latin1')), `${file} holds the secret`);
  });
}

function filesUnder(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries.flatMap((e) => {
    const path = join(dir, e);
    const st = statSync(path, { throwIfNoEntry: false });
    if (!st) return [];
    // Disks hold the env file by design (it is on the server); everything else must not.
    return st.isDirectory() ? filesUnder(path) : st.isFile() && !/\.(qcow2|raw|img)$/.test(e) ? [path] : [];
  });
}

function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
