/**
 * The build pipeline, written once for every provider:
 *   key -> launch builder -> wait for SSH -> upload -> scripts -> clean -> stop -> snapshot
 *   -> image tests (image-tests.ts) -> copies to regions -> the version counts -> destroy the builder.
 * Everything it creates is registered for removal the moment it exists, so a failed script, an
 * error, a timeout or Ctrl-C leaves nothing behind.
 */
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { create as createTar } from 'tar';
import type { Readable } from 'node:stream';
import { teardownSignal } from '../core/teardown.js';
import { CleanupStack } from '../core/cleanup.js';
import type { RunJournal } from '../core/journal.js';
import { ScriptError, UserFacingError, CancelledError } from '../core/errors.js';
import { step, type EventSink } from '../core/events.js';
import { listScripts, type ImageDirs } from '../images/inputs.js';
import { versionName } from '../images/naming.js';
import { LABELS, type ImageVersion, type ImageVersionMetadata, type Provenance, type Provider, type SourceImage } from '../providers/types.js';
import { generateKeyPair, waitForSsh, type SshSession } from '../ssh/client.js';
import { asRoot, shellQuote } from './shell.js';
import { listTests, runImageTests } from './image-tests.js';

export const REMOTE_DIR = '/var/tmp/provisional';

export interface BuildRequest {
  provider: Provider;
  project: string;
  image: string;
  dirs: ImageDirs;
  source: SourceImage;
  parent: ImageVersionMetadata['parent'];
  inputHash: string;
  /** What the chain's provider base resolved to (images/base-drift.ts). */
  baseId?: string;
  provenance?: Provenance;
  toolVersion: string;
  runId: string;
  /** Environment for the scripts. */
  env?: Record<string, string>;
  buildTimeoutMs: number;
  scriptTimeoutMs: number;
  /** How long one image test may run. */
  testTimeoutMs: number;
  sshTimeoutMs?: number;
  /** Provider options for the builder (size, region). */
  options?: Record<string, unknown>;
  /** Regions the new version is copied to (cloud providers). */
  regions?: string[];
  events: EventSink;
  signal: AbortSignal;
  /** Version names already taken, so two builds in one second do not collide. */
  takenVersions?: Set<string>;
  /** Where what the build creates is written down first, so that a crash leaves a trail. */
  journal?: RunJournal;
}

export async function buildImage(req: BuildRequest): Promise<ImageVersion> {
  const { provider, events } = req;
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), req.buildTimeoutMs);
  const signal = AbortSignal.any([req.signal, timeout.signal]);
  const cleanup = new CleanupStack();
  try {
    const version = await runPipeline(req, signal, cleanup);
    await req.journal?.finish();
    return version;
  } catch (err) {
    const failure =
      timeout.signal.aborted && !req.signal.aborted
        ? new UserFacingError(`the build of ${req.image} took longer than its build-timeout (${req.buildTimeoutMs / 1000} s)`, {
            hint: 'raise `build-timeout:` for this image in config.yml if the scripts need longer',
          })
        : err;
    if (cleanup.size) {
      if (req.signal.aborted) events.emit({ type: 'warn', message: 'interrupted: removing what this build created' });
      const { failed } = await cleanup.unwind(events);
      if (failed.length) {
        events.emit({ type: 'warn', message: `could not remove: ${failed.join('; ')}; run \`provisional cleanup\` to try again` });
      }
      // What the cleanup removed is no longer a leftover.
      if (!failed.length) for (const e of [...(req.journal?.record.entries ?? [])]) await req.journal?.remove(e.kind, e.name);
    }
    await req.journal?.finish();
    throw failure;
  } finally {
    clearTimeout(timer);
  }
}

