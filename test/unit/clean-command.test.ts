/**
 * The build's clean step, run by a real shell (dash, as `sudo sh -c` runs it, and bash, root's
 * login shell on Debian) in a private mount namespace whose /root, /etc/ssh, /var/tmp, /var/lib/dbus
 * and /etc/machine-id are scratch copies: only the files part, never the power-off request.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { cleanCommand, cleanFilesCommand, POWER_OFF_REQUEST } from '../../src/pipeline/pipeline.js';

const BUILD_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBuildKeyOfThisBuild provisional-build';
const USER_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIUserKey alice@laptop';
const RESTRICTED = 'command="echo \\"hi\\\\n\\"",no-pty ssh-rsa AAAAB3NzaC1yc2E restricted';

/** Runs the files part of the clean command with `shell` over a scratch world; returns what is left. */
function clean(shell: string, authorizedKeys: string | undefined): { status: number | null; stderr: string; keys: string | undefined; listing: string; machineId: string } {
  const dir = mkdtempSync(join(tmpdir(), 'clean-command-'));
  const machineId = join(dir, 'machine-id');
  writeFileSync(machineId, '0123456789abcdef0123456789abcdef\n');
  const script = join(dir, 'clean.sh');
  writeFileSync(script, cleanFilesCommand(BUILD_KEY));
  const keysSetup = authorizedKeys === undefined ? '' : `printf '%s' "$KEYS" > /root/.ssh/authorized_keys`;
  const setup = [
    'set -e',
    'for d in /root /etc/ssh /var/tmp /var/lib/dbus; do mkdir -p $d; mount -t tmpfs scratch $d; done',
    `mount --bind ${machineId} /etc/machine-id`,
    'mkdir -p /root/.ssh /var/tmp/provisional/scripts',
    keysSetup,
    'touch /var/tmp/provisional/scripts/10-app.sh /etc/ssh/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key.pub /etc/ssh/ssh_host_rsa_key /etc/ssh/sshd_config /var/lib/dbus/machine-id /root/.bash_history /root/.profile',
    `${shell} ${script}`,
    `cp /root/.ssh/authorized_keys ${dir}/keys-after 2>/dev/null || true`,
    `ls -A /root /root/.ssh /etc/ssh /var/tmp /var/lib/dbus > ${dir}/listing`,
  ].join('\n');
  try {
    const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', setup], { encoding: 'utf8', env: { ...process.env, KEYS: authorizedKeys ?? '' } });
    const read = (name: string) => {
      try {
        return readFileSync(join(dir, name), 'utf8');
      } catch {
        return undefined;
      }
    };
    return { status: r.status, stderr: r.stderr, keys: read('keys-after'), listing: read('listing') ?? '', machineId: readFileSync(machineId, 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('the clean step', () => {
  for (const shell of ['dash', 'bash']) {
    it(`${shell}: removes only the build key, keeping the other lines as they were, in order`, () => {
      const r = clean(shell, `${USER_KEY}\n${BUILD_KEY}\n${RESTRICTED}`); // the last line without its newline
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.keys, `${USER_KEY}\n${RESTRICTED}\n`);
      assert.equal(r.machineId, '', 'the machine-id is emptied (each server makes its own)');
      assert.doesNotMatch(r.listing, /ssh_host_|provisional|bash_history|machine-id/, 'host keys, uploaded files, history and D-Bus machine-id are gone');
      assert.match(r.listing, /sshd_config/, 'the rest of /etc/ssh stays');
      assert.match(r.listing, /\.profile/, "the rest of root's home stays");
    });

    it(`${shell}: an authorized_keys left with no line goes; none at all is fine`, () => {
      const only = clean(shell, `${BUILD_KEY}\n`);
      assert.equal(only.status, 0, only.stderr);
      assert.equal(only.keys, undefined, 'the file is removed');
      const none = clean(shell, undefined);
      assert.equal(none.status, 0, none.stderr);
      assert.equal(none.keys, undefined);
    });
  }

  it('ends with the clean line, then asks systemd for the power-off by its signal, or the other inits by their command', () => {
    const command = cleanCommand(BUILD_KEY);
    assert.ok(command.startsWith(cleanFilesCommand(BUILD_KEY)));
    assert.ok(command.endsWith(`echo 'provisional: builder clean, powering off'\n${POWER_OFF_REQUEST}`));
    // SIGRTMIN+4 with glibc is 38 (systemd(1): "Enters poweroff mode").
    const rtmin4 = spawnSync('bash', ['-c', 'kill -l RTMIN+4'], { encoding: 'utf8' }).stdout.trim();
    assert.match(POWER_OFF_REQUEST, new RegExp(`kill -${rtmin4} 1`));
  });
});
