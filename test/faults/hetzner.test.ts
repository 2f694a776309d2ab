/**
 * The fault matrix on Hetzner Cloud (the API emulator; servers are containers): every signal at
 * every step of a build and a deploy, API faults, script faults, two commands at once, the canary.
 */
import { defineFaultMatrix } from './runner.js';
import { BUILD_STEPS, fullSignalMatrix, scriptFaults, type MatrixCase, imageTestSignals } from './matrix.js';
import { HetznerTarget } from './target-hetzner.js';

const faults: MatrixCase<HetznerTarget>[] = [
  // Transient: retried or waited out, then success.
  { kind: 'fault', name: '429 storm', command: 'build', inject: (t) => t.emulator.faults.set({ http: [{ status: 429, count: 8 }] }), expect: 'success', minFired: 8 },
  {
    kind: 'fault',
    name: '500 and 503 bursts',
    command: 'build',
    inject: (t) => t.emulator.faults.set({ http: [{ status: 500, count: 3, match: 'GET /v1/' }, { status: 503, count: 2, match: 'POST /v1/servers' }] }),
    expect: 'success',
    minFired: 5,
  },
  {
    kind: 'fault',
    name: 'slow create and create_image actions',
    command: 'build',
    inject: (t) => t.emulator.faults.set({ actions: [{ type: 'create_server', outcome: 'slow', extraMs: 3000 }, { type: 'create_image', outcome: 'slow', extraMs: 3000 }] }),
    expect: 'success',
    minFired: 2,
  },
  { kind: 'fault', name: '429 storm during a warm deploy', command: 'warm', inject: (t) => t.emulator.faults.set({ http: [{ status: 429, count: 6 }] }), expect: 'success', minFired: 6 },
  // Persistent: a clear error, nothing left.
  { kind: 'fault', name: 'a create_image that ends in error', command: 'build', inject: (t) => t.emulator.faults.set({ actions: [{ type: 'create_image', outcome: 'errored' }] }), expect: 'error', message: /action_failed/ },
  {
    kind: 'fault',
    name: 'a builder that is not running within create-timeout',
    command: 'build',
    inject: (t) => t.emulator.faults.set({ actions: [{ type: 'create_server', outcome: 'slow', extraMs: 15_000 }] }),
    expect: 'error',
    message: /not running after 10 s/,
  },
  { kind: 'fault', name: '503 on every server create', command: 'build', inject: (t) => t.emulator.faults.set({ http: [{ status: 503, count: -1, match: 'POST /v1/servers' }] }), expect: 'error', message: /unavailable, HTTP 503/ },
  { kind: 'fault', name: 'SSH dropped mid-script', command: 'build', env: { FAULT_SLOW: '10' }, inject: (t) => t.emulator.faults.set({ sshDrop: { afterMs: 1000 } }), expect: 'error', message: /connection|closed|dropped|reset/i },
  {
    kind: 'fault',
    name: 'a new server that is not running in time (warm deploy)',
    command: 'warm',
    inject: (t) => t.emulator.faults.set({ actions: [{ type: 'create_server', outcome: 'slow', extraMs: 15_000 }] }),
    expect: 'error',
    message: /not running after 10 s/,
  },
  ...scriptFaults<HetznerTarget>('tmpfs'),
  { kind: 'concurrent', command: 'build' },
  { kind: 'concurrent', command: 'cold' },
];

// Hetzner snapshots are usable in every location: there is no distribute step.
const steps = BUILD_STEPS.filter((s) => s !== 'distribute');
defineFaultMatrix('fault matrix: Hetzner Cloud (emulator)', () => HetznerTarget.open(), [...fullSignalMatrix({ steps }), ...imageTestSignals(), ...faults], { caseTimeoutMs: 5 * 60_000 });
