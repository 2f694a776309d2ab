import { createHash } from 'node:crypto';

/**
 * What makes a debootstrapped Debian a bootable, reachable machine under QEMU: the files written
 * into the root file system before it becomes a disk, and the units to enable or mask.
 * Plain data, so that it can be read (and tested) apart from the build.
 */

/** The Debian release of the built-in base. */
export const SUITE = 'bookworm';

export interface GuestFile {
  path: string;
  content: string;
  mode?: number;
}

/** Kernel command line for direct kernel boot: no boot loader in the image at all. */
export const DEBIAN_APPEND = 'root=/dev/vda rw console=ttyS0 quiet';

/**
 * Written before any package is installed (mmdebstrap setup hook), so that the kernel's
 * postinst builds a small initramfs with only what QEMU's disk needs: the default (MODULES=most)
 * takes ~10 s longer to build and ~3 s longer to boot under TCG. A hook rather than
 * /etc/initramfs-tools/modules, which is a conffile of initramfs-tools.
 */
export const EARLY_FILES: GuestFile[] = [
  { path: '/etc/initramfs-tools/conf.d/provisional.conf', content: 'MODULES=list\n' },
  {
    path: '/etc/initramfs-tools/hooks/provisional-virtio',
    mode: 0o755,
    content: [
      '#!/bin/sh',
      '# Provisional: the drivers QEMU machines boot from (virtio disk, ext4 root).',
      'case "$1" in prereqs) exit 0;; esac',
      '. /usr/share/initramfs-tools/hook-functions',
      'manual_add_modules virtio_pci virtio_blk virtio_scsi ext4',
      // Our /init replaces Debian's (copied in before the hooks run, so this wins).
      'cp /etc/initramfs-tools/provisional-init "${DESTDIR}/init"',
      '',
    ].join('\n'),
  },
  {
    // Debian's /init starts udev, waits for it to settle and runs a dozen script folders before it
    // mounts the root: 1.8 s under TCG. These machines have one known disk, so this /init loads its
    // drivers (modprobe resolves their dependencies), mounts it and starts systemd: about 0.3 s.
    // Plain POSIX sh for klibc's shell; it honours root=, ro/rw, rootfstype=, rootflags= and init=.
    path: '/etc/initramfs-tools/provisional-init',
    mode: 0o755,
    content: [
      '#!/bin/sh',
      '# Provisional: mount the root file system and start its init; nothing else.',
      'export PATH=/sbin:/usr/sbin:/bin:/usr/bin',
      'mkdir -p /dev /proc /sys /root /run',
      'mount -t devtmpfs -o nosuid,mode=0755 udev /dev',
      'mount -t proc -o nodev,noexec,nosuid proc /proc',
      'mount -t sysfs -o nodev,noexec,nosuid sysfs /sys',
      'root=/dev/vda; fstype=ext4; mode=rw; flags=; init=/sbin/init',
      'for x in $(cat /proc/cmdline); do',
      '  case $x in',
      '    root=*) root=${x#root=} ;;',
      '    rootfstype=*) fstype=${x#rootfstype=} ;;',
      '    rootflags=*) flags=,${x#rootflags=} ;;',
      '    init=*) init=${x#init=} ;;',
      '    ro) mode=ro ;;',
      '    rw) mode=rw ;;',
      '  esac',
      'done',
      'modprobe -qab virtio_pci virtio_blk virtio_scsi "$fstype"',
      // virtio_blk probes the disk while its module loads; the loop is for slower buses.
      'n=0',
      'while [ ! -b "$root" ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done',
      'if ! mount -t "$fstype" -o "$mode$flags" "$root" /root; then',
      '  echo "provisional initramfs: cannot mount $root ($fstype, $mode$flags) as the root file system" >/dev/console',
      '  sleep 5; poweroff -f',
      'fi',
      'mount -n -o move /dev /root/dev',
      'mount -n -o move /sys /root/sys',
      'mount -n -o move /proc /root/proc',
      'exec run-init /root "$init" "$@" </root/dev/console >/root/dev/console 2>&1',
      '',
    ].join('\n'),
  },
];

