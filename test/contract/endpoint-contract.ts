/**
 * The provider contract for Endpoints (types.ts): ensure (idempotent), attach (one, then a batch),
 * detach with drain, status, list and remove (idempotent), for every kind a provider has. Every
 * case sends real requests through the endpoint: each server runs a small HTTP responder that
 * answers with the version written into its own image (/root/contract-image) and its hostname read
 * on it, so an answer names the server that gave it, not what the API claims.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LABELS, type EndpointRef, type EndpointStatus, type HttpHealthCheck, type ImageVersion, type LaunchRequest, type Machine, type Provider } from '../../src/providers/types.js';
import { generateKeyPair } from '../../src/ssh/client.js';
import { answers, holdRequest, runOn, startResponder, whoAnswers } from '../emulators/traffic.js';
import { waitForSsh } from './ssh.js';

export interface EndpointKindCase {
  /** The `endpoint:` block as deploy passes it (e.g. {load-balancer: {port: 80, target-port: 8080}}). */
  spec: unknown;
  /** A reserved or Elastic IP: one server at a time. */
  single: boolean;
  /** Kind the status reports. */
  kind: string;
  /** The endpoint is the user's (an ELBv2 target group): remove only takes our servers out of it. */
  userOwned?: boolean;
  /** The image's HTTP health check, as deploy passes it to ensure. */
  health?: HttpHealthCheck;
}

export interface EndpointContractOptions {
  kinds: EndpointKindCase[];
  /** Port the servers answer HTTP on (the spec's target port). */
  webPort: number;
  /**
   * Where the servers' responder listens, when the test cannot reach the server's own address
   * (a QEMU guest, which its host forward reaches on 0.0.0.0): then the server is asked on itself.
   * By default its address, which the emulators' machines share with the host.
   */
  responderAddress?: string;
  /** Where a request to this endpoint goes: `address` when it has a port, else address:webPort. */
  target?(status: EndpointStatus): { host: string; port: number };
  /** Drain given to detach (ms). */
  drainMs?: number;
  /** Anything a provider needs before a kind (an ELBv2 target group and load balancer). */
  prepare?(kind: EndpointKindCase): Promise<EndpointKindCase>;
  /** Asserts nothing of a removed endpoint is left at the provider (listeners, addresses). */
  assertRemoved?(kind: EndpointKindCase, status: EndpointStatus): Promise<void>;
}

export interface EndpointContractContext {
  provider(): Provider;
  version(): ImageVersion;
  project: string;
  run: string;
  image: string;
  track(machine: Machine): void;
  untrack(machine: Machine): void;
  sshTimeoutMs: number;
}

function defaultTarget(webPort: number) {
  return (status: EndpointStatus) => {
    const m = /^(.*):(\d+)$/.exec(status.address);
    return m ? { host: m[1]!, port: Number(m[2]) } : { host: status.address, port: webPort };
  };
}

