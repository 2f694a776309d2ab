/**
 * The fault matrix on AWS (the EC2 emulator; instances are containers): every signal at every
 * step of a build and a deploy, API faults, script faults, two commands at once, the canary.
 */
import { defineFaultMatrix } from './runner.js';
import { BUILD_STEPS, fullSignalMatrix, deployScriptFaults, scriptFaults, type MatrixCase, imageTestSignals } from './matrix.js';
import { AwsTarget } from './target-aws.js';

const faults: MatrixCase<AwsTarget>[] = [
  // Transient: the SDK retries throttling and 500s; a slow AMI is waited for.
  { kind: 'fault', name: 'RequestLimitExceeded storm', command: 'build', inject: (t) => t.arm({ throttle: 6 }), expect: 'success', minFired: 6 },
  { kind: 'fault', name: '500 InternalError bursts', command: 'build', inject: (t) => t.arm({ internalError: 4 }), expect: 'success', minFired: 4 },
  {
    kind: 'fault',
    name: 'a slow AMI and slow instances',
    command: 'build',
    inject: (t) => Object.assign(t.emulator.cloud.delays, { imagePendingMs: 6000, instancePendingMs: 3000 }),
    restore: (t) => Object.assign(t.emulator.cloud.delays, { imagePendingMs: 1500, instancePendingMs: 300 }),
    expect: 'success',
  },
  { kind: 'fault', name: 'throttling during a warm deploy', command: 'warm', inject: (t) => t.arm({ throttle: 5 }), expect: 'success', minFired: 5 },
  // Persistent: a clear error, nothing left.
  { kind: 'fault', name: 'an AMI that ends failed', command: 'build', inject: (t) => t.arm({ failImages: 1 }), expect: 'error', message: /failed/i, minFired: 1 },
  { kind: 'fault', name: 'a builder that never gets an address', command: 'build', inject: (t) => t.arm({ noAddress: 1 }), expect: 'error', message: /not running with an address after 10 s/ },
  {
    kind: 'fault',
    name: 'a builder that is not running within create-timeout',
    command: 'build',
    inject: (t) => Object.assign(t.emulator.cloud.delays, { instancePendingMs: 15_000 }),
    restore: (t) => Object.assign(t.emulator.cloud.delays, { instancePendingMs: 300 }),
    expect: 'error',
    message: /not running with an address after 10 s/,
  },
  { kind: 'fault', name: '500 on every RunInstances', command: 'build', inject: (t) => t.arm({ internalError: 1000, actions: ['RunInstances'] }), expect: 'error', message: /InternalError|internal error has occurred/ },
  {
    kind: 'fault',
    name: 'SSH dropped mid-script',
    command: 'build',
    env: { FAULT_SLOW: '10' },
    during: { at: 'script', act: (t) => t.dropSsh('provisional-build-app-') },
    expect: 'error',
    message: /connection|closed|dropped|reset/i,
  },
  { kind: 'fault', name: 'a new server that never gets an address (warm deploy)', command: 'warm', inject: (t) => t.arm({ noAddress: 1 }), expect: 'error', message: /not running with an address/ },
  ...scriptFaults<AwsTarget>('tmpfs'),
  ...deployScriptFaults<AwsTarget>(),
  { kind: 'concurrent', command: 'build' },
  { kind: 'concurrent', command: 'cold' },
];

// AWS copies no version to other regions: no distribute step.
const steps = BUILD_STEPS.filter((s) => s !== 'distribute');
defineFaultMatrix('fault matrix: AWS (EC2 emulator)', () => AwsTarget.open(), [...fullSignalMatrix({ steps }), ...imageTestSignals(), ...faults], { caseTimeoutMs: 5 * 60_000 });
