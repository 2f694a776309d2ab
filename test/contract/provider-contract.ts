/**
 * The provider contract suite: what build/ and deploy/ rely on, exercised through the Provider
 * interface only. Every provider (local QEMU, the DigitalOcean and EC2 emulators) runs it.
 *
 * The steps depend on each other (a version needs a builder, a server needs a version), so they
 * run in order inside one describe; `after` removes whatever an earlier failure left.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import ssh2, { type Client } from 'ssh2';
import {
  LABELS,
  type ImageVersion,
  type ImageVersionMetadata,
  type Machine,
  type Provider,
  type SourceImage,
} from '../../src/providers/types.js';
import { powerOff, sshExec, waitForSsh } from './ssh.js';
import { generateKeyPair } from '../../src/ssh/client.js';

export interface ContractOptions {
  /** A base the provider offers, e.g. `debian-12`. */
  baseRef: string;
  /** Project name the provider was created with (labels carry it). */
  project: string;
  /** How long a machine may take to answer SSH (TCG is slow; default 300 s). */
  sshTimeoutMs?: number;
  /** How long preparing the base may take (the local provider builds it on first use; default 30 min). */
  prepareTimeoutMs?: number;
  /** Provider-specific check that nothing of a destroyed machine remains (files, processes). */
  assertMachineGone?: (machine: Machine) => Promise<void>;
}

interface Key {
  publicKey: string;
  privateKey: string;
}

function freshKey(): Key {
  return generateKeyPair('provisional-contract');
}

/** What the build pipeline removes before a snapshot (see src/pipeline/pipeline.ts): the key, the host keys, the machine-id. */
const CLEAN_FOR_SNAPSHOT = 'rm -f /root/.ssh/authorized_keys /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub && : > /etc/machine-id && sync';