export const GUEST_FILES: GuestFile[] = [
  // mmdebstrap copies the host's; each machine gets its name from the kernel command line.
  { path: '/etc/hostname', content: 'debian\n' },
  // QEMU user-mode networking answers DNS on 10.0.2.3. Static, because bookworm's networkd does
  // not write resolv.conf without systemd-resolved (another package, another service to boot).
  { path: '/etc/resolv.conf', content: 'nameserver 10.0.2.3\n' },
  { path: '/etc/fstab', content: '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' },
  {
    path: '/etc/systemd/network/80-provisional-dhcp.network',
    content: '[Match]\nName=en*\n\n[Network]\nDHCP=yes\n',
  },
  {
    // udev loads a driver for each device QEMU's `pc` board has, and networkd's nl80211 query
    // loads the wireless stack: each module costs a fraction of a second of CPU under TCG, beside
    // sshd's start. None is of use on these machines (no floppy, IDE disk, PS/2 mouse, speaker,
    // SMBus, Wi-Fi, or nested KVM under emulation); `modprobe NAME` still loads one on purpose.
    // evdev and button stay: they carry the ACPI power button a graceful stop uses.
    path: '/etc/modprobe.d/provisional-unused-hardware.conf',
    content: [
      '# Provisional: drivers for hardware its QEMU machines do not use (see the local provider).',
      ...['floppy', 'ata_piix', 'ata_generic', 'psmouse', 'serio_raw', 'pcspkr', 'i2c_piix4', 'cfg80211', 'kvm_amd', 'kvm_intel', 'kvm', 'ccp'].map((m) => `blacklist ${m}`),
      '',
    ].join('\n'),
  },
  // Empty: systemd makes a new machine-id at first boot, so every machine has its own.
  { path: '/etc/machine-id', content: '' },
  // What systemd-update-done writes at the end of a first boot: /etc and /var are up to date with
  // /usr, so units with ConditionNeedsUpdate= (sysusers, ldconfig, the journal catalog) are skipped
  // at each machine's boot. The base never boots before it is a disk, so without these every machine
  // would redo them; a package a script installs later touches /usr, and the next boot runs them.
  ...['/etc/.updated', '/var/.updated'].map((path) => ({
    path,
    content: '# Written by Provisional when it built the base: see man:systemd-update-done.service(8).\n',
  })),
  {
    // The build pipeline deletes the host keys before a snapshot so that each server gets its
    // own. Only ed25519: under TCG each ssh-keygen costs seconds of the first boot (RSA 5-10 s).
    // Early (no default dependencies: it needs only the root file system, mounted rw by the
    // kernel, and entropy, which virtio-rng gives), beside the rest of the boot, not after it.
    path: '/etc/systemd/system/provisional-ssh-host-keys.service',
    content: [
      '[Unit]',
      'Description=Generate missing SSH host keys',
      'DefaultDependencies=no',
      'After=local-fs.target',
      'Before=ssh.service shutdown.target',
      'Conflicts=shutdown.target',
      'ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key',
      '',
      '[Service]',
      'Type=oneshot',
      "ExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key",
      '',
      '[Install]',
      'WantedBy=sysinit.target',
      '',
    ].join('\n'),
  },
  {
    // Debian's ssh.service, but not after network.target: sshd listens on every address and
    // needs none configured to start; waiting for systemd-networkd's start held it back by
    // seconds under TCG. Without its `sshd -t` pre-check: one sshd process less at boot (a bad
    // configuration still fails the start, with sshd's own message). A file of the same name in
    // /etc replaces the package's unit; the package has enabled it already.
    path: '/etc/systemd/system/ssh.service',
    content: [
      '[Unit]',
      'Description=OpenBSD Secure Shell server',
      'Documentation=man:sshd(8) man:sshd_config(5)',
      'After=auditd.service provisional-ssh-host-keys.service',
      'Wants=provisional-ssh-host-keys.service',
      'ConditionPathExists=!/etc/ssh/sshd_not_to_be_run',
      '',
      '[Service]',
      'EnvironmentFile=-/etc/default/ssh',
      'ExecStart=/usr/sbin/sshd -D $SSHD_OPTS',
      'ExecReload=/usr/sbin/sshd -t',
      'ExecReload=/bin/kill -HUP $MAINPID',
      'KillMode=process',
      'Restart=on-failure',
      'RestartPreventExitStatus=255',
      'Type=notify',
      'RuntimeDirectory=sshd',
      'RuntimeDirectoryMode=0755',
      '',
      '[Install]',
      'WantedBy=multi-user.target',
      'Alias=sshd.service',
      '',
    ].join('\n'),
  },
  {
    path: '/etc/ssh/sshd_config.d/50-provisional.conf',
    content: [
      '# Provisional: root logs in with a key only.',
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'HostKey /etc/ssh/ssh_host_ed25519_key',
      // A machine can be reached with the key it was launched with even when an image left its
      // own /root/.ssh/authorized_keys (tmpfiles' f^ only writes the credential into a missing file).
      'Match User root',
      '  AuthorizedKeysFile .ssh/authorized_keys /run/credentials/@system/ssh.authorized_keys.root',
      '',
    ].join('\n'),
  },
];

