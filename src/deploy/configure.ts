/**
 * Gives a new server its runtime configuration, after SSH answers and before the health check:
 * the env file (/etc/provisional/env, root, 0600), then the image's deploy scripts, as root, in
 * lexical order, with those variables in their environment and PROVISIONAL_SERVER, the server's
 * name (a machine's own hostname is not always it: an image keeps the one it was built with, EC2
 * names its own). A failing script fails the server exactly as a failed health check does.
 */
import { Readable } from 'node:stream';
import { create as createTar } from 'tar';
import { UserFacingError } from '../core/errors.js';
import type { EventSink } from '../core/events.js';
import { asRoot, shellQuote } from '../pipeline/shell.js';
import type { SshSession } from '../ssh/client.js';
import { ENV_FILE, isEmptyRuntimeConfig, renderEnvFile, type RuntimeConfig } from './runtime-config.js';

/** Where deploy scripts are uploaded on the server (root only). */
export const REMOTE_DEPLOY_DIR = '/var/lib/provisional/deploy';

export async function configureServer(
  ssh: SshSession,
  runtime: RuntimeConfig,
  opts: { server: string; events: EventSink; signal: AbortSignal; scriptTimeoutMs: number },
): Promise<void> {
  if (isEmptyRuntimeConfig(runtime)) return;
  const root = asRoot(ssh.endpoint.user);
  // Written to a new file with umask 077 and renamed: the values are never readable by others, not even for a moment.
  const write = await ssh.execWithInput(
    root(`umask 077 && mkdir -p /etc/provisional && chmod 0755 /etc/provisional && cat > ${ENV_FILE}.new && chown root:root ${ENV_FILE}.new && chmod 0600 ${ENV_FILE}.new && mv -f ${ENV_FILE}.new ${ENV_FILE}`),
    Readable.from([Buffer.from(renderEnvFile(runtime.env))]),
    { signal: opts.signal, timeoutMs: 60_000 },
  );
  if (write.code !== 0) throw new UserFacingError(`${opts.server}: writing ${ENV_FILE} failed: ${write.stderr.trim() || `status ${write.code}`}`);
  if (!runtime.scripts.length) return;
  const upload = await ssh.execWithInput(
    root(`umask 077 && rm -rf ${REMOTE_DEPLOY_DIR} && mkdir -p ${REMOTE_DEPLOY_DIR} && tar -x --no-same-owner -C ${REMOTE_DEPLOY_DIR} -f -`),
    createTar({ cwd: runtime.scriptsDir, portable: true, follow: true }, runtime.scripts.map((s) => s.name)) as unknown as Readable,
    { signal: opts.signal, timeoutMs: 10 * 60_000 },
  );
  if (upload.code !== 0) throw new UserFacingError(`${opts.server}: uploading the deploy scripts failed: ${upload.stderr.trim() || `status ${upload.code}`}`);
  for (const script of runtime.scripts) {
    const source = `deploy/${script.name}`;
    opts.events.emit({ type: 'step', step: 'deploy-script', message: `running ${source}` });
    const started = performance.now();
    const tail: string[] = [];
    // The same reading of the env file as a user's `set -a; . /etc/provisional/env`.
    const command = `cd ${REMOTE_DEPLOY_DIR} && set -a && . ${ENV_FILE} && set +a && export PROVISIONAL_SERVER=${shellQuote(opts.server)} && exec ./${shellQuote(script.name)} </dev/null`;
    const result = await ssh.exec(root(command), {
      signal: opts.signal,
      timeoutMs: opts.scriptTimeoutMs,
      onLine: (stream, line) => {
        tail.push(line);
        if (tail.length > 20) tail.shift();
        opts.events.emit({ type: 'output', source, stream, line });
      },
    });
    if (result.code !== 0) {
      const how = result.code !== null ? `exited with status ${result.code}` : `was killed (${result.signal ?? 'timeout'})`;
      throw new UserFacingError(`${opts.server}: deploy script ${script.name} ${how}`, {
        hint: `the old servers were left running; fix the deploy script or the env values and deploy again${tail.length ? `\nlast lines of its output:\n${tail.map((l) => `  | ${l}`).join('\n')}` : ''}`,
      });
    }
    opts.events.emit({ type: 'step-done', step: 'deploy-script', message: `${source} done`, durationMs: Math.round(performance.now() - started) });
  }
}
