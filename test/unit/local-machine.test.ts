import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { acceleratorArgs, chooseAccelerator, hardwareFor, probeBootSector } from '../../src/providers/local/accelerator.js';
import { cloudInitSeed, hostnameFor, machineArgs, type MachineSpec } from '../../src/providers/local/qemu-args.js';
import { acquireLock } from '../../src/core/lock.js';
import { processMatches } from '../../src/providers/local/process.js';
import { EARLY_FILES, GUEST_FILES, MASK_UNITS, debianRecipeKey } from '../../src/providers/local/debian-guest.js';
import { hasPvhNote } from '../../src/providers/local/kernel.js';
import { parse as parseYaml } from 'yaml';

const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey test@host';

function spec(over: Partial<MachineSpec> = {}): MachineSpec {
  return {
    dir: '/data/m1',
    name: 'app1.staging',
    hostname: 'app1.staging',
    accelerator: 'tcg',
    memoryMiB: 1024,
    cpus: 2,
    overlay: '/data/m1/overlay.qcow2',
    boot: { baseRef: 'debian-12', baseBuildId: 'b', baseDisk: '/c/disk.qcow2', kernel: '/c/vmlinuz', initrd: '/c/initrd.img', append: 'root=/dev/vda rw' },
    sshPort: 2222,
    ports: [{ address: '127.0.0.1', hostPort: 8080, guestPort: 80 }],
    authorizedKey: key,
    qmp: '/data/m1/qmp.sock',
    serialLog: '/data/m1/serial.log',
    pidFile: '/data/m1/qemu.pid',
    ...over,
  };
}

const after = (args: string[], flag: string) => args.filter((_, i) => args[i - 1] === flag);

