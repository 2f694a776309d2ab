/**
 * The local provider's endpoint for real: Debian's HAProxy in front of real HTTP servers on
 * loopback (the members stand in for servers' target ports; `reach` maps a machine to one), with
 * real requests. What only it shows, in HTTP mode with the image's HTTP health check: a taken port
 * refused, a drain under load that ends with the last open request, a member failing HAProxy's
 * check, a seamless reload, and a HAProxy started again after a SIGKILL. The Endpoints contract
 * (endpoint-contract.ts, run by local.test.ts in front of QEMU servers) covers ensure, attach,
 * detach, status, list and remove. Load is bounded: a few requests every 50 ms, for seconds, to
 * 127.0.0.1 only.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalEndpoints } from '../../src/providers/local/endpoints.js';
import { runningPid } from '../../src/providers/local/haproxy.js';
import { projectDir } from '../../src/providers/local/layout.js';
import type { EndpointRef, Machine } from '../../src/providers/types.js';
import { whoAnswers } from '../emulators/traffic.js';

process.env.PROVISIONAL_DATA_DIR = mkdtempSync(join(tmpdir(), 'local-endpoint-'));

const signal = new AbortController().signal;
const ref: EndpointRef = { project: 'ep', environment: 'staging', image: 'web' };

interface Member {
  machine: Machine;
  server: HttpServer;
  port: number;
  healthy: boolean;
  /** Slow requests it holds open now. */
  open: number;
}
const members = new Map<string, Member>();

async function member(name: string): Promise<Member> {
  const m: Member = { machine: { id: `${name}-id`, name, ssh: { host: '127.0.0.1', port: 22, user: 'root' }, labels: {} }, server: undefined!, port: 0, healthy: true, open: 0 };
  m.server = createHttpServer((req, res) => {
    if (req.url === '/up') res.statusCode = m.healthy ? 200 : 500;
    const hold = /^\/slow\?ms=(\d+)$/.exec(req.url ?? '');
    if (hold) m.open++;
    setTimeout(() => {
      if (hold) m.open--;
      res.end(name);
    }, hold ? Number(hold[1]) : 0);
  });
  await new Promise<void>((resolve) => m.server.listen(0, '127.0.0.1', resolve));
  m.port = (m.server.address() as { port: number }).port;
  members.set(m.machine.id, m);
  return m;
}