async function runPipeline(req: BuildRequest, signal: AbortSignal, cleanup: CleanupStack): Promise<ImageVersion> {
  const { provider, events } = req;
  const key = generateKeyPair(`provisional-build-${req.runId}`);

  const name = `provisional-build-${req.image}-${req.runId}`;
  const labels = { [LABELS.project]: req.project, [LABELS.run]: req.runId, [LABELS.role]: 'builder', [LABELS.image]: req.image };
  await req.journal?.add({ kind: 'machine', name, labels });
  const machine = await step(events, 'launch', `launching builder from ${describeSource(req.source)}`, () =>
    provider.launchMachine({ name, source: req.source, authorizedKey: key.publicKey, labels, options: req.options }, signal).catch(async (err) => {
      // A launch that fails leaves nothing (the provider contract); only a crash leaves a trail.
      await req.journal?.remove('machine', name);
      throw err;
    }),
  );
  await req.journal?.update('machine', name, { id: machine.id });
  const forgetBuilder = cleanup.defer(`builder ${machine.name}`, (s) => provider.destroyMachine(machine, s));

  const ssh = await step(events, 'ssh', 'waiting for SSH', () =>
    waitForSsh(machine.ssh, key.privateKey, { timeoutMs: req.sshTimeoutMs ?? 300_000, signal, what: `SSH on the ${req.image} builder` }),
  );
  try {
    const root = asRoot(machine.ssh.user);
    await step(events, 'upload', 'uploading files and scripts', () => upload(ssh, req.dirs, root, signal));
    const scripts = await listScripts(req.dirs.scriptsDir);
    for (const script of scripts) {
      await step(events, 'script', `running ${script}`, () => runScript(ssh, script, req, root, signal));
    }
    // The clean command ends by asking the guest to power off (one round trip less than a command
    // of its own). The connection may drop before its exit status comes back: its line saying the
    // image is clean is what counts.
    await step(events, 'clean', 'removing build leftovers (key, files, machine-id, host keys), then powering off', async () => {
      let cleaned = false;
      const result = await ssh
        .exec(root(cleanCommand(key.publicKey, machine.ssh.user)), { signal, timeoutMs: 60_000, onLine: (_stream, line) => (cleaned ||= line === CLEANED) })
        .catch((err: unknown) => {
          if (cleaned && !(err instanceof CancelledError)) return undefined;
          throw err;
        });
      if (!cleaned) throw new UserFacingError(`cleaning the builder failed: ${result?.stderr.trim() || `status ${result?.code}`}`);
    });
  } finally {
    ssh.close();
  }
  await step(events, 'stop', 'waiting for the builder to stop', () => provider.stopMachine(machine, signal));

  const version = uniqueVersionName(req.image, req.takenVersions);
  const tests = await listTests(req);
  const meta: ImageVersionMetadata = {
    image: req.image,
    version,
    parent: req.parent,
    inputHash: req.inputHash,
    toolVersion: req.toolVersion,
    createdAt: new Date().toISOString(),
    // Saved marked: nothing chooses it until its tests pass (images/choice.ts).
    ...(tests.length ? { testing: req.runId } : {}),
    ...(req.baseId ? { baseId: req.baseId } : {}),
    ...(req.provenance ? { provenance: req.provenance } : {}),
  };
  await req.journal?.add({ kind: 'snapshot', name: version, labels });
  const result = await step(events, 'snapshot', `saving ${version}`, () => provider.snapshotMachine(machine, meta, signal));
  // A version being tested is not the user's yet: written down until its mark is lifted.
  if (tests.length) await req.journal?.add({ kind: 'version', name: version, id: result.id, labels });
  await req.journal?.remove('snapshot', version);
  const forgetVersion = cleanup.defer(`version ${version} (its tests or copies failed)`, (s) => provider.deleteImageVersion(result, s));

  if (tests.length) await runImageTests(req, result, tests, signal, cleanup);

  let distributed = result;
  const regions = (req.regions ?? []).filter((r) => !result.regions?.includes(r));
  if (regions.length) {
    if (!provider.distributeVersion) {
      events.emit({ type: 'warn', message: `the ${provider.name} provider has no regions; regions: ${regions.join(', ')} ignored` });
    } else {
      distributed = await step(events, 'distribute', `copying ${version} to ${regions.join(', ')}`, () => provider.distributeVersion!(result, regions, signal));
    }
  }
  if (tests.length) {
    const marked = await step(events, 'tested', `${version} passed its ${tests.length} test${tests.length > 1 ? 's' : ''}: marking it usable`, () => provider.updateVersionMetadata(result, { testing: null }, signal));
    distributed = { ...marked, regions: distributed.regions };
    await req.journal?.remove('version', version);
  }
  forgetVersion();
  forgetBuilder();
  // The version is complete: removing the builder is cleanup, which the signal must not cut short
  // (an interrupted removal left the builder, or the build key, behind). Teardown gets its own time limit.
  const destroyed = await step(events, 'destroy', 'removing the builder', () => provider.destroyMachine(machine, teardownSignal(10 * 60_000))).then(
    () => true,
    (err) => {
      // The version is complete; a builder we could not remove is reported, not a failed build.
      events.emit({ type: 'warn', message: `the version is saved, but the builder ${machine.name} could not be removed (${(err as Error).message}); run \`provisional cleanup\`` });
      return false;
    },
  );
  if (destroyed) await req.journal?.remove('machine', name);
  return distributed;
}

function describeSource(source: SourceImage): string {
  return source.kind === 'base' ? `base image ${source.ref}` : source.version.version;
}

function uniqueVersionName(image: string, taken?: Set<string>): string {
  let date = new Date();
  let name = versionName(image, date);
  while (taken?.has(name)) {
    date = new Date(date.getTime() + 1000);
    name = versionName(image, date);
  }
  taken?.add(name);
  return name;
}

