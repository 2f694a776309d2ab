/**
 * The fault matrix as data: which signal lands at which step of which command, and which faults
 * each provider can be given. runner.ts turns every row into a test with the same checks.
 */
import type { FaultTarget } from './target.js';

/** Steps of `image create`, as the pipeline announces them (`{"type":"step","step":...}`). */
export const BUILD_STEPS = ['launch', 'ssh', 'upload', 'script', 'clean', 'stop', 'snapshot', 'distribute', 'destroy'] as const;
export type BuildStep = (typeof BUILD_STEPS)[number];
/** Steps of `image create tested`, an image with tests: a test server boots from the new version. */
export const TESTED_BUILD_STEPS = ['launch', 'ssh', 'upload', 'script', 'clean', 'stop', 'snapshot', 'test-launch', 'test-ssh', 'test', 'distribute', 'tested', 'destroy'] as const;
export type TestedBuildStep = (typeof TESTED_BUILD_STEPS)[number];

/**
 * Points of a deploy: plan printed, servers launching, new servers checked for health, their deploy
 * scripts running (warm deploys: staging has runtime config), old ones destroyed.
 */
export const DEPLOY_POINTS = ['plan', 'launch', 'health', 'deploy-script', 'destroy-old'] as const;
export type DeployPoint = (typeof DEPLOY_POINTS)[number];

export type Signal = 'SIGINT' | 'SIGKILL';
/**
 * `build`: image create app; `build-tested`: image create tested (an image with tests); `cold`:
 * deploy cold --cold (an empty environment); `warm`: deploy staging (replaces the old server).
 */
export type Command = 'build' | 'build-tested' | 'cold' | 'warm';

export interface SignalCase {
  kind: 'signal';
  command: Command;
  at: BuildStep | TestedBuildStep | DeployPoint;
  signal: Signal;
}

export interface FaultCase<T extends FaultTarget = FaultTarget> {
  kind: 'fault';
  name: string;
  command: Command | 'build-timed';
  /** Script toggles (see project.ts). */
  env?: Record<string, string>;
  /** Switch the fault on before the command starts. */
  inject?: (target: T) => void;
  /** Or act while it runs, once it reaches a step (e.g. cut SSH while a script runs). */
  during?: { at: BuildStep; act: (target: T) => Promise<unknown> };
  /** Undo what inject changed beyond the emulator's fault switches (delays). */
  restore?: (target: T) => void;
  expect: 'success' | 'error';
  /** What the error must say (stdout and stderr together). */
  message?: RegExp;
  /** The fault must have fired at least this often (transient faults that never fired prove nothing). */
  minFired?: number;
}

export interface ConcurrentCase {
  kind: 'concurrent';
  command: 'build' | 'cold';
}

export type MatrixCase<T extends FaultTarget = FaultTarget> = SignalCase | FaultCase<T> | ConcurrentCase;

const SIGNALS: Signal[] = ['SIGINT', 'SIGKILL'];

/** Every signal at every step of a build and every point of a cold and a warm deploy. */
export function fullSignalMatrix(opts: { steps?: readonly BuildStep[] } = {}): SignalCase[] {
  const steps = opts.steps ?? BUILD_STEPS;
  const cases: SignalCase[] = [];
  for (const signal of SIGNALS) {
    for (const at of steps) cases.push({ kind: 'signal', command: 'build', at, signal });
    for (const at of DEPLOY_POINTS) {
      if (at !== 'destroy-old' && at !== 'deploy-script') cases.push({ kind: 'signal', command: 'cold', at, signal });
      cases.push({ kind: 'signal', command: 'warm', at, signal });
    }
  }
  return cases;
}

/** A signal of each kind while an image test runs (the fault project's `tested` image). */
export function imageTestSignals(): SignalCase[] {
  return SIGNALS.map((signal) => ({ kind: 'signal', command: 'build-tested', at: 'test', signal }));
}

/** Faults every provider gets, from the scripts' side. */
export function scriptFaults<T extends FaultTarget>(fill: 'tmpfs' | 'root'): FaultCase<T>[] {
  return [
    { kind: 'fault', name: 'a failing script', command: 'build', env: { FAULT_FAIL: '1' }, expect: 'error', message: /script 10-canary\.sh exited with status 3/ },
    { kind: 'fault', name: `a full disk on the builder (${fill})`, command: 'build', env: { FAULT_FILL: fill }, expect: 'error', message: /No space left on device/ },
    { kind: 'fault', name: 'a script past its script-timeout', command: 'build-timed', env: { FAULT_SLOW: '30' }, expect: 'error', message: /timeout|timed out|longer than/i },
  ];
}

/** Faults of the deploy scripts (staging's runtime config, see project.ts). */
export function deployScriptFaults<T extends FaultTarget>(): FaultCase<T>[] {
  return [{ kind: 'fault', name: 'a failing deploy script', command: 'warm', env: { DEPLOY_FAIL: '1' }, expect: 'error', message: /deploy script 10-deploy\.sh exited with status 4[\s\S]*the old servers were left running/ }];
}

export function describeCase(c: MatrixCase<any>): string {
  switch (c.kind) {
    case 'signal':
      return `${c.signal} ${c.command === 'build' ? 'build' : c.command === 'build-tested' ? 'build with image tests' : `${c.command} deploy`} at ${c.at}`;
    case 'fault':
      return `fault: ${c.name} (${c.command === 'build-timed' ? 'build' : c.command === 'build' ? 'build' : `${c.command} deploy`}, ${c.expect === 'success' ? 'transient' : 'persistent'})`;
    case 'concurrent':
      return `two ${c.command === 'build' ? 'builds of app' : 'cold deploys of one environment'} at once`;
  }
}
