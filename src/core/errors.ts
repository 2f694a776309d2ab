/**
 * The few error types the CLI knows how to present. Only src/cli/ catches and exits; everything
 * else throws one of these (or lets an unexpected error through, which the CLI reports as a bug).
 */

export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

/** Base of errors meant for the user: the message is complete and needs no stack trace. */
export class UserFacingError extends Error {
  readonly exitCode: number;
  /** What to do next, shown under the message. */
  readonly hint?: string;
  constructor(message: string, opts: { exitCode?: number; hint?: string; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.name = new.target.name;
    this.exitCode = opts.exitCode ?? EXIT.failed;
    this.hint = opts.hint;
  }
}

export interface ConfigProblem {
  /** File the problem is in (relative to the project directory when possible). */
  file: string;
  /** Key path, e.g. `images.app.base-image`; empty for the whole file. */
  path: string;
  /** 1-based line, when known. */
  line?: number;
  message: string;
}

/** Bad configuration or usage: exit 2, nothing changed. Carries every problem found at once. */
export class ConfigError extends UserFacingError {
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[], hint?: string) {
    super(ConfigError.format(problems), { exitCode: EXIT.usage, hint });
    this.problems = problems;
  }
  static format(problems: ConfigProblem[]): string {
    return problems
      .map((p) => {
        const where = p.line ? `${p.file}:${p.line}` : p.file;
        return p.path ? `${where}: ${p.path}: ${p.message}` : `${where}: ${p.message}`;
      })
      .join('\n');
  }
}

/** Bad command-line usage: exit 2. */
export class UsageError extends UserFacingError {
  constructor(message: string, hint?: string) {
    super(message, { exitCode: EXIT.usage, hint });
  }
}

/**
 * A provider call failed, after the provider's own retries (the SDK's, kit/http.ts's): what is
 * left is for the user, with the API's code, status and request id.
 */
export class ProviderError extends UserFacingError {
  readonly provider: string;
  readonly operation: string;
  readonly status?: number;
  readonly code?: string;
  readonly requestId?: string;
  constructor(opts: {
    provider: string;
    operation: string;
    message: string;
    status?: number;
    code?: string;
    requestId?: string;
    hint?: string;
    exitCode?: number;
    cause?: unknown;
  }) {
    const detail = [opts.code, opts.status ? `HTTP ${opts.status}` : undefined, opts.requestId ? `request ${opts.requestId}` : undefined]
      .filter(Boolean)
      .join(', ');
    super(`${opts.provider}: ${opts.operation} failed: ${opts.message}${detail ? ` (${detail})` : ''}`, {
      exitCode: opts.exitCode ?? EXIT.failed,
      hint: opts.hint,
      cause: opts.cause,
    });
    this.provider = opts.provider;
    this.operation = opts.operation;
    this.status = opts.status;
    this.code = opts.code;
    this.requestId = opts.requestId;
  }
}

/** A user script exited non-zero. */
export class ScriptError extends UserFacingError {
  readonly script: string;
  readonly exitStatus: number | null;
  readonly lastLines: string[];
  /** `what` names the kind of script: a build `script`, an `image test`. */
  constructor(script: string, exitStatus: number | null, signal: string | undefined, lastLines: string[], what = 'script') {
    const how = exitStatus !== null ? `exited with status ${exitStatus}` : `was killed by signal ${signal ?? 'unknown'}`;
    super(`${what} ${script} ${how}`, {
      hint: lastLines.length ? `last lines of its output:\n${lastLines.map((l) => `  | ${l}`).join('\n')}` : undefined,
    });
    this.script = script;
    this.exitStatus = exitStatus;
    this.lastLines = lastLines;
  }
}

/** The user interrupted (Ctrl-C, SIGTERM): exit 130 once cleanup is done. */
export class CancelledError extends UserFacingError {
  constructor(message = 'interrupted') {
    super(message, { exitCode: EXIT.interrupted });
  }
}

/** Throw CancelledError if the signal is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new CancelledError();
}

export function isCancelled(err: unknown, signal?: AbortSignal): boolean {
  return err instanceof CancelledError || (signal?.aborted ?? false) || (err instanceof Error && err.name === 'AbortError');
}
