/**
 * The local provider's endpoints: one HAProxy per image and environment (haproxy.ts), listening
 * on `address:port` and balancing across the members' `target-port`. Each endpoint is a folder,
 *
 *   dataDir()/local/<project>/endpoints/<env>--<image>/   endpoint.json, haproxy.cfg, haproxy.pid
 *
 * endpoint.json holds what another command needs to find it again (the ref, the spec, the
 * members and where HAProxy reaches each). How HAProxy reaches a machine's target-port is the
 * provider's business (`reach`: a host forward added to the machine's QEMU), so that the balancer
 * itself is tested without booting anything.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { ProviderError, throwIfAborted } from '../../core/errors.js';
import { sleep } from '../../core/wait.js';
import { readSpec } from '../kit/endpoints.js';
import type { EndpointMember, EndpointRef, Endpoints, EndpointStatus, HttpHealthCheck, Machine } from '../types.js';
import { readJson, writeJsonAtomic } from './files.js';
import { adminOk, adminSocket, CHECK, runningPid, serverStats, start, stop, writeConfig, type HaproxyMember, type HaproxySetup } from './haproxy.js';
import { projectDir } from './layout.js';
import { localEndpointSchema, type LocalEndpointSpec } from './settings.js';

/** Where HAProxy connects to reach `targetPort` on a machine. */
export type Reach = (machine: Pick<Machine, 'id' | 'name'>, targetPort: number, signal: AbortSignal) => Promise<{ host: string; port: number }>;

interface EndpointRecord {
  ref: EndpointRef;
  spec: LocalEndpointSpec;
  health?: HttpHealthCheck;
  members: (HaproxyMember & { name: string })[];
}

const RECORD = 'endpoint.json';

export class LocalEndpoints implements Endpoints {
  constructor(
    private readonly project: string,
    private readonly reach: Reach,
  ) {}

  private dir(ref: EndpointRef): string {
    return join(projectDir(ref.project), 'endpoints', `${ref.environment}--${ref.image}`);
  }

  private setup(record: EndpointRecord): HaproxySetup {
    const dir = this.dir(record.ref);
    return {
      dir,
      socket: adminSocket(dir),
      address: record.spec.address,
      port: record.spec.port,
      protocol: record.spec.protocol,
      health: record.health && { path: record.health.path, status: record.health.status },
      members: record.members,
    };
  }

  private read(ref: EndpointRef): Promise<EndpointRecord | undefined> {
    return readJson<EndpointRecord>(join(this.dir(ref), RECORD));
  }

  /** Record and config first, so that a HAProxy started again has what the runtime API was told. */
  private async save(record: EndpointRecord): Promise<HaproxySetup> {
    const setup = this.setup(record);
    await writeConfig(setup);
    await writeJsonAtomic(join(setup.dir, RECORD), record);
    return setup;
  }

  /** The endpoint's HAProxy runs (started again if it died: it is supervised by every command). */
  private async running(record: EndpointRecord): Promise<HaproxySetup> {
    const setup = this.setup(record);
    if (!(await runningPid(setup.dir))) await start(setup);
    return setup;
  }

  async check(ref: EndpointRef, spec: unknown): Promise<string | undefined> {
    const wanted = readSpec(localEndpointSchema, spec, 'local');
    const record = await this.read(ref);
    const ours = record && record.spec.address === wanted.address && record.spec.port === wanted.port && (await runningPid(this.dir(ref)));
    if (ours) return undefined;
    const taken = await portTaken(wanted.address, wanted.port);
    return taken && `${wanted.address}:${wanted.port} is ${taken}; choose another port, or stop what holds it`;
  }

  async ensure(ref: EndpointRef, spec: unknown, signal: AbortSignal, opts?: { health?: HttpHealthCheck }): Promise<EndpointStatus> {
    throwIfAborted(signal);
    const wanted = readSpec(localEndpointSchema, spec, 'local');
    const old = await this.read(ref);
    const record: EndpointRecord = { ref, spec: wanted, health: opts?.health, members: old?.members ?? [] };
    await mkdir(this.dir(ref), { recursive: true });
    await mkdir(dirname(this.setup(record).socket), { recursive: true, mode: 0o700 });
    const pid = await runningPid(this.dir(ref));
    const changed = JSON.stringify([old?.spec, old?.health]) !== JSON.stringify([record.spec, record.health]);
    const setup = await this.save(record);
    // A changed listener or check: a seamless reload (the new HAProxy takes the old one's sockets).
    if (!pid) await start(setup);
    else if (changed) await start(setup, pid);
    return (await this.status(ref, spec, signal))!;
  }