/** Services and sockets to start at boot. */
export const ENABLE_UNITS = ['systemd-networkd.service', 'provisional-ssh-host-keys.service'];

/**
 * Units masked because they slow a boot or get in a build's way: the apt timers would take the
 * dpkg lock while a script runs apt-get; firstboot would prompt on the console (the machine-id is
 * empty, which makes every boot of a new machine a "first boot"); the rest only cost time.
 */
export const MASK_UNITS = [
  'apt-daily.timer',
  'apt-daily-upgrade.timer',
  'systemd-firstboot.service',
  'e2scrub_all.timer',
  'e2scrub_reap.service',
  // Modules for hardware these machines do not have (no display, no EFI, no device mapper);
  // each is a modprobe run at boot, seconds of CPU under TCG.
  'modprobe@drm.service',
  'modprobe@efi_pstore.service',
  'modprobe@dm_mod.service',
  // Login prompts nobody can use: no display, and root has no password (it logs in with keys).
  'getty@tty1.service',
  'serial-getty@ttyS0.service',
];

/** Left behind by the package installation and must not be shared by every machine. */
export const REMOVE_FILES = [
  '/etc/ssh/ssh_host_rsa_key',
  '/etc/ssh/ssh_host_rsa_key.pub',
  '/etc/ssh/ssh_host_ecdsa_key',
  '/etc/ssh/ssh_host_ecdsa_key.pub',
  '/etc/ssh/ssh_host_ed25519_key',
  '/etc/ssh/ssh_host_ed25519_key.pub',
  '/var/lib/dbus/machine-id',
];

/** Packages on top of minbase. No Recommends: each one costs build and boot time. */
export const DEBIAN_PACKAGES = [
  'linux-image-amd64',
  'systemd-sysv',
  'udev',
  'dbus',
  'openssh-server',
  'iproute2',
  'netbase',
  'procps',
  'ca-certificates',
];

/** dpkg path filters: documentation and translations are a third of the files, and nobody reads them on a server. */
export const DPKG_EXCLUDES = [
  'path-exclude=/usr/share/man/*',
  'path-exclude=/usr/share/doc/*',
  'path-include=/usr/share/doc/*/copyright',
  'path-exclude=/usr/share/info/*',
  'path-exclude=/usr/share/locale/*',
  'path-include=/usr/share/locale/locale.alias',
];

/**
 * Bumped when the build itself (debian-base.ts) changes in a way the data above does not show.
 * 2: ssh.service replaced (GUEST_FILES) before being enabled.
 * 3: the initramfs runs Provisional's /init (EARLY_FILES); unused drivers blacklisted.
 */
const RECIPE_REVISION = 3;

/**
 * A short key of everything that decides what the debian-12 base is: its cache folder is named
 * by it, so a changed recipe builds a new base (beside the old one, which the versions built on
 * it keep using) instead of reusing a base made the old way.
 */
export function debianRecipeKey(diskSizeGiB: number): string {
  const recipe = { RECIPE_REVISION, suite: SUITE, diskSizeGiB, DEBIAN_APPEND, EARLY_FILES, GUEST_FILES, ENABLE_UNITS, MASK_UNITS, REMOVE_FILES, DEBIAN_PACKAGES, DPKG_EXCLUDES };
  return createHash('sha256').update(JSON.stringify(recipe)).digest('hex').slice(0, 16);
}