describe('local machine command line', () => {
  it('forwards SSH and the configured ports on loopback', () => {
    const netdev = after(machineArgs(spec()), '-netdev')[0]!;
    assert.equal(netdev, 'user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=tcp:127.0.0.1:8080-:80');
  });

  it('passes the key as the ssh.authorized_keys.root credential, base64 over SMBIOS', () => {
    const smbios = after(machineArgs(spec()), '-smbios')[0]!;
    const m = /^type=11,value=io\.systemd\.credential\.binary:ssh\.authorized_keys\.root=([A-Za-z0-9+/=]+)$/.exec(smbios);
    assert.ok(m, smbios);
    assert.equal(Buffer.from(m[1]!, 'base64').toString(), `${key}\n`);
  });

  it('boots the kernel directly with the machine name as host name, daemonised, no reboot', () => {
    const args = machineArgs(spec());
    assert.equal(after(args, '-kernel')[0], '/c/vmlinuz');
    assert.equal(after(args, '-initrd')[0], '/c/initrd.img');
    assert.equal(after(args, '-append')[0], 'root=/dev/vda rw systemd.hostname=app1.staging');
    for (const flag of ['-daemonize', '-no-reboot', '-nodefaults']) assert.ok(args.includes(flag), flag);
    assert.deepEqual(after(args, '-accel'), ['tcg,thread=multi']);
    assert.deepEqual(acceleratorArgs(hardwareFor('kvm')), ['-accel', 'kvm', '-cpu', 'host']);
    assert.ok(!args.includes('-blockdev'), 'no cloud-init seed for direct kernel boot');
  });

  it('chooses the guest hardware per accelerator', () => {
    const args = (accelerator: 'kvm' | 'tcg') => machineArgs(spec({ accelerator }));
    assert.deepEqual([after(args('kvm'), '-M'), after(args('kvm'), '-cpu')], [['q35'], ['host']]);
    // Under TCG the cheapest hardware to emulate (bench/boot-levers.ts).
    assert.deepEqual([after(args('tcg'), '-M'), after(args('tcg'), '-cpu')], [['pc'], ['qemu64']]);
    assert.deepEqual(after(machineArgs(spec({ hardware: { cpu: 'max' } })), '-cpu'), ['max']);
    // A configured base boots its own loader and may need x86-64-v2 or later.
    const firmware = machineArgs(spec({ boot: { baseRef: 'rocky', baseBuildId: 'b', baseDisk: '/c/d.img' }, seedDir: '/s' }));
    assert.deepEqual(after(firmware, '-cpu'), ['max']);
  });

  it('doubles commas in paths (QEMU option syntax)', () => {
    const args = machineArgs(spec({ overlay: '/data/a,b/overlay.qcow2', qmp: '/data/a,b/qmp.sock' }));
    assert.ok(after(args, '-drive')[0]!.startsWith('file=/data/a,,b/overlay.qcow2,'));
    assert.ok(args.includes('socket,id=qmp,path=/data/a,,b/qmp.sock,server=on,wait=off'));
  });

  it('boots firmware images with a cloud-init seed', () => {
    const args = machineArgs(spec({ boot: { baseRef: 'ubuntu', baseBuildId: 'b', baseDisk: '/c/d.img' }, seedDir: '/data/m1/seed' }));
    assert.ok(!args.includes('-kernel'));
    assert.equal(after(args, '-blockdev')[0], 'driver=vvfat,node-name=seed,dir=/data/m1/seed,label=cidata,read-only=on');
    const seed = cloudInitSeed('m1', 'app1', key);
    assert.match(seed['user-data'], /^#cloud-config\ndisable_root: false\n/);
    assert.ok(seed['user-data'].includes(JSON.stringify(key)));
    // Every key line is its own entry (cloud-init writes one authorized_keys line an entry).
    const two = cloudInitSeed('m1', 'app1', `${key}\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB0second second@host\n`);
    assert.deepEqual((parseYaml(two['user-data']) as { ssh_authorized_keys: string[] }).ssh_authorized_keys, [key.trim(), 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB0second second@host']);
  });

  it('makes host names the kernel accepts', () => {
    assert.equal(hostnameFor('provisional-build-App_1-abc'), 'provisional-build-app-1-abc');
    assert.equal(hostnameFor('app1.staging'), 'app1.staging');
    assert.equal(hostnameFor('--'), 'machine');
    assert.equal(hostnameFor('x'.repeat(80)).length, 63);
  });
});

describe('local KVM probe and guest files', () => {
  it('the probe is a bootable sector that writes to isa-debug-exit', () => {
    const sector = probeBootSector();
    assert.equal(sector.length, 512);
    assert.equal(sector.readUInt16LE(510), 0xaa55);
    assert.deepEqual([...sector.subarray(0, 4)], [0xb0, 0x31, 0xe6, 0xf4]);
  });

  it('keys the debian-12 base by its recipe', () => {
    assert.match(debianRecipeKey(8), /^[0-9a-f]{16}$/);
    assert.equal(debianRecipeKey(8), debianRecipeKey(8));
    assert.notEqual(debianRecipeKey(8), debianRecipeKey(16));
  });

  it('tcg in the settings needs no probe', async () => {
    assert.deepEqual(await chooseAccelerator('tcg'), { accelerator: 'tcg', reason: 'accelerator: tcg in the settings' });
  });

  it('configures the guest for key-only root SSH, DHCP and first-boot host keys', () => {
    const byPath = new Map(GUEST_FILES.map((f) => [f.path, f.content]));
    assert.match(byPath.get('/etc/ssh/sshd_config.d/50-provisional.conf')!, /PermitRootLogin prohibit-password/);
    assert.match(byPath.get('/etc/systemd/network/80-provisional-dhcp.network')!, /Name=en\*[\s\S]*DHCP=yes/);
    assert.equal(byPath.get('/etc/machine-id'), '');
    assert.match(byPath.get('/etc/fstab')!, /^\/dev\/vda \/ ext4/);
    const hostKeys = byPath.get('/etc/systemd/system/provisional-ssh-host-keys.service')!;
    assert.match(hostKeys, /Before=ssh.service/);
    assert.match(hostKeys, /-t ed25519/);
    const ssh = byPath.get('/etc/systemd/system/ssh.service')!;
    assert.match(ssh, /^After=.*provisional-ssh-host-keys.service/m);
    assert.doesNotMatch(ssh, /network.target/, 'sshd does not wait for the network');
    assert.ok(MASK_UNITS.includes('apt-daily.timer'));
    assert.ok(EARLY_FILES.some((f) => f.path.startsWith('/etc/initramfs-tools/hooks/') && f.mode === 0o755));
    assert.ok(MASK_UNITS.includes('serial-getty@ttyS0.service'));
    assert.ok(['/etc/.updated', '/var/.updated'].every((p) => byPath.has(p)), 'the base is up to date with /usr, as after a first boot');
  });

  it("puts its own /init into the initramfs: valid sh that mounts root= and hands over to init", () => {
    const hook = EARLY_FILES.find((f) => f.path.startsWith('/etc/initramfs-tools/hooks/'))!;
    const init = EARLY_FILES.find((f) => f.path === '/etc/initramfs-tools/provisional-init')!;
    assert.match(hook.content, /cp \/etc\/initramfs-tools\/provisional-init "\$\{DESTDIR\}\/init"/);
    assert.equal(init.mode, 0o755);
    assert.match(init.content, /^#!\/bin\/sh\n/);
    // dash is what klibc's sh derives from: the same grammar.
    const checked = spawnSync('sh', ['-n'], { input: init.content, encoding: 'utf8' });
    assert.equal(checked.status, 0, checked.stderr);
    assert.match(init.content, /root=\*\) root=\$\{x#root=\}/);
    assert.match(init.content, /exec run-init \/root "\$init"/);
  });
});

describe('local base lock', () => {
  it('is exclusive, waits, and takes over a dead owner\'s lock', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'provisional-unit-lock-'));
    try {
      const path = join(dir, 'debian-12.lock');
      const lock = await acquireLock(path, 'lock', { timeoutMs: 1000 });
      let waited = false;
      await assert.rejects(acquireLock(path, 'the lock', { timeoutMs: 700, onWait: () => (waited = true) }), /timed out after 1 s waiting for the lock/);
      assert.ok(waited, 'told that it waits');
      await lock.release();
      assert.equal(existsSync(path), false);
      // A lock left by a process that no longer exists.
      const dead = spawn('true');
      await new Promise((r) => dead.on('close', r));
      writeFileSync(path, JSON.stringify({ pid: dead.pid, host: (await import('node:os')).hostname(), since: 'x' }));
      const again = await acquireLock(path, 'lock', { timeoutMs: 2000 });
      await again.release();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('recognises our own processes only by their command line', async () => {
    assert.equal(await processMatches(process.pid, 'no-such-marker-in-argv'), false);
    assert.equal(await processMatches(process.pid, process.argv[1]!), true);
    assert.equal(await processMatches(2 ** 22 + 1, 'x'), false);
  });
});

describe('local PVH kernel check', () => {
  /** A minimal 64-bit ELF with one PT_NOTE segment holding one note. */
  function elfWithNote(name: string, type: number): Buffer {
    const nameBytes = Buffer.from(`${name}\0`);
    const note = Buffer.alloc(12 + ((nameBytes.length + 3) & ~3) + 4);
    note.writeUInt32LE(nameBytes.length, 0);
    note.writeUInt32LE(4, 4);
    note.writeUInt32LE(type, 8);
    nameBytes.copy(note, 12);
    const elf = Buffer.alloc(64 + 56 + note.length);
    elf.writeUInt32BE(0x7f454c46, 0);
    elf[4] = 2; // 64-bit
    elf[5] = 1; // little-endian
    elf.writeBigUInt64LE(64n, 0x20); // program headers right after the ELF header
    elf.writeUInt16LE(56, 0x36);
    elf.writeUInt16LE(1, 0x38);
    elf.writeUInt32LE(4, 64); // PT_NOTE
    elf.writeBigUInt64LE(120n, 64 + 8); // offset of the note
    elf.writeBigUInt64LE(BigInt(note.length), 64 + 32);
    note.copy(elf, 120);
    return elf;
  }

  it('finds the Xen PVH entry note, and only that', () => {
    assert.equal(hasPvhNote(elfWithNote('Xen', 18)), true);
    assert.equal(hasPvhNote(elfWithNote('Xen', 17)), false);
    assert.equal(hasPvhNote(elfWithNote('GNU', 18)), false);
    assert.equal(hasPvhNote(Buffer.from('MZ not an elf')), false);
  });
});