const reached: string[] = [];
const endpoints = () =>
  new LocalEndpoints('ep', async (machine, targetPort) => {
    reached.push(`${machine.name}:${targetPort}`);
    return { host: '127.0.0.1', port: members.get(machine.id)!.port };
  });

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Requests every `everyMs` until stopped (30 s at most, even if a failed test never stops it): who answered each, failures as `!code`. */
function load(port: number, everyMs = 50, path = '/') {
  const results: string[] = [];
  let running = true;
  const until = Date.now() + 30_000;
  const done = (async () => {
    while (running && Date.now() < until) {
      const a = await new Promise<string>((resolve) => {
        void whoAnswersPath(port, path).then(resolve);
      });
      results.push(a);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    results,
    stop: async () => {
      running = false;
      await done;
      return results;
    },
  };
}

async function whoAnswersPath(port: number, path: string): Promise<string> {
  if (path === '/') {
    const a = await whoAnswers('127.0.0.1', port);
    return 'error' in a ? `!${a.error}` : a.status === 200 ? a.body : `HTTP ${a.status}`;
  }
  const res = await fetch(`http://127.0.0.1:${port}${path}`).catch((err: Error) => ({ ok: false, status: 0, text: async () => `!${err.message}` }));
  return res.ok ? await res.text() : `HTTP ${res.status}`;
}

const spec = (port: number) => ({ port, 'target-port': 80, address: '127.0.0.1', protocol: 'http' });
const health = { port: 80, path: '/up', status: 200 };

describe('local endpoint: HAProxy in front of the members', { timeout: 120_000 }, () => {
  let port: number;
  let a: Member;
  let b: Member;
  let blocker: NetServer | undefined;

  before(async () => {
    port = await freePort();
    a = await member('web1.staging');
    b = await member('web2.staging');
  });
  after(async () => {
    await endpoints().remove(ref);
    blocker?.close();
    for (const m of members.values()) m.server.close();
  });

  it('check: a port another program holds is refused before anything is created', async () => {
    blocker = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => blocker!.once('listening', r));
    const taken = (blocker.address() as { port: number }).port;
    assert.match((await endpoints().check(ref, spec(taken)))!, new RegExp(`127.0.0.1:${taken} is in use by another program`));
    assert.equal(await endpoints().status(ref), undefined, 'nothing was created');
    assert.equal(await endpoints().check(ref, spec(port)), undefined);
  });

  it('ensure starts HAProxy on the port, with no members; again, it is the same process', async () => {
    const status = await endpoints().ensure(ref, spec(port), signal, { health });
    assert.deepEqual(status, { kind: 'haproxy', address: `127.0.0.1:${port}`, members: [] });
    const pid = await runningPid(join(projectDir('ep'), 'endpoints', 'staging--web'));
    assert.ok(pid);
    assert.match((await whoAnswers('127.0.0.1', port) as { status: number }).status.toString(), /503/, 'no member: HAProxy itself answers 503');
    await endpoints().ensure(ref, spec(port), signal, { health });
    assert.equal(await runningPid(join(projectDir('ep'), 'endpoints', 'staging--web')), pid);
    // Our own endpoint's port is not "taken".
    assert.equal(await endpoints().check(ref, spec(port)), undefined);
  });

  it('attach reaches each member at the target port', async () => {
    await endpoints().attach(ref, spec(port), [a.machine, b.machine], signal);
    assert.deepEqual(reached, ['web1.staging:80', 'web2.staging:80']);
  });

  it('detach drains: under load, an open request on the leaving member finishes, no request fails, then only the other answers', async () => {
    const traffic = load(port);
    // Slow requests, one at a time, until one is held open on web1 (the load's requests take
    // turns with them, so which member a slow one reaches is not known in advance).
    const slow: Promise<string>[] = [];
    for (let i = 0; i < 10 && a.open === 0; i++) {
      slow.push(whoAnswersPath(port, '/slow?ms=1500'));
      for (let waited = 0; a.open + b.open < slow.length && waited < 2000; waited += 10) await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(a.open > 0, 'a slow request is open on web1');
    const started = performance.now();
    await endpoints().detach(ref, spec(port), [a.machine], 10_000, signal);
    const drained = performance.now() - started;
    const answers = await Promise.all(slow);
    assert.ok(answers.includes('web1.staging') && answers.every((r) => /^web[12]\.staging$/.test(r)), `the open request on web1 finished: ${answers.join(' ')}`);
    assert.ok(drained > 800 && drained < 9000, `detach waited for the open request (${Math.round(drained)} ms), not the whole drain`);
    const after = load(port);
    await new Promise((r) => setTimeout(r, 500));
    const results = [...(await traffic.stop()), ...(await after.stop())];
    assert.deepEqual(results.filter((r) => !/^web[12]\.staging$/.test(r)), [], 'no request failed');
    assert.ok(after.results.length >= 5 && after.results.every((r) => r === 'web2.staging'), `only web2 answers now: ${after.results.join(' ')}`);
    assert.deepEqual((await endpoints().status(ref))?.members.map((m) => m.name), ['web2.staging']);
  });

  it('a member failing its health check gets no more requests (HAProxy checks it)', async () => {
    await endpoints().attach(ref, spec(port), [a.machine], signal);
    a.healthy = false;
    const deadline = Date.now() + 20_000;
    while ((await endpoints().status(ref))?.members.find((m) => m.name === 'web1.staging')?.state !== 'unhealthy') {
      assert.ok(Date.now() < deadline, 'web1 was not found unhealthy within 20 s');
      await new Promise((r) => setTimeout(r, 200));
    }
    const answers = [];
    for (let i = 0; i < 6; i++) answers.push(await whoAnswersPath(port, '/'));
    assert.deepEqual(new Set(answers), new Set(['web2.staging']));
    a.healthy = true;
    await endpoints().detach(ref, spec(port), [a.machine], 0, signal);
  });

  it('a changed health check is a seamless reload: no request fails under load', async () => {
    const traffic = load(port, 20);
    await new Promise((r) => setTimeout(r, 300));
    const before = await runningPid(join(projectDir('ep'), 'endpoints', 'staging--web'));
    await endpoints().ensure(ref, spec(port), signal, { health: { ...health, path: '/up?v=2' } });
    await new Promise((r) => setTimeout(r, 500));
    const results = await traffic.stop();
    assert.notEqual(await runningPid(join(projectDir('ep'), 'endpoints', 'staging--web')), before, 'a new HAProxy took over');
    assert.ok(results.length > 20);
    assert.deepEqual(results.filter((r) => r !== 'web2.staging'), []);
  });

  it('supervised: a HAProxy that died is started again by the next command, with its members, and list finds it', async () => {
    const dir = join(projectDir('ep'), 'endpoints', 'staging--web');
    process.kill((await runningPid(dir))!, 'SIGKILL');
    for (let i = 0; (await runningPid(dir)) && i < 50; i++) await new Promise((r) => setTimeout(r, 100));
    assert.match((await whoAnswersPath(port, '/')), /^!/, 'nothing answers while it is dead');
    await endpoints().ensure(ref, spec(port), signal, { health: { ...health, path: '/up?v=2' } });
    assert.equal(await whoAnswersPath(port, '/'), 'web2.staging');
    const listed = await endpoints().list('ep', signal);
    assert.deepEqual(listed.map((e) => `${e.environment}/${e.image} ${e.address} ${e.members.map((m) => m.name).join(',')}`), [`staging/web 127.0.0.1:${port} web2.staging`]);
  });

  it('a data dir that makes the admin socket path 98 bytes long: HAProxy starts (it refuses more than 97; the socket goes to a short folder)', async () => {
    const room = 98 - Buffer.byteLength(join(projectDir('x'), 'endpoints', 'staging--web', 'admin.sock'));
    const long = { ...ref, project: `x${'y'.repeat(room)}` };
    assert.equal(Buffer.byteLength(join(projectDir(long.project), 'endpoints', 'staging--web', 'admin.sock')), 98);
    const other = new LocalEndpoints(long.project, async () => ({ host: '127.0.0.1', port: b.port }));
    const otherPort = await freePort();
    try {
      await other.ensure(long, spec(otherPort), signal, { health });
      await other.attach(long, spec(otherPort), [b.machine], signal);
      assert.equal(await whoAnswersPath(otherPort, '/'), 'web2.staging');
    } finally {
      await other.remove(long);
    }
  });

  it('remove frees the port for check', async () => {
    await endpoints().remove(ref);
    assert.equal(await endpoints().check(ref, spec(port)), undefined, 'the port is free');
  });
});
