/**
 * The fault matrix on the local provider (real QEMU; ~25 s a build under TCG): a subset that still
 * lands a signal in every build step (SIGINT and SIGKILL taking turns), deploys cold and warm,
 * script faults (a full root file system, SSH cut from inside), two commands at once, the canary.
 */
import { defineFaultMatrix } from './runner.js';
import { deployScriptFaults, scriptFaults, type MatrixCase, type SignalCase } from './matrix.js';
import { LocalTarget } from './target-local.js';

const signals: SignalCase[] = [
  { kind: 'signal', command: 'build', at: 'launch', signal: 'SIGINT' },
  { kind: 'signal', command: 'build', at: 'ssh', signal: 'SIGKILL' },
  { kind: 'signal', command: 'build', at: 'upload', signal: 'SIGINT' },
  { kind: 'signal', command: 'build', at: 'script', signal: 'SIGKILL' },
  { kind: 'signal', command: 'build', at: 'clean', signal: 'SIGINT' },
  { kind: 'signal', command: 'build', at: 'stop', signal: 'SIGKILL' },
  { kind: 'signal', command: 'build', at: 'snapshot', signal: 'SIGINT' },
  { kind: 'signal', command: 'build', at: 'destroy', signal: 'SIGKILL' },
  { kind: 'signal', command: 'build', at: 'script', signal: 'SIGINT' },
  // During the image tests (a test server booted from the new version): the reaper's case; SIGINT runs through the emulators.
  { kind: 'signal', command: 'build-tested', at: 'test', signal: 'SIGKILL' },
  { kind: 'signal', command: 'cold', at: 'launch', signal: 'SIGINT' },
  { kind: 'signal', command: 'cold', at: 'health', signal: 'SIGKILL' },
  { kind: 'signal', command: 'warm', at: 'health', signal: 'SIGINT' },
  { kind: 'signal', command: 'warm', at: 'launch', signal: 'SIGKILL' },
  { kind: 'signal', command: 'warm', at: 'deploy-script', signal: 'SIGINT' },
  { kind: 'signal', command: 'warm', at: 'deploy-script', signal: 'SIGKILL' },
];

const faults: MatrixCase<LocalTarget>[] = [
  ...scriptFaults<LocalTarget>('root'),
  ...deployScriptFaults<LocalTarget>(),
  { kind: 'fault', name: 'SSH dropped mid-script (sshd killed on the builder)', command: 'build', env: { FAULT_DROPSSH: '1' }, expect: 'error', message: /connection|closed|dropped|reset|killed|signal/i },
  { kind: 'concurrent', command: 'build' },
  { kind: 'concurrent', command: 'cold' },
];

defineFaultMatrix('fault matrix: local QEMU', () => LocalTarget.open(), [...signals, ...faults], { caseTimeoutMs: 10 * 60_000 });
