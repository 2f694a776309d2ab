/**
 * What a resumed builder runs first (src/providers/local/warm.ts adoptCommand), run by dash and
 * bash in private mount and UTS namespaces whose /root and /run are scratch (the credential on a
 * read-only ramfs, as systemd keeps it): root's keys and the key credential become the request's, the host name the builder's; `date` is a stand-in on PATH
 * that records what it was asked (the real one would set this machine's clock).
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { adoptCommand } from '../../src/providers/local/warm.js';

const SAVED = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAISavedMachineKey provisional-warm';
const BUILD = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBuildKey provisional-build';
const USER = `command="echo 'hi'",no-pty ssh-rsa AAAAB3NzaC1yc2E alice's key`;

function adopt(shell: string, withCredential: boolean) {
  const dir = mkdtempSync(join(tmpdir(), 'warm-adopt-'));
  try {
    writeFileSync(join(dir, 'date'), `#!/bin/sh\necho "$@" > ${dir}/date-args\n`);
    chmodSync(join(dir, 'date'), 0o755);
    writeFileSync(join(dir, 'adopt.sh'), adoptCommand(`${BUILD}\n${USER}\n`, 'provisional-build-app-1a2b', 1_764_000_000_123, Buffer.from('seed')));
    const credential = '/run/credentials/@system/ssh.authorized_keys.root';
    const setup = [
      'set -e',
      'mount -t tmpfs scratch /root',
      'mount -t tmpfs scratch /run',
      'mkdir -p /root/.ssh /run/credentials/@system',
      `printf '%s\\n' '${SAVED}' > /root/.ssh/authorized_keys`,
      // As systemd keeps them: on a ramfs of their own, read-only.
      withCredential ? `mount -t ramfs -o mode=700 ramfs /run/credentials/@system && printf '%s\\n' '${SAVED}' > ${credential} && chmod 0400 ${credential} && mount -o remount,ro /run/credentials/@system` : 'true',
      `PATH=${dir}:$PATH ${shell} ${dir}/adopt.sh`,
      `cp /root/.ssh/authorized_keys ${dir}/keys`,
      withCredential ? `cp ${credential} ${dir}/credential && stat -c %a ${credential} > ${dir}/credential-mode && findmnt -no OPTIONS /run/credentials/@system > ${dir}/credential-mount` : 'true',
      `ls -A /root/.ssh /run/credentials/@system > ${dir}/listing`,
      `hostname > ${dir}/hostname`,
    ].join('\n');
    const r = spawnSync('unshare', ['--mount', '--uts', '--propagation', 'private', 'sh', '-c', setup], { encoding: 'utf8' });
    const read = (name: string) => {
      try {
        return readFileSync(join(dir, name), 'utf8');
      } catch {
        return undefined;
      }
    };
    return { status: r.status, stderr: r.stderr, keys: read('keys'), credential: read('credential'), mode: read('credential-mode'), listing: read('listing'), hostname: read('hostname'), date: read('date-args'), mount: read('credential-mount') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("a resumed builder's first command", () => {
  for (const shell of ['dash', 'bash']) {
    it(`${shell}: the request's keys replace the saved machine's, in the file and the credential; its host name and clock are set`, () => {
      const r = adopt(shell, true);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.keys, `${BUILD}\n${USER}\n`);
      assert.equal(r.credential, `${BUILD}\n${USER}\n`);
      assert.equal(r.mode?.trim(), '400');
      assert.match(r.mount ?? '', /^ro,/, 'the credentials are read-only again');
      assert.doesNotMatch(r.listing ?? '', /\.new/, 'no temporary file left');
      assert.equal(r.hostname, 'provisional-build-app-1a2b\n');
      assert.equal(r.date, '-u -s @1764000000.123\n');
    });
  }

  it('without a key credential (a base that has none), only the file', () => {
    const r = adopt('dash', false);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.keys, `${BUILD}\n${USER}\n`);
    assert.doesNotMatch(r.listing ?? '', /authorized_keys.root/);
  });
});
