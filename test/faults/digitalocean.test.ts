/**
 * The fault matrix on DigitalOcean (the API emulator; droplets are containers): every signal at
 * every step of a build and a deploy, API faults, script faults, two commands at once, the canary.
 */
import { defineFaultMatrix } from './runner.js';
import { fullSignalMatrix, deployScriptFaults, scriptFaults, type MatrixCase, imageTestSignals } from './matrix.js';
import { DigitalOceanTarget } from './target-digitalocean.js';

const faults: MatrixCase<DigitalOceanTarget>[] = [
  // Transient: retried or waited out, then success.
  { kind: 'fault', name: '429 storm', command: 'build', inject: (t) => t.emulator.faults.set({ http: [{ status: 429, count: 8, retryAfter: 1 }] }), expect: 'success', minFired: 8 },
  {
    kind: 'fault',
    name: '500 and 503 bursts',
    command: 'build',
    inject: (t) => t.emulator.faults.set({ http: [{ status: 500, count: 3, match: 'GET /v2/' }, { status: 503, count: 2, match: 'POST /v2/droplets' }] }),
    expect: 'success',
    minFired: 5,
  },
  {
    kind: 'fault',
    name: 'slow create and snapshot actions',
    command: 'build',
    inject: (t) => t.emulator.faults.set({ actions: [{ type: 'create', outcome: 'slow', extraMs: 3000 }, { type: 'snapshot', outcome: 'slow', extraMs: 3000 }] }),
    expect: 'success',
    minFired: 2,
  },
  { kind: 'fault', name: '429 storm during a warm deploy', command: 'warm', inject: (t) => t.emulator.faults.set({ http: [{ status: 429, count: 6, retryAfter: 1 }] }), expect: 'success', minFired: 6 },
  // Persistent: a clear error, nothing left.
  { kind: 'fault', name: 'a snapshot that ends errored', command: 'build', inject: (t) => t.emulator.faults.set({ actions: [{ type: 'snapshot', outcome: 'errored' }] }), expect: 'error', message: /ended errored/ },
  { kind: 'fault', name: 'a region copy that ends errored', command: 'build', inject: (t) => t.emulator.faults.set({ actions: [{ type: 'transfer', outcome: 'errored' }] }), expect: 'error', message: /ended errored/ },
  { kind: 'fault', name: 'a builder that never gets an address', command: 'build', inject: (t) => t.emulator.faults.set({ noAddress: 1 }), expect: 'error', message: /not active with an address after 10 s/ },
  {
    kind: 'fault',
    name: 'a builder that is not active within create-timeout',
    command: 'build',
    inject: (t) => t.emulator.faults.set({ actions: [{ type: 'create', outcome: 'slow', extraMs: 15_000 }] }),
    expect: 'error',
    message: /not active with an address after 10 s/,
  },
  { kind: 'fault', name: '503 on every droplet create', command: 'build', inject: (t) => t.emulator.faults.set({ http: [{ status: 503, count: -1, match: 'POST /v2/droplets' }] }), expect: 'error', message: /HTTP 503/ },
  { kind: 'fault', name: 'SSH dropped mid-script', command: 'build', env: { FAULT_SLOW: '10' }, inject: (t) => t.emulator.faults.set({ sshDrop: { afterMs: 1000 } }), expect: 'error', message: /connection|closed|dropped|reset/i },
  { kind: 'fault', name: 'a new server that never gets an address (warm deploy)', command: 'warm', inject: (t) => t.emulator.faults.set({ noAddress: 1 }), expect: 'error', message: /not active with an address/ },
  ...scriptFaults<DigitalOceanTarget>('tmpfs'),
  ...deployScriptFaults<DigitalOceanTarget>(),
  { kind: 'concurrent', command: 'build' },
  { kind: 'concurrent', command: 'cold' },
];

defineFaultMatrix('fault matrix: DigitalOcean (emulator)', () => DigitalOceanTarget.open(), [...fullSignalMatrix(), ...imageTestSignals(), ...faults], { caseTimeoutMs: 5 * 60_000 });
