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
  type LaunchOptions,
  type LaunchRequest,
  type Machine,
  type Provider,
  type SourceImage,
} from '../../src/providers/types.js';
import { endpointContract, type EndpointContractOptions } from './endpoint-contract.js';
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
  /**
   * Two different sizes, as launch options (a droplet slug, an instance type, local memory), the
   * smaller first: a version built on the first must launch on both (a DigitalOcean snapshot needs
   * a disk at least as big as its builder's).
   */
  sizes: [LaunchOptions, LaunchOptions];
  /** Checks that a machine has the size `options` asked for: at the provider, or on the machine (`run` runs a command over SSH). */
  assertSize: (machine: Machine, options: LaunchOptions, run: (command: string) => Promise<string>) => Promise<void>;
  /** The provider's endpoint kinds (endpoint-contract.ts), if it has endpoints. */
  endpoints?: EndpointContractOptions;
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
    const meta = (version: string, parent: ImageVersionMetadata['parent'], marks: Pick<ImageVersionMetadata, 'testing'> = {}): ImageVersionMetadata => ({
      image,
      version,
      parent,
      inputHash: `sha256:${randomBytes(32).toString('hex')}`,
      toolVersion: 'contract',
      createdAt: new Date().toISOString(),
      ...marks,
    });

    /** A launch request whose labels name its source, so that each machine's labels differ with its image. */
    function request(machineName: string, source: SourceImage, key: Key, role: string, options?: LaunchOptions): LaunchRequest {
      const version = source.kind === 'version' ? source.version.version : 'base';
      return { name: machineName, source, authorizedKey: key.publicKey, labels: { ...labels(role), [LABELS.version]: version }, options };
    }

    function track(machine: Machine, req: LaunchRequest): Machine {
      machines.set(machine.id, machine);
      assert.equal(typeof machine.id, 'string');
      assert.equal(machine.name, req.name);
      assert.ok(machine.ssh.port > 0, 'the machine has an SSH port');
      assert.equal(machine.labels[LABELS.run], run, 'the machine carries its labels');
      assert.equal(machine.labels[LABELS.version], req.labels[LABELS.version], `${req.name} carries the labels of its own request`);
      return machine;
    }

    async function launch(machineName: string, source: SourceImage, key: Key, role: string, options?: LaunchOptions): Promise<Machine> {
      const req = request(machineName, source, key, role, options);
      return track(await provider.launchMachine(req, signal), req);
    }

    /**
     * What a machine runs: the image written into /root/contract-image by the build of each version
     * (none on the base), its size, and its labels as the provider stores them (listServers).
     */
    async function assertRuns(machine: Machine, ssh: Client, source: SourceImage, options: LaunchOptions | undefined): Promise<void> {
      const result = await sshExec(ssh, 'cat /root/contract-image 2>/dev/null || echo none');
      assert.equal(result.stdout.trim(), source.kind === 'version' ? source.version.version : 'none', `${machine.name} runs from its own image`);
      if (options) await opts.assertSize(machine, options, async (command) => (await sshExec(ssh, command)).stdout);
      const listed = (await provider.listServers({ run }, signal)).find((s) => s.id === machine.id);
      assert.ok(listed, `${machine.name} is listed`);
      assert.equal(listed.labels[LABELS.version], machine.labels[LABELS.version], `${machine.name} is stored with the labels of its own request`);
    }

    async function destroy(machine: Machine): Promise<void> {
      await provider.destroyMachine(machine, signal);
      machines.delete(machine.id);
    }

    /**
     * Build a version the way the pipeline does: ssh, write, clean, power off, stop, snapshot,
     * destroy. The builder (launched with `options`) is checked first: labels, image, size.
     */
    async function buildVersion(
      source: SourceImage,
      script: string,
      version: string,
      parent: ImageVersionMetadata['parent'],
      options?: LaunchOptions,
      extra: Partial<ImageVersionMetadata> = {},
    ): Promise<ImageVersion> {
      const key = freshKey();
      const builder = await launch(`provisional-build-${image}-${run}`, source, key, 'builder', options);
      const ssh = await waitForSsh(builder.ssh, key.privateKey, sshTimeoutMs);
      await assertRuns(builder, ssh, source, options);
      const result = await sshExec(ssh, `${script} && echo ${version} > /root/contract-image && ${CLEAN_FOR_SNAPSHOT}`);
      assert.equal(result.code, 0, `the build commands failed: ${result.stderr}`);
      await powerOff(ssh);
      await provider.stopMachine(builder, signal);
      const saved = await provider.snapshotMachine(builder, { ...meta(version, parent), ...extra }, signal);
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
      // What the ref resolves to (recorded as versions' baseId, compared by image update): the same however asked.
      assert.equal(base.kind === 'base' && typeof base.identity, 'string');
      assert.equal(await provider.resolveBase(opts.baseRef, signal), base.kind === 'base' ? base.identity : undefined);
      assert.equal(listed.id, base.kind === 'base' ? base.identity : undefined, 'the listed base carries its current id');
      assert.equal(await provider.resolveBase(`no-such-base-${run}`, signal), undefined, 'an unknown base resolves to nothing');
    });

    it('names the size of a machine launched with given options (a version records its builder size)', () => {
      const [small, large] = opts.sizes.map((o) => provider.sizeOf(o));
      assert.match(small!, /\S/);
      assert.notEqual(small, large, 'two sizes are named apart');
      assert.match(provider.sizeOf(undefined), /\S/, 'the default size has a name');
    });

    it('builds a version from the base: launch, SSH with the launch key, power off, stop, snapshot', stepTimeout, async () => {
      const provenance = { commit: 'c0ffee'.repeat(6) + 'c0ff', dirty: true, builderSize: provider.sizeOf(undefined), scripts: Array.from({ length: 60 }, (_, i) => `${10 + i}-script-with-a-long-name.sh`), tests: ['10-smoke'] };
      const baseId = base.kind === 'base' ? base.identity : 'none';
      first = await buildVersion(base, `echo ${marker} > /root/contract-marker`, `${image}-20260101000001`, { kind: 'base', ref: opts.baseRef }, undefined, { baseId, provenance });
      assert.equal(first.image, image);
      assert.equal(first.version, `${image}-20260101000001`);
      assert.equal(first.status, 'available');
      const listed = (await provider.listImageVersions(signal)).find((v) => v.version === first.version);
      assert.ok(listed, 'the new version is listed');
      assert.deepEqual(listed.parent, { kind: 'base', ref: opts.baseRef });
      assert.equal(listed.inputHash, first.inputHash);
      assert.equal(listed.toolVersion, 'contract');
      assert.equal(listed.id, first.id);
      // The base id and the provenance are stored at the provider (tags cut to EC2's limits, a description, a file).
      assert.equal(listed.baseId, base.kind === 'base' ? base.identity : undefined);
      assert.equal(listed.provenance?.commit, 'c0ffee'.repeat(6) + 'c0ff');
      assert.equal(listed.provenance?.dirty, true);
      assert.equal(listed.provenance?.builderSize, provider.sizeOf(undefined));
      assert.deepEqual(listed.provenance?.tests, ['10-smoke']);
      assert.equal(listed.provenance?.scripts[0], '10-script-with-a-long-name.sh');
    });

    it('destroying a builder leaves nothing of it', async () => {
      const servers = await provider.listServers({ run }, signal);
      assert.deepEqual(servers.map((s) => s.name), [], 'no machine of this run is left');
    });

    it('builds a version on that version (its builder of the first size, saved marked as being tested), keeping what the first one wrote', stepTimeout, async () => {
      second = await buildVersion(
        { kind: 'version', version: first },
        `test "$(cat /root/contract-marker)" = ${marker} && echo second > /root/contract-second`,
        `${image}-20260101000002`,
        { kind: 'image', image, version: first.version },
        opts.sizes[0],
        { testing: run },
      );
      const listed = (await provider.listImageVersions(signal)).filter((v) => v.image === image).sort((a, b) => a.version.localeCompare(b.version));
      assert.deepEqual(listed.map((v) => v.version), [first.version, second.version]);
      assert.equal(second.testing, run, 'the snapshot keeps the testing mark it was saved with');
      assert.deepEqual(listed.map((v) => v.testing), [undefined, run], 'and lists it');
    });

    it('changes a stored version\'s marks (updateVersionMetadata): lifts testing, sets and lifts revoked; the rest stays', async () => {
      const unchanged = (v: ImageVersion) => ({ image: v.image, version: v.version, parent: v.parent, inputHash: v.inputHash, toolVersion: v.toolVersion, createdAt: v.createdAt, id: v.id });
      const listedNow = async (v: ImageVersion) => (await provider.listImageVersions(signal)).find((x) => x.version === v.version)!;
      const tested = await provider.updateVersionMetadata(second, { testing: null }, signal);
      assert.equal(tested.testing, undefined);
      assert.equal((await listedNow(second)).testing, undefined, 'the mark is lifted at the provider');
      assert.deepEqual(unchanged(await listedNow(second)), unchanged(second));
      const revoked = { reason: 'broke TLS: "ca-certificates" missing', at: '2026-01-02T03:04:05.000Z' };
      const marked = await provider.updateVersionMetadata(second, { revoked }, signal);
      assert.deepEqual(marked.revoked, revoked);
      const listed = await listedNow(second);
      assert.deepEqual(listed.revoked, revoked, 'every machine sees the mark: it is stored at the provider');
      assert.equal(listed.status, 'available');
      assert.deepEqual(unchanged(listed), unchanged(second));
      assert.equal((await listedNow(first)).revoked, undefined, 'other versions are untouched');
      await provider.updateVersionMetadata(second, { revoked: null }, signal);
      const restored = await listedNow(second);
      assert.equal(restored.revoked, undefined);
      assert.equal(restored.testing, undefined);
      assert.deepEqual(unchanged(restored), unchanged(second));
    });

    it('refuses to delete a version another version is built on, naming it', async () => {
      await assert.rejects(provider.deleteImageVersion(first, signal), (err: Error) => {
        assert.match(err.message, new RegExp(second.version));
        return true;
      });
      assert.ok((await provider.listImageVersions(signal)).some((v) => v.version === first.version), 'still listed');
    });

    it('launches a server (second size) from the newest version with another key; it has both layers and its own host keys', stepTimeout, async () => {
      const key = freshKey();
      const source: SourceImage = { kind: 'version', version: second };
      const server = await launch(`server-${run}`, source, key, 'server', opts.sizes[1]);
      let ssh: Client | undefined;
      try {
        ssh = await waitForSsh(server.ssh, key.privateKey, sshTimeoutMs);
        await assertRuns(server, ssh, source, opts.sizes[1]);
        const result = await sshExec(ssh, 'cat /root/contract-marker /root/contract-second && ls /etc/ssh/ssh_host_*_key.pub | wc -l && cat /etc/machine-id');
        assert.equal(result.code, 0, result.stderr);
        const [m1, m2, keys, machineId] = result.stdout.trim().split('\n');
        assert.equal(m1, marker);
        assert.equal(m2, 'second');
        assert.ok(Number(keys) >= 1, 'host keys were made at boot');
        assert.match(machineId ?? '', /^[0-9a-f]{32}$/, 'a machine-id was made at boot');
        const servers = await provider.listServers({ run, role: 'server' }, signal);
        assert.deepEqual(servers.map((s) => [s.name, s.state]), [[server.name, 'running']]);
      } finally {
        ssh?.end();
      }
      // Destroying a running machine is allowed (deploy replaces servers that way).
      await destroy(server);
      await opts.assertMachineGone?.(server);
      await provider.destroyMachine(server, signal); // idempotent
      assert.deepEqual(await provider.listServers({ run }, signal), []);
    });

    it('a batch of two images and two sizes, and another launch at once: each machine runs its own image, size and labels, and takes every key of its request', stepTimeout, async () => {
      // The two requests share nothing one create call could: a provider that took the first
      // request's image, size or labels for the whole batch fails here.
      const key = freshKey();
      // A deploy authorises two keys (the project's and the user's own): both must let SSH in.
      // They are new to the provider, and a deploy launches each image's servers at once, so a
      // second launch with the same keys runs beside the batch: a provider that registers keys
      // (or anything else its servers share) by looking and then creating must not fail either
      // launch when both look before either creates.
      const userKey = freshKey();
      const keys = `${key.publicKey.trim()}\n${userKey.publicKey.trim()}\n`;
      const reqs = [
        request(`batch-a-${run}`, { kind: 'version', version: second }, key, 'server', opts.sizes[0]),
        request(`batch-b-${run}`, { kind: 'version', version: first }, key, 'server', opts.sizes[1]),
      ].map((r) => ({ ...r, authorizedKey: keys }));
      const beside = { ...request(`beside-${run}`, { kind: 'version', version: second }, key, 'server', opts.sizes[0]), authorizedKey: keys };
      const [batch, other] = await Promise.allSettled([provider.launchMachines(reqs, signal), provider.launchMachines([beside], signal)]);
      for (const r of [batch, other]) if (r.status === 'fulfilled') r.value.forEach((m) => machines.set(m.id, m));
      if (batch.status === 'rejected') throw batch.reason;
      if (other.status === 'rejected') throw other.reason;
      const launched = batch.value;
      assert.deepEqual(launched.map((m) => m.name), reqs.map((r) => r.name), 'machines come back in the order of the requests');
      launched.forEach((m, i) => track(m, reqs[i]!));
      track(other.value[0]!, beside);
      for (const [machine, req] of [...launched.map((m, i) => [m, reqs[i]!] as const), [other.value[0]!, beside] as const]) {
        const ssh = await waitForSsh(machine.ssh, key.privateKey, sshTimeoutMs);
        try {
          await assertRuns(machine, ssh, req.source, req.options);
        } finally {
          ssh.end();
        }
        const asUser = await waitForSsh(machine.ssh, userKey.privateKey, sshTimeoutMs);
        asUser.end();
      }
      for (const machine of [...launched, other.value[0]!]) await destroy(machine);
      assert.deepEqual(await provider.listServers({ run }, signal), []);
    });

    if (opts.endpoints) {
      it('has endpoints', () => assert.ok(provider.endpoints, `${name} has endpoints`));
      endpointContract(
        {
          provider: () => provider,
          version: () => second,
          project: opts.project,
          run,
          image,
          track: (m) => machines.set(m.id, m),
          untrack: (m) => machines.delete(m.id),
          sshTimeoutMs,
        },
        opts.endpoints,
      );
    }

    it('deletes versions, newest first; they are no longer listed', async () => {
      await provider.deleteImageVersion(second, signal);
      await provider.deleteImageVersion(first, signal);
      versions.length = 0;
      const left = (await provider.listImageVersions(signal)).filter((v) => v.image === image);
      assert.deepEqual(left, []);
    });
  });
}
