/**
 * The fault matrix's traffic rows on local QEMU: Debian's HAProxy (the local endpoint) in front of
 * one server, under 5 requests/s. HAProxy's drain ends as soon as the old server has no open
 * connection; the drain point holds one slow request open through it (the test app answers it from
 * a child process and goes on serving), so the drain lasts, and the signal is sent once HAProxy's
 * admin socket shows the old server in DRAIN. After a SIGKILL and `cleanup`: no QEMU machine of
 * the dead run, one HAProxy (the endpoint's), and the old server back in it, UP.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { adminSocket, serverStats } from '../../src/providers/local/haproxy.js';
import { WEB_PORT } from '../e2e/traffic-flow.js';
import { PROJECT, trafficFaults } from './traffic.js';

/** Running processes whose command line mentions `text`: pid and argv. */
function processesWith(text: string): { pid: number; argv: string[] }[] {
  const found: { pid: number; argv: string[] }[] = [];
  for (const pid of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (argv.some((a) => a.includes(text)) && !/node$/.test(argv[0]!)) found.push({ pid: Number(pid), argv });
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

trafficFaults('fault matrix, traffic: local QEMU, HAProxy', {}, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'provisional-traffic-faults-local-'));
  const port = await freePort();
  const env = { PROVISIONAL_DATA_DIR: dataDir, PROVISIONAL_STATE_DIR: join(dataDir, 'state') };
  const machinesDir = join(dataDir, 'local', PROJECT, 'machines');
  const endpointDir = join(dataDir, 'local', PROJECT, 'endpoints', 'staging--app');
  const haproxies = () => processesWith(dataDir).filter((p) => basename(p.argv[0]!) === 'haproxy');
  return {
    providerYaml: '  name: local\n  memory: 512\n  cpus: 1\n  stop-timeout: 20',
    baseImage: 'debian-12',
    env,
    endpointYaml: `{ port: ${port}, target-port: ${WEB_PORT} }`,
    servers: 1,
    // HAProxy's own view (its admin socket): a server set to drain reports DRAIN (or NOLB).
    providerMembers: async () => (await serverStats(adminSocket(endpointDir))).map((s) => ({ id: s.server, draining: /^(DRAIN|NOLB)/.test(s.status) })),
    drainShows: 'draining',
    assertClean: async (live) => {
      // A machine's QEMU has its run directory (machines/<id>/) on its command line.
      const machines = processesWith(machinesDir).filter((p) => /qemu-system/.test(p.argv[0]!));
      const ids = machines.map((p) => new RegExp(`${machinesDir}/([^/]+)/`).exec(p.argv.join(' '))?.[1]);
      assert.deepEqual(ids.sort(), live.map((s) => s.id).sort(), 'QEMU machines are the live servers only');
      assert.equal(haproxies().length, 1, "one HAProxy, the endpoint's");
    },
    close: async () => {
      const left = processesWith(dataDir);
      for (const p of left) process.kill(p.pid, 'SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
      if (left.length) throw new Error(`left running after destroy: ${left.map((p) => p.argv.join(' ')).join('\n')}`);
    },
  };
});