export function endpointContract(ctx: EndpointContractContext, opts: EndpointContractOptions): void {
  const signal = new AbortController().signal;
  const drainMs = opts.drainMs ?? 3000;
  const target = opts.target ?? defaultTarget(opts.webPort);

  for (const [index, declared] of opts.kinds.entries()) {
    describe(`endpoints: ${declared.kind}`, { timeout: ctx.sshTimeoutMs + 600_000 }, () => {
      const environment = `ep${index}`;
      const ref: EndpointRef = { project: ctx.project, environment, image: ctx.image };
      let kind = declared;
      let servers: { machine: Machine; says: string }[] = [];
      let address: { host: string; port: number };
      const whoIs = (answer: string) => servers.find((s) => s.says === answer)?.machine.name ?? answer;
      const ask = async (count: number) => (await answers(address.host, address.port, count)).map(whoIs);
      const p = () => ctx.provider().endpoints!;

      it('three servers answer HTTP with their own image and hostname', async () => {
        kind = opts.prepare ? await opts.prepare(declared) : declared;
        const key = generateKeyPair('provisional-contract');
        const version = ctx.version();
        const reqs: LaunchRequest[] = ['a', 'b', 'c'].map((n) => ({
          name: `ep-${n}-${environment}-${ctx.run}`,
          source: { kind: 'version', version },
          authorizedKey: key.publicKey,
          labels: { [LABELS.project]: ctx.project, [LABELS.run]: ctx.run, [LABELS.role]: 'server', [LABELS.image]: ctx.image, [LABELS.environment]: environment, [LABELS.version]: version.version },
        }));
        const launched = await ctx.provider().launchMachines(reqs, signal);
        launched.forEach((m) => ctx.track(m));
        servers = [];
        for (const machine of launched) {
          // Three machines booting at once may take a while (QEMU without KVM): SSH first, with the provider's timeout.
          (await waitForSsh(machine.ssh, key.privateKey, ctx.sshTimeoutMs)).end();
          // The running hostname, which the provider gives each machine (/etc/hostname is the image's: the same on every local machine).
          await startResponder(machine.ssh.host, machine.ssh.port, key.privateKey, opts.webPort, 'echo "$(cat /root/contract-image) $(cat /proc/sys/kernel/hostname)"', opts.responderAddress);
          const hostname = (await runOn(machine.ssh.host, machine.ssh.port, key.privateKey, 'cat /proc/sys/kernel/hostname')).trim();
          servers.push({ machine, says: `${version.version} ${hostname}` });
        }
        const [first] = launched;
        assert.equal(new Set(servers.map((s) => s.says)).size, servers.length, `each server answers with its own name: ${servers.map((s) => s.says).join(', ')}`);
        const direct = opts.responderAddress ? await askOn(first!, key.privateKey, opts.webPort) : await whoAnswers(first!.ssh.host, opts.webPort);
        assert.deepEqual(direct, { status: 200, body: servers[0]!.says }, 'a server answers with its own image and hostname');
      });

      it('ensure creates the endpoint once: a second ensure finds the same one, with no members', async () => {
        const first = await p().ensure(ref, kind.spec, signal, { health: kind.health });
        const again = await p().ensure(ref, kind.spec, signal, { health: kind.health });
        assert.equal(first.kind, kind.kind);
        assert.equal(again.address, first.address, 'the same endpoint');
        assert.deepEqual(again.members, []);
      });

      it('attach one server: every request is answered by it', async () => {
        const [a] = servers;
        await p().attach(ref, kind.spec, [a!.machine], signal);
        const status = (await p().status(ref, kind.spec, signal))!;
        assert.ok(status.address, 'the endpoint has an address once a server is attached');
        address = target(status);
        assert.deepEqual(status.members.map((m) => m.machineId), [a!.machine.id]);
        assert.deepEqual(new Set(await ask(6)), new Set([a!.machine.name]));
      });

      if (!declared.single) {
        it('attach a batch of two: requests go to all three servers', async () => {
          const [a, b, c] = servers;
          await p().attach(ref, kind.spec, [b!.machine, c!.machine], signal);
          await p().attach(ref, kind.spec, [b!.machine], signal); // a member attached again stays one member
          const status = (await p().status(ref, kind.spec, signal))!;
          assert.deepEqual(status.members.map((m) => m.machineId).sort(), [a, b, c].map((s) => s!.machine.id).sort());
          assert.deepEqual(new Set(await ask(9)), new Set([a, b, c].map((s) => s!.machine.name)));
        });

        it('detach two with drain: requests held open finish, new ones go only to the one left', async () => {
          const [a, b, c] = servers;
          // Round robin over three members: three held requests reach every member, a and b among them.
          const held = [await holdRequest(address.host, address.port), await holdRequest(address.host, address.port), await holdRequest(address.host, address.port)];
          const started = Date.now();
          const detaching = p().detach(ref, kind.spec, [a!.machine, b!.machine], drainMs, signal);
          await waitFor(async () => (await p().status(ref, kind.spec, signal))!.members.every((m) => m.machineId === c!.machine.id || m.state === 'draining'), 'a and b to stop taking connections');
          assert.deepEqual(new Set(await ask(6)), new Set([c!.machine.name]), 'new requests go only to c while a and b drain');
          const finished = (await Promise.all(held.map((h) => h.finish()))).map(whoIs);
          assert.deepEqual([...finished].sort(), [a, b, c].map((s) => s!.machine.name).sort(), 'the requests held on a, b and c finished');
          await detaching;
          assert.ok(Date.now() - started >= Math.min(drainMs, 1000), 'detach waited for the drain');
          assert.deepEqual((await p().status(ref, kind.spec, signal))!.members.map((m) => m.machineId), [c!.machine.id]);
          await p().detach(ref, kind.spec, [a!.machine], drainMs, signal); // not a member: ignored
          await p().detach(ref, undefined, [a!.machine], 0, signal); // nor without a spec (cleanup's call)
        });
      } else {
        it('attach refuses a batch (one server per address); attach another moves the address; a request held on the first finishes', async () => {
          const [a, b, c] = servers;
          await assert.rejects(p().attach(ref, kind.spec, [b!.machine, c!.machine], signal), /one server/);
          const heldOnA = await holdRequest(address.host, address.port);
          await p().attach(ref, kind.spec, [b!.machine], signal);
          assert.deepEqual(new Set(await ask(6)), new Set([b!.machine.name]), 'new requests go to b');
          assert.equal(whoIs(await heldOnA.finish()), a!.machine.name, 'the request held on a finished');
          await p().detach(ref, kind.spec, [a!.machine], drainMs, signal); // a no longer holds it: nothing moves
          assert.deepEqual(new Set(await ask(3)), new Set([b!.machine.name]));
        });

        it('detach the holder (without a spec, as cleanup does): the address moves to a remaining server, never to nothing', async () => {
          const [a, b, c] = servers;
          await ctx.provider().destroyMachine(a!.machine, signal);
          ctx.untrack(a!.machine);
          await p().detach(ref, undefined, [b!.machine], 0, signal);
          assert.deepEqual(new Set(await ask(6)), new Set([c!.machine.name]));
          assert.deepEqual((await p().status(ref, kind.spec, signal))!.members.map((m) => m.machineId), [c!.machine.id]);
        });
      }

      it('status and list show the endpoint with its members', async () => {
        const status = (await p().status(ref, kind.spec, signal))!;
        assert.equal(status.kind, kind.kind);
        const listed = (await p().list(ctx.project, signal)).filter((e) => e.environment === environment && e.image === ctx.image);
        assert.equal(listed.length, 1, 'listed once');
        assert.equal(listed[0]!.address, status.address);
        assert.deepEqual(listed[0]!.members.map((m) => m.machineId), status.members.map((m) => m.machineId));
        assert.deepEqual(status.members.map((m) => m.state), ['healthy']);
      });

      it('remove takes the endpoint away (twice, and without a spec as cleanup does, is fine); nothing answers on its address', async () => {
        const status = (await p().status(ref, kind.spec, signal))!;
        await p().remove(ref, undefined, signal);
        await p().remove(ref, kind.spec, signal);
        await p().remove(ref, undefined, signal);
        // A user's load balancer stays; our servers leave it (still draining at most).
        if (kind.userOwned) assert.deepEqual((await p().status(ref, kind.spec, signal))?.members.filter((m) => m.state !== 'draining'), [], 'none of our servers takes connections');
        else assert.equal(await p().status(ref, kind.spec, signal), undefined);
        assert.deepEqual((await p().list(ctx.project, signal)).filter((e) => e.environment === environment), []);
        const after = await whoAnswers(address.host, address.port, 2000);
        assert.ok('error' in after || after.status !== 200, `nothing answers on the removed endpoint (got ${JSON.stringify(after)})`);
        await opts.assertRemoved?.(kind, status);
        for (const s of servers) {
          await ctx.provider().destroyMachine(s.machine, signal);
          ctx.untrack(s.machine);
        }
      });
    });
  }
}

/** GET / on the machine itself (bash's /dev/tcp over SSH), for a server the test cannot reach: its status and body. */
async function askOn(machine: Machine, privateKey: string, port: number): Promise<{ status: number; body: string }> {
  const raw = await runOn(machine.ssh.host, machine.ssh.port, privateKey, `exec 3<>/dev/tcp/127.0.0.1/${port} && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3`);
  const [head = '', body = ''] = raw.split('\r\n\r\n');
  return { status: Number(/^HTTP\/1\.\d (\d+)/.exec(head)?.[1] ?? 0), body: body.trim() };
}

async function waitFor(probe: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
