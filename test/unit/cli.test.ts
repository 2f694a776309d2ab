/** The CLI's contract with users and scripts: exit codes, messages, --json, redaction. */
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { tempProject, type TempProject } from '../helpers/project.js';
import { Redactor } from '../../src/core/redact.js';

let project: TempProject | undefined;
afterEach(() => project?.remove());

describe('CLI', () => {
  it('--version and --help exit 0', async () => {
    project = tempProject();
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
    const v = await runCli(['--version'], { cwd: project.dir });
    assert.equal(v.code, 0);
    assert.equal(v.stdout.trim(), pkg.version);
    const h = await runCli(['--help'], { cwd: project.dir });
    assert.equal(h.code, 0);
    assert.match(h.stdout, /image/);
  });

  it('bad usage exits 2', async () => {
    project = tempProject();
    assert.equal((await runCli(['frobnicate'], { cwd: project.dir })).code, 2);
    assert.equal((await runCli(['image', 'create'], { cwd: project.dir })).code, 2);
  });

  it('image revoke/restore: a missing version, a bad reason or an unknown version exits 2 and changes nothing; a test that is not executable is a config problem', async () => {
    project = tempProject();
    project.writeConfig('images:\n  app:\n    base-image: debian-12\n    test-timeout: 30\n');
    const env = { PROVISIONAL_DATA_DIR: join(project.dir, 'data'), PROVISIONAL_STATE_DIR: join(project.dir, 'state') };
    const refused = async (args: string[], pattern: RegExp) => {
      const r = await runCli(args, { cwd: project!.dir, env });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
    };
    await refused(['image', 'revoke', 'app'], /revoke takes one version: NAME@VERSION, not "app"/);
    await refused(['image', 'restore', 'app'], /restore takes one version/);
    await refused(['image', 'revoke', 'app@20260101000000', '--reason', 'x'.repeat(201)], /--reason is 201 characters long; at most 200/);
    await refused(['image', 'revoke', 'app@20260101000000', '--reason', 'two\nlines'], /one line of text/);
    await refused(['image', 'revoke', 'app@20260101000000'], /no version app-20260101000000 of app/);
    project.write('config/provisional/app/tests/10-check.sh', '#!/bin/sh\ntrue\n', 0o644);
    await refused(['validate'], /config\/provisional\/app\/tests\/10-check\.sh: is not executable/);
    project.write('config/provisional/app/tests/10-check.sh', '#!/bin/sh\ntrue\n', 0o755);
    const ok = await runCli(['validate'], { cwd: project.dir, env });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /image app <- debian-12 \(0 scripts, 1 test\)/);
  });

  it('a bad config exits 2 with file, line, key and no stack trace; --debug adds the stack', async () => {
    project = tempProject();
    project.writeConfig('images:\n  app:\n    base-image: nowhere\n');
    const r = await runCli(['validate'], { cwd: project.dir });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /config\/provisional\/config\.yml:3: images\.app\.base-image: "nowhere" is neither/);
    assert.doesNotMatch(r.stderr, /\bat .*\.js:\d+/);
    const d = await runCli(['validate', '--debug'], { cwd: project.dir });
    assert.equal(d.code, 2);
    assert.match(d.stderr, /\bat .*\.js:\d+/);
  });

  it('--json errors are a JSON document with the problems', async () => {
    project = tempProject();
    project.writeConfig('images:\n  app:\n    base-image: debian-12\n    bogus: 1\n');
    const r = await runCli(['validate', '--json'], { cwd: project.dir });
    assert.equal(r.code, 2);
    const doc = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.equal(doc.type, 'error');
    assert.equal(doc.problems[0].path, 'images.app.bogus');
    assert.equal(doc.problems[0].line, 4);
  });

  it('init writes an executable sample and refuses to overwrite, changing nothing', async () => {
    project = tempProject();
    const first = await runCli(['init'], { cwd: project.dir });
    assert.equal(first.code, 0, first.stderr);
    // The files it wrote, listed in path order, and every one of them there.
    const listed = first.stdout.split('\n').filter((l) => l.startsWith('  config/')).map((l) => l.trim());
    assert.ok(listed.length >= 6, first.stdout);
    assert.deepEqual(listed, [...listed].sort());
    for (const path of listed) assert.ok(statSync(`${project.dir}/${path}`).isFile(), path);
    const script = `${project.dir}/config/provisional/base/scripts/10-system.sh`;
    assert.ok(statSync(script).mode & 0o100);
    const config = readFileSync(`${project.dir}/config/provisional/config.yml`, 'utf8');
    const again = await runCli(['init'], { cwd: project.dir });
    assert.equal(again.code, 2);
    assert.equal(readFileSync(`${project.dir}/config/provisional/config.yml`, 'utf8'), config);
    const valid = await runCli(['validate', '--json'], { cwd: project.dir });
    assert.equal(valid.code, 0, valid.stderr);
    assert.equal(JSON.parse(valid.stdout).valid, true);
  });

  it('deploy and destroy release their environment lock when the provider cannot be opened', async () => {
    project = tempProject();
    project.writeConfig('provider: digitalocean\nimages:\n  app:\n    base-image: debian-12-x64\ndeployments:\n  staging:\n    app: { servers: 1 }\n');
    const state = mkdtempSync(join(tmpdir(), 'provisional-lock-state-'));
    try {
      const env = { PROVISIONAL_STATE_DIR: state, DIGITALOCEAN_TOKEN: '', DIGITALOCEAN_ACCESS_TOKEN: '', DIGITAL_OCEAN_API_KEY: '' };
      for (const args of [['deploy', 'staging'], ['destroy', 'staging', '--yes']]) {
        const r = await runCli(args, { cwd: project.dir, env });
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /no DigitalOcean API token/);
        const locks = readdirSync(join(state, 'locks'), { recursive: true }).filter((f) => String(f).endsWith('.lock'));
        assert.deepEqual(locks, [], `${args[0]} left its lock`);
      }
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });

  it('secret values never reach the output', async () => {
    project = tempProject();
    const canary = 'canary-token-5f2b9c1d';
    project.writeConfig('images:\n  app:\n    base-image: nowhere-${MY_TOKEN}\n');
    const r = await runCli(['validate', '--debug', '--json'], { cwd: project.dir, env: { MY_TOKEN: canary } });
    assert.equal(r.code, 2);
    assert.ok(!r.stdout.includes(canary) && !r.stderr.includes(canary), 'the token leaked');
    assert.match(r.stderr, /\[redacted\]/);
  });

  it('the redactor hides secrets and private keys', () => {
    const r = new Redactor();
    r.add('s3cr3t-value', 'abc');
    assert.equal(r.redact('x s3cr3t-value y abc'), 'x [redacted] y abc');
    assert.equal(r.redact('-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----'), '[redacted private key]');
  });
});