/** scripts/ and files/ go up as one tar stream: one round trip, modes kept. */
async function upload(ssh: SshSession, dirs: ImageDirs, root: (command: string) => string, signal: AbortSignal): Promise<void> {
  const parts = [dirs.scriptsDir, dirs.filesDir].filter((d) => existsSync(d));
  // `rm` only when there is something to remove: under software emulation each process the guest
  // starts costs tens of milliseconds (`[` is the shell's own).
  const prepare = `if [ -e ${REMOTE_DIR} ]; then rm -rf ${REMOTE_DIR}; fi && mkdir -p ${REMOTE_DIR}/files ${REMOTE_DIR}/scripts`;
  const cwd = dirname(dirs.scriptsDir);
  const result = parts.length
    ? await ssh.execWithInput(
        root(`${prepare} && tar -x --no-same-owner -C ${REMOTE_DIR} -f -`),
        createTar({ cwd, portable: true, follow: true }, parts.map((p) => p.slice(cwd.length + 1))) as unknown as Readable,
        { signal, timeoutMs: 30 * 60_000 },
      )
    : await ssh.exec(root(prepare), { signal, timeoutMs: 60_000 });
  if (result.code !== 0) throw new UserFacingError(`uploading files to the builder failed: ${result.stderr.trim() || `status ${result.code}`}`);
}

async function runScript(ssh: SshSession, script: string, req: BuildRequest, root: (command: string) => string, signal: AbortSignal): Promise<void> {
  const tail: string[] = [];
  const env = {
    PROVISIONAL_IMAGE: req.image,
    PROVISIONAL_FILES: `${REMOTE_DIR}/files`,
    DEBIAN_FRONTEND: 'noninteractive',
    ...req.env,
  };
  const assignments = Object.entries(env)
    .map(([k, v]) => `${k}=${shellQuote(v)}`)
    .join(' ');
  const command = `cd ${REMOTE_DIR}/files && exec env ${assignments} ${REMOTE_DIR}/scripts/${shellQuote(script)} </dev/null`;
  const result = await ssh.exec(root(command), {
    signal,
    timeoutMs: req.scriptTimeoutMs,
    onLine: (stream, line) => {
      tail.push(line);
      if (tail.length > 20) tail.shift();
      req.events.emit({ type: 'output', source: script, stream, line });
    },
  });
  if (result.code !== 0) throw new ScriptError(script, result.code, result.signal, tail);
}

/** The clean command's line once the image is clean, before it asks for the power-off. */
export const CLEANED = 'provisional: builder clean, powering off';

/**
 * What a build must not leave in the image: the build key, the uploaded files, the machine-id
 * and the SSH host keys (each server makes its own at first boot), flushed to the disk (a machine
 * that then fails to power off is killed: without the flush it could keep the build key).
 *
 * Under software emulation every process a guest starts costs tens of milliseconds, so the key is
 * filtered with shell builtins and one `rm` removes the rest (bench/boot-levers.ts clean).
 */
export function cleanFilesCommand(publicKey: string, user = 'root'): string {
  const home = user === 'root' ? '/root' : `$(getent passwd ${shellQuote(user)} | cut -d: -f6)`;
  return [
    'set -e',
    `keys=${home}/.ssh/authorized_keys`,
    `build_key=${shellQuote(publicKey.trim())}`,
    'gone=',
    // The other lines stay as they were, in order; a file left without any goes.
    'if [ -f "$keys" ]; then',
    '  kept=',
    "  nl='",
    "'",
    '  while IFS= read -r line || [ -n "$line" ]; do [ "$line" = "$build_key" ] || kept="$kept$line$nl"; done < "$keys"',
    `  if [ -n "$kept" ]; then printf '%s' "$kept" > "$keys"; else gone="$keys"; fi`,
    'fi',
    'if [ -f /etc/machine-id ]; then : > /etc/machine-id; fi',
    `rm -rf -- ${REMOTE_DIR} \${gone:+"$gone"} /var/lib/dbus/machine-id /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub /root/.bash_history`,
    'sync',
  ].join('\n');
}

/**
 * Then the power-off request: systemd powers off on SIGRTMIN+4 (systemd(1); what `systemctl
 * poweroff` asks it over D-Bus, without starting systemctl), 38 with glibc, whose numbering every
 * systemd uses. Whether it succeeds is for the stop step to see: a provider stops a machine that
 * does not power off.
 */
export const POWER_OFF_REQUEST = [
  'init=',
  'read -r init < /proc/1/comm || true',
  'if [ "$init" = systemd ]; then kill -38 1; else systemctl poweroff --no-block || poweroff || true; fi',
].join('\n');

export function cleanCommand(publicKey: string, user = 'root'): string {
  return [cleanFilesCommand(publicKey, user), `echo '${CLEANED}'`, POWER_OFF_REQUEST].join('\n');
}
