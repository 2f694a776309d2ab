/**
 * Image tests: after the snapshot, a throwaway server boots from the new version (labelled as the
 * run's test server), and each of config/provisional/<image>/tests/* runs there as root over SSH,
 * in lexical order, output streamed like scripts'. The version is saved marked as being tested
 * (ImageVersionMetadata.testing), so nothing chooses it until every test passed; the caller lifts
 * the mark, or deletes the version when a test fails. The test server is written in the run
 * journal before it exists and carries the run's labels, so that `cleanup` finds it after a crash.
 */
import { existsSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { create as createTar } from 'tar';
import type { CleanupStack } from '../core/cleanup.js';
import { ScriptError, UserFacingError } from '../core/errors.js';
import { step } from '../core/events.js';
import { teardownSignal } from '../core/teardown.js';
import { deployKeys } from '../core/project-keys.js';
import { listScripts } from '../images/inputs.js';
import { LABELS, type ImageVersion } from '../providers/types.js';
import { SshError, waitForSsh, type SshSession } from '../ssh/client.js';
import type { BuildRequest } from './pipeline.js';
import { asRoot, shellQuote } from './shell.js';

export const REMOTE_TESTS_DIR = '/var/tmp/provisional-tests';

/** The image's tests, in the order they run; none when it has no tests/ folder. */
export function listTests(req: Pick<BuildRequest, 'dirs'>): Promise<string[]> {
  return req.dirs.testsDir ? listScripts(req.dirs.testsDir) : Promise.resolve([]);
}

/**
 * Boot a test server from `version`, run `tests` on it, remove it. Throws ScriptError (exit 1, the
 * test's name and its last lines) at the first failing test; the server goes either way.
 */
export async function runImageTests(req: BuildRequest, version: ImageVersion, tests: string[], signal: AbortSignal, cleanup: CleanupStack): Promise<void> {
  const { provider, events } = req;
  // A server like a deployed one (the project's deploy key, its provider access), not a builder:
  // nothing temporary is made at the provider besides the machine.
  const keys = await deployKeys(req.project);
  const name = `provisional-test-${req.image}-${req.runId}`;
  const labels = { [LABELS.project]: req.project, [LABELS.run]: req.runId, [LABELS.role]: 'test', [LABELS.image]: req.image, [LABELS.version]: version.version };
  await req.journal?.add({ kind: 'machine', name, labels });
  const machine = await step(events, 'test-launch', `launching a test server from ${version.version}`, () =>
    provider.launchMachine({ name, source: { kind: 'version', version }, authorizedKey: keys.authorizedKeys, labels, options: req.options }, signal).catch(async (err) => {
      await req.journal?.remove('machine', name);
      throw err;
    }),
  );
  await req.journal?.update('machine', name, { id: machine.id });
  const forget = cleanup.defer(`test server ${machine.name}`, (s) => provider.destroyMachine(machine, s));

  const ssh = await step(events, 'test-ssh', 'waiting for SSH on the test server', () =>
    waitForSsh(machine.ssh, keys.privateKey, { timeoutMs: req.sshTimeoutMs ?? 300_000, signal, what: `SSH on the ${req.image} test server` }),
  );
  try {
    const root = asRoot(machine.ssh.user);
    await uploadTests(ssh, req.dirs.testsDir!, tests, root, signal);
    for (const test of tests) {
      await step(events, 'test', `testing ${version.version} with tests/${test}`, () => runTest(ssh, test, version, req, root, signal));
    }
  } finally {
    ssh.close();
  }
  forget();
  // The tests passed: removing the server is cleanup, which the signal must not cut short.
  const destroyed = await step(events, 'test-destroy', 'removing the test server', () => provider.destroyMachine(machine, teardownSignal(10 * 60_000))).then(
    () => true,
    (err) => {
      events.emit({ type: 'warn', message: `the tests passed, but the test server ${machine.name} could not be removed (${(err as Error).message}); run \`provisional cleanup\`` });
      return false;
    },
  );
  if (destroyed) await req.journal?.remove('machine', name);
}

async function uploadTests(ssh: SshSession, testsDir: string, tests: string[], root: (command: string) => string, signal: AbortSignal): Promise<void> {
  if (!existsSync(testsDir)) throw new UserFacingError(`the tests folder ${testsDir} went away during the build`);
  const result = await ssh.execWithInput(
    root(`umask 077 && rm -rf ${REMOTE_TESTS_DIR} && mkdir -p ${REMOTE_TESTS_DIR} && tar -x --no-same-owner -C ${REMOTE_TESTS_DIR} -f -`),
    createTar({ cwd: testsDir, portable: true, follow: true }, tests) as unknown as Readable,
    { signal, timeoutMs: 10 * 60_000 },
  );
  if (result.code !== 0) throw new UserFacingError(`uploading the image tests failed: ${result.stderr.trim() || `status ${result.code}`}`);
}

async function runTest(ssh: SshSession, test: string, version: ImageVersion, req: BuildRequest, root: (command: string) => string, signal: AbortSignal): Promise<void> {
  const tail: string[] = [];
  // The image's `env:` too, as its scripts get it: a test checks what they were told to do.
  const env = { PROVISIONAL_IMAGE: req.image, PROVISIONAL_VERSION: version.version, DEBIAN_FRONTEND: 'noninteractive', ...req.env };
  const assignments = Object.entries(env).map(([k, v]) => `${k}=${shellQuote(v)}`).join(' ');
  const source = `tests/${test}`;
  const result = await ssh.exec(root(`cd ${REMOTE_TESTS_DIR} && exec env ${assignments} ./${shellQuote(test)} </dev/null`), {
    signal,
    timeoutMs: req.testTimeoutMs,
    onLine: (stream, line) => {
      tail.push(line);
      if (tail.length > 20) tail.shift();
      req.events.emit({ type: 'output', source, stream, line });
    },
  }).catch((err: Error) => {
    if (err instanceof SshError && /timed out/.test(err.message)) {
      throw new UserFacingError(`image test ${test} of ${version.version} took longer than its test-timeout (${req.testTimeoutMs / 1000} s)`, {
        hint: `raise \`test-timeout:\` for ${req.image} in config.yml if the test needs longer${tail.length ? `\nlast lines of its output:\n${tail.map((l) => `  | ${l}`).join('\n')}` : ''}`,
      });
    }
    throw err;
  });
  if (result.code !== 0) throw new ScriptError(`${test} of ${version.version}`, result.code, result.signal, tail, 'image test');
}