export function providerContract(
  name: string,
  makeProvider: () => Promise<{ provider: Provider; cleanup(): Promise<void> }>,
  opts: ContractOptions,
): void {
  const sshTimeoutMs = opts.sshTimeoutMs ?? 300_000;
  const stepTimeout = { timeout: sshTimeoutMs + 180_000 };
  const run = randomBytes(4).toString('hex');
  const image = `contract-${run}`;
  const marker = `marker-${randomBytes(8).toString('hex')}`;
  const signal = new AbortController().signal;

  describe(`provider contract: ${name}`, () => {
    let provider: Provider;
    let cleanup: () => Promise<void>;
    let base: SourceImage;
    let first: ImageVersion;
    let second: ImageVersion;
    const machines = new Map<string, Machine>();
    const versions: ImageVersion[] = [];

    const labels = (role: string) => ({ [LABELS.project]: opts.project, [LABELS.run]: run, [LABELS.role]: role, [LABELS.image]: image });
    const meta = (version: string, parent: ImageVersionMetadata['parent']): ImageVersionMetadata => ({
      image,
      version,
      parent,
      inputHash: `sha256:${randomBytes(32).toString('hex')}`,
      toolVersion: 'contract',
      createdAt: new Date().toISOString(),
    });

    async function launch(machineName: string, source: SourceImage, key: Key, role: string): Promise<Machine> {
      const machine = await provider.launchMachine(
        { name: machineName, source, authorizedKey: key.publicKey, labels: labels(role) },
        signal,
      );
      machines.set(machine.id, machine);
      assert.equal(typeof machine.id, 'string');
      assert.equal(machine.name, machineName);
      assert.ok(machine.ssh.port > 0, 'the machine has an SSH port');
      assert.equal(machine.labels[LABELS.run], run, 'the machine carries its labels');
      return machine;
    }

    async function destroy(machine: Machine): Promise<void> {
      await provider.destroyMachine(machine, signal);
      machines.delete(machine.id);
    }

    /** Build a version the way the pipeline does: ssh, write, clean, power off, stop, snapshot, destroy. */
    async function buildVersion(source: SourceImage, script: string, version: string, parent: ImageVersionMetadata['parent']): Promise<ImageVersion> {
      const key = freshKey();
      const builder = await launch(`provisional-build-${image}-${run}`, source, key, 'builder');
      const ssh = await waitForSsh(builder.ssh, key.privateKey, sshTimeoutMs);
      const result = await sshExec(ssh, `${script} && ${CLEAN_FOR_SNAPSHOT}`);
      assert.equal(result.code, 0, `the build commands failed: ${result.stderr}`);
      await powerOff(ssh);
      await provider.stopMachine(builder, signal);
      const saved = await provider.snapshotMachine(builder, meta(version, parent), signal);
      versions.push(saved);
      await destroy(builder);
      return saved;
    }

    before(async () => {
      ({ provider, cleanup } = await makeProvider());
    });

    after(async () => {
      // Whatever a failed step left: machines first (they use the versions), then versions, newest first.
      const problems: string[] = [];
      for (const machine of machines.values()) {
        await provider.destroyMachine(machine, new AbortController().signal).catch((e: Error) => problems.push(`machine ${machine.name}: ${e.message}`));
      }
      for (const version of [...versions].reverse()) {
        await provider.deleteImageVersion(version, new AbortController().signal).catch((e: Error) => problems.push(`version ${version.version}: ${e.message}`));
      }
      await provider?.close?.();
      await cleanup?.();
      assert.deepEqual(problems, [], 'cleanup after the contract suite');
    });

    it('describes itself in one line', async () => {
      const line = await provider.describe();
      assert.match(line, /\S/);
      assert.ok(!line.includes('\n'), 'one line');
    });

    it('prepares its base image, which is then listed ready', { timeout: (opts.prepareTimeoutMs ?? 30 * 60_000) + 60_000 }, async () => {
      base = await provider.prepareBase(opts.baseRef, signal);
      assert.equal(base.kind, 'base');
      const bases = await provider.listBaseImages(signal);
      const listed = bases.find((b) => b.ref === opts.baseRef);
      assert.ok(listed, `${opts.baseRef} is listed`);
      assert.equal(listed.ready, true);
    });

    it('builds a version from the base: launch, SSH with the launch key, power off, stop, snapshot', stepTimeout, async () => {
      first = await buildVersion(base, `echo ${marker} > /root/contract-marker`, `${image}-20260101000001`, { kind: 'base', ref: opts.baseRef });
      assert.equal(first.image, image);
      assert.equal(first.version, `${image}-20260101000001`);
      assert.equal(first.status, 'available');
      const listed = (await provider.listImageVersions(signal)).find((v) => v.version === first.version);
      assert.ok(listed, 'the new version is listed');
      assert.deepEqual(listed.parent, { kind: 'base', ref: opts.baseRef });
      assert.equal(listed.inputHash, first.inputHash);
      assert.equal(listed.toolVersion, 'contract');
      assert.equal(listed.id, first.id);
    });

    it('destroying a builder leaves nothing of it', async () => {
      const servers = (await provider.listServers?.({ run }, signal)) ?? [];
      assert.deepEqual(servers.map((s) => s.name), [], 'no machine of this run is left');
    });

    it('builds a version on that version, keeping what the first one wrote', stepTimeout, async () => {
      second = await buildVersion(
        { kind: 'version', version: first },
        `test "$(cat /root/contract-marker)" = ${marker} && echo second > /root/contract-second`,
        `${image}-20260101000002`,
        { kind: 'image', image, version: first.version },
      );
      const listed = (await provider.listImageVersions(signal)).filter((v) => v.image === image).map((v) => v.version).sort();
      assert.deepEqual(listed, [first.version, second.version]);
    });

    it('refuses to delete a version another version is built on, naming it', async () => {
      await assert.rejects(provider.deleteImageVersion(first, signal), (err: Error) => {
        assert.match(err.message, new RegExp(second.version));
        return true;
      });
      assert.ok((await provider.listImageVersions(signal)).some((v) => v.version === first.version), 'still listed');
    });

    it('launches a server from the newest version with another key; it has both layers and its own host keys', stepTimeout, async () => {
      const key = freshKey();
      const server = await launch(`server-${run}`, { kind: 'version', version: second }, key, 'server');
      let ssh: Client | undefined;
      try {
        ssh = await waitForSsh(server.ssh, key.privateKey, sshTimeoutMs);
        const result = await sshExec(ssh, 'cat /root/contract-marker /root/contract-second && ls /etc/ssh/ssh_host_*_key.pub | wc -l && cat /etc/machine-id');
        assert.equal(result.code, 0, result.stderr);
        const [m1, m2, keys, machineId] = result.stdout.trim().split('\n');
        assert.equal(m1, marker);
        assert.equal(m2, 'second');
        assert.ok(Number(keys) >= 1, 'host keys were made at boot');
        assert.match(machineId ?? '', /^[0-9a-f]{32}$/, 'a machine-id was made at boot');
        const servers = (await provider.listServers?.({ run, role: 'server' }, signal)) ?? [];
        if (provider.listServers) assert.deepEqual(servers.map((s) => [s.name, s.state]), [[server.name, 'running']]);
      } finally {
        ssh?.end();
      }
      // Destroying a running machine is allowed (deploy replaces servers that way).
      await destroy(server);
      await opts.assertMachineGone?.(server);
      await provider.destroyMachine(server, signal); // idempotent
      assert.deepEqual((await provider.listServers?.({ run }, signal)) ?? [], []);
    });

    it('deletes versions, newest first; they are no longer listed', async () => {
      await provider.deleteImageVersion(second, signal);
      await provider.deleteImageVersion(first, signal);
      versions.length = 0;
      const left = (await provider.listImageVersions(signal)).filter((v) => v.image === image);
      assert.deepEqual(left, []);
    });
  });
}