  async attach(ref: EndpointRef, spec: unknown, machines: Machine[], signal: AbortSignal): Promise<void> {
    const record = await this.mustRead(ref);
    const setup = await this.running(record);
    const added: string[] = [];
    for (const machine of machines) {
      const present = record.members.find((m) => m.server === machine.id);
      const at = present ?? { server: machine.id, name: machine.name, ...(await this.reach(machine, record.spec['target-port'], signal)) };
      if (!present) {
        record.members.push(at);
        await this.save(record);
        await adminOk(setup.socket, `add server members/${at.server} ${at.host}:${at.port} ${CHECK}`);
        await adminOk(setup.socket, `enable health members/${at.server}`);
      }
      // A member drained earlier (an interrupted deploy putting old servers back) is simply made ready again.
      await adminOk(setup.socket, `set server members/${at.server} state ready`);
      added.push(at.server);
    }
    // Resolves once HAProxy sends them traffic: its own checks have passed.
    await waitFor(async () => {
      const stats = await serverStats(setup.socket);
      // "UP 1/2" is a server on its way (up or down): wait for HAProxy's own check to settle on UP.
      return added.every((s) => /^(UP|no check)$/.test(stats.find((x) => x.server === s)?.status ?? ''));
    }, 60_000, signal, () => `HAProxy did not find ${machines.map((m) => m.name).join(', ')} healthy within 60 s`);
  }

  async detach(ref: EndpointRef, _spec: unknown, machines: Pick<Machine, 'id' | 'name'>[], drainMs: number, signal: AbortSignal): Promise<void> {
    const record = await this.read(ref);
    if (!record) return;
    const leaving = record.members.filter((m) => machines.some((x) => x.id === m.server));
    if (!leaving.length) return;
    const setup = await this.running(record);
    for (const m of leaving) await adminOk(setup.socket, `set server members/${m.server} state drain`);
    // Draining: no new connections; open ones get up to drainMs to finish.
    const deadline = performance.now() + drainMs;
    while (performance.now() < deadline) {
      const stats = await serverStats(setup.socket);
      if (leaving.every((m) => !(stats.find((x) => x.server === m.server)?.current ?? 0))) break;
      await sleep(Math.min(100, Math.max(1, deadline - performance.now())), signal);
    }
    for (const m of leaving) {
      await adminOk(setup.socket, `set server members/${m.server} state maint`);
      await adminOk(setup.socket, `shutdown sessions server members/${m.server}`);
      await adminOk(setup.socket, `del server members/${m.server}`);
    }
    record.members = record.members.filter((m) => !leaving.includes(m));
    await this.save(record);
  }

  async status(ref: EndpointRef, _spec?: unknown, _signal?: AbortSignal): Promise<EndpointStatus | undefined> {
    const record = await this.read(ref);
    if (!record) return undefined;
    const setup = this.setup(record);
    const stats = (await runningPid(setup.dir)) ? await serverStats(setup.socket).catch(() => []) : [];
    const members: EndpointMember[] = record.members.map((m) => ({ machineId: m.server, name: m.name, state: memberState(stats.find((s) => s.server === m.server)?.status) }));
    return { kind: 'haproxy', address: `${record.spec.address}:${record.spec.port}`, members };
  }

  async remove(ref: EndpointRef): Promise<void> {
    const dir = this.dir(ref);
    if (!existsSync(dir)) return;
    await stop(dir);
    await rm(dir, { recursive: true, force: true });
    await rm(adminSocket(dir), { force: true });
  }

  async list(project: string, signal: AbortSignal): Promise<(EndpointRef & EndpointStatus)[]> {
    const root = join(projectDir(project), 'endpoints');
    const names = await readdir(root).catch(() => [] as string[]);
    const found: (EndpointRef & EndpointStatus)[] = [];
    for (const name of names.sort()) {
      const record = await readJson<EndpointRecord>(join(root, name, RECORD)).catch(() => undefined);
      const status = record && (await this.status(record.ref));
      if (status) found.push({ ...record.ref, ...status });
      throwIfAborted(signal);
    }
    return found;
  }

  private async mustRead(ref: EndpointRef): Promise<EndpointRecord> {
    const record = await this.read(ref);
    if (!record) throw new ProviderError({ provider: 'local', operation: 'attach', message: `no endpoint for ${ref.image} in ${ref.environment} (ensure it first)` });
    return record;
  }
}

function memberState(status: string | undefined): EndpointMember['state'] {
  if (!status) return 'unknown';
  if (/^DRAIN|NOLB/.test(status)) return 'draining';
  if (/^MAINT/.test(status)) return 'unknown';
  // "UP 1/2": still getting requests (one check failed); "DOWN 1/2": not yet (one check passed).
  if (/^(UP|no check)/.test(status)) return 'healthy';
  if (/^DOWN/.test(status)) return status.includes('/') ? 'joining' : 'unhealthy';
  return 'unknown';
}

/** Why ADDRESS:PORT cannot be listened on, or undefined when it can. */
function portTaken(address: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) =>
      resolve(err.code === 'EADDRINUSE' ? 'in use by another program' : err.code === 'EADDRNOTAVAIL' ? 'not an address of this computer' : `not usable (${err.code ?? err.message})`),
    );
    server.listen(port, address, () => server.close(() => resolve(undefined)));
  });
}

async function waitFor(test: () => Promise<boolean>, timeoutMs: number, signal: AbortSignal, message: () => string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await test())) {
    if (performance.now() > deadline) throw new ProviderError({ provider: 'local', operation: 'attach', message: message() });
    await sleep(100, signal);
  }
}
