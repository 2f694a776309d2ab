/**
 * The QEMU command line of a machine, as a pure function of what the machine is.
 */
import { acceleratorArgs, hardwareFor, type Accelerator, type GuestHardware } from './accelerator.js';
import type { BootSpec } from './base-record.js';
import { optionValue } from './qemu.js';
import type { PortForward } from './settings.js';
import { authorizedKeyLines, cloudConfig } from '../kit/cloud-config.js';

export interface MachineSpec {
  /** Run directory; also marks the process as ours (it is on the command line). */
  dir: string;
  name: string;
  hostname: string;
  accelerator: Accelerator;
  memoryMiB: number;
  cpus: number;
  overlay: string;
  boot: BootSpec;
  sshPort: number;
  ports: PortForward[];
  authorizedKey: string;
  qmp: string;
  serialLog: string;
  pidFile: string;
  /** A NoCloud seed folder for cloud-init, for images booted through their own boot loader. */
  seedDir?: string;
  /** Replaces parts of the hardware chosen for the accelerator (bench/boot-levers.ts compares them). */
  hardware?: Partial<GuestHardware>;
  /**
   * A machine saved and resumed (warm.ts): it has a VM generation ID device (a new ID at every
   * start, on which the guest kernel reseeds its RNG), and `incoming` is the saved state to
   * resume from instead of booting (a migration URI).
   */
  warm?: { incoming?: string };
}

/** systemd's credential for root's authorized_keys (systemd >= 252, tmpfiles.d/provision.conf). */
export const KEY_CREDENTIAL = 'ssh.authorized_keys.root';

export function smbiosCredential(name: string, value: string): string {
  // The binary form, base64: a key line has characters the plain form would need escaped (',').
  return `type=11,value=io.systemd.credential.binary:${name}=${Buffer.from(value).toString('base64')}`;
}

/** A host name the kernel and systemd accept: letters, digits, hyphens and dots, at most 63. */
export function hostnameFor(name: string): string {
  const cleaned = name
    .toLowerCase()
    .replace(/[^a-z0-9.-]+/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '')
    .slice(0, 63)
    .replace(/[-.]+$/g, '');
  return cleaned || 'machine';
}

export function machineArgs(spec: MachineSpec): string[] {
  const forwards = [
    `hostfwd=tcp:127.0.0.1:${spec.sshPort}-:22`,
    ...spec.ports.map((p) => `hostfwd=tcp:${p.address}:${p.hostPort}-:${p.guestPort}`),
  ];
  const hardware = { ...hardwareFor(spec.accelerator, !!spec.boot.kernel), ...spec.hardware };
  const args = [
    '-name', optionValue(spec.name),
    ...acceleratorArgs(hardware),
    '-M', hardware.machine,
    '-smp', String(spec.cpus),
    '-m', String(spec.memoryMiB),
    '-nodefaults',
    '-no-user-config',
    '-display', 'none',
    // A guest reboot ends the process: "powered off" is how stopMachine knows a machine stopped.
    '-no-reboot',
    '-drive', `file=${optionValue(spec.overlay)},if=virtio,format=qcow2,discard=unmap`,
    '-netdev', `user,id=net0,${forwards.join(',')}`,
    '-device', 'virtio-net-pci,netdev=net0',
    // Entropy for the guest's early boot (SSH host keys are generated then).
    '-device', 'virtio-rng-pci',
    '-smbios', smbiosCredential(KEY_CREDENTIAL, `${spec.authorizedKey.trim()}\n`),
    '-chardev', `file,id=serial0,path=${optionValue(spec.serialLog)}`,
    '-serial', 'chardev:serial0',
    '-chardev', `socket,id=qmp,path=${optionValue(spec.qmp)},server=on,wait=off`,
    '-mon', 'chardev=qmp,mode=control',
    '-pidfile', spec.pidFile,
    '-daemonize',
  ];
  if (spec.boot.kernel) {
    args.push('-kernel', spec.boot.kernel);
    if (spec.boot.initrd) args.push('-initrd', spec.boot.initrd);
    args.push('-append', `${spec.boot.append ?? ''} systemd.hostname=${spec.hostname}`.trim());
  }
  if (spec.warm) {
    args.push('-device', 'vmgenid,guid=auto');
    if (spec.warm.incoming) args.push('-incoming', spec.warm.incoming);
  }
  if (spec.seedDir) {
    args.push(
      '-blockdev', `driver=vvfat,node-name=seed,dir=${optionValue(spec.seedDir)},label=cidata,read-only=on`,
      '-device', 'virtio-blk-pci,drive=seed',
    );
  }
  return args;
}

/** cloud-init NoCloud seed: root gets the key (cloud images otherwise only give it to their default user). */
export function cloudInitSeed(instanceId: string, hostname: string, authorizedKey: string): { 'meta-data': string; 'user-data': string } {
  return {
    'meta-data': `instance-id: ${instanceId}\nlocal-hostname: ${hostname}\n`,
    'user-data': cloudConfig({ keys: authorizedKeyLines(authorizedKey), rootLogin: true }),
  };
}
