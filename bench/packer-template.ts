/**
 * The Packer 1.6.6 template a user would write to build from our debian-12 disk with the `qemu`
 * builder (https://www.packer.io/docs/builders/qemu, v1.6.x): the disk as `iso_url` with
 * `disk_image`, everything else left at its default except the accelerator, memory and CPUs.
 *
 * Defaults that matter for the figures: without `use_backing_file` Packer copies the whole disk
 * into its output directory; `disk_size` (40960M) makes it resize the copy; `boot_wait` (10s)
 * passes before it even tries SSH; after the shutdown it rewrites the disk (`qemu-img convert`,
 * `skip_compaction` false); machine type `pc` and QEMU's default CPU model.
 *
 * The base has no boot loader: the machine boots the base's kernel directly, and systemd gives
 * root the key from an SMBIOS credential (systemd >= 252), exactly as the local provider does.
 */
export interface PackerTemplateInput {
  disk: string;
  diskSha256: string;
  kernel: string;
  initrd?: string;
  append: string;
  publicKey: string;
  privateKeyFile: string;
  outputDir: string;
  memoryMiB: number;
  cpus: number;
  scriptFile: string;
  /** Give the guest this machine type and CPU model instead of Packer's defaults (pc, QEMU's default CPU). */
  guest?: { machineType: string; cpu: string };
}

export function packerTemplate(input: PackerTemplateInput): unknown {
  const credential = Buffer.from(`${input.publicKey.trim()}\n`).toString('base64');
  return {
    builders: [
      {
        type: 'qemu',
        iso_url: input.disk,
        iso_checksum: `sha256:${input.diskSha256}`,
        disk_image: true,
        format: 'qcow2',
        accelerator: 'tcg',
        memory: input.memoryMiB,
        cpus: input.cpus,
        headless: true,
        output_directory: input.outputDir,
        vm_name: 'bench.qcow2',
        communicator: 'ssh',
        ssh_username: 'root',
        ssh_private_key_file: input.privateKeyFile,
        shutdown_command: 'systemctl poweroff',
        ...(input.guest ? { machine_type: input.guest.machineType } : {}),
        qemuargs: [
          ...(input.guest ? [['-cpu', input.guest.cpu]] : []),
          ['-kernel', input.kernel],
          ...(input.initrd ? [['-initrd', input.initrd]] : []),
          ['-append', input.append],
          ['-smbios', `type=11,value=io.systemd.credential.binary:ssh.authorized_keys.root=${credential}`],
        ],
      },
    ],
    provisioners: [{ type: 'shell', script: input.scriptFile }],
  };
}
