/**
 * Renders progress events: on a terminal, a live status line with each running step and its
 * elapsed time above which script output streams; plain timestamped lines when not a terminal
 * (every line stamped, and a line for each step still running after 15 s of silence, so that a
 * log never goes quiet during a long wait); NDJSON on stdout with --json. Every line passes
 * through the redactor.
 */
import type { EventSink, ProgressEvent } from '../core/events.js';
import { Redactor } from '../core/redact.js';

export type ReporterMode = 'tty' | 'plain' | 'json';

/** Time, and a repeating timer: real ones by default, fake ones in tests. */
export interface ReporterClock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls `fn` every `ms` until the returned function is called. */
  every(ms: number, fn: () => void): () => void;
}

const realClock: ReporterClock = {
  now: () => Date.now(),
  every(ms, fn) {
    const timer = setInterval(fn, ms);
    timer.unref();
    return () => clearInterval(timer);
  },
};

/** When not on a terminal: lines of a running step are never further apart than this. */
export const PLAIN_PROGRESS_MS = 15_000;
const TICK_MS = 1000;

export interface ReporterOptions {
  mode: ReporterMode;
  verbose: boolean;
  redactor: Redactor;
  stdout?: NodeJS.WriteStream;
  stderr?: NodeJS.WriteStream;
  clock?: ReporterClock;
}

interface RunningStep {
  message: string;
  started: number;
  /** When a line of this step's scope was last printed (plain mode's progress lines). */
  lastLine: number;
}

export class Reporter implements EventSink {
  readonly mode: ReporterMode;
  private readonly verbose: boolean;
  readonly redactor: Redactor;
  private readonly out: NodeJS.WriteStream;
  private readonly err: NodeJS.WriteStream;
  private readonly running = new Map<string, RunningStep>();
  private statusShown = false;
  private stopTicker?: () => void;
  private readonly clock: ReporterClock;

  constructor(opts: ReporterOptions) {
    this.mode = opts.mode;
    this.verbose = opts.verbose;
    this.redactor = opts.redactor;
    this.out = opts.stdout ?? process.stdout;
    this.err = opts.stderr ?? process.stderr;
    this.clock = opts.clock ?? realClock;
  }

  static detectMode(json: boolean, stream: NodeJS.WriteStream = process.stderr): ReporterMode {
    if (json) return 'json';
    return stream.isTTY && process.env.TERM !== 'dumb' && !process.env.CI ? 'tty' : 'plain';
  }

  emit(event: ProgressEvent): void {
    if (this.mode === 'json') {
      if (event.type === 'debug' && !this.verbose) return;
      this.out.write(this.redactor.redact(JSON.stringify({ time: new Date(this.clock.now()).toISOString(), ...event })) + '\n');
      return;
    }
    const prefix = event.scope ? `[${event.scope}] ` : '';
    const key = `${event.scope ?? ''}`;
    switch (event.type) {
      case 'step':
        this.running.set(key, { message: event.message, started: this.clock.now(), lastLine: this.clock.now() });
        this.line(`${prefix}${event.message}…`, key);
        this.startTicker();
        break;
      case 'step-done': {
        const running = this.running.get(key);
        this.running.delete(key);
        if (this.verbose || event.durationMs >= 1000 || event.message) {
          this.line(`${prefix}${event.message ?? running?.message ?? event.step}: done in ${seconds(event.durationMs)}`);
        } else this.redrawStatus();
        break;
      }
      case 'output':
        this.line(`${prefix}${event.source} | ${event.line}`, key);
        break;
      case 'info':
      case 'result':
        this.line(`${prefix}${event.message}`, key);
        break;
      case 'warn':
        this.line(`${prefix}warning: ${event.message}`, key);
        break;
      case 'debug':
        if (this.verbose) this.line(`${prefix}${event.message}`, key);
        break;
    }
  }

  /** The command's own result: stdout, so that it can be piped. */
  print(text: string): void {
    this.clearStatus();
    this.out.write(this.redactor.redact(text) + (text.endsWith('\n') ? '' : '\n'));
    this.redrawStatus();
  }

  /** A JSON result document (with --json). */
  printJson(value: unknown): void {
    this.out.write(this.redactor.redact(JSON.stringify(value)) + '\n');
  }

  /** An error or a notice for people: stderr (stamped like every other line when not on a terminal). */
  message(text: string): void {
    this.clearStatus();
    const body = text.endsWith('\n') ? text.slice(0, -1) : text;
    const stamped = this.mode === 'plain' ? body.split('\n').map((l) => (l ? `${this.stamp()}${l}` : l)).join('\n') : body;
    this.err.write(this.redactor.redact(stamped) + '\n');
    this.redrawStatus();
  }

  close(): void {
    this.stopTicker?.();
    this.stopTicker = undefined;
    this.clearStatus();
  }

  private stamp(): string {
    return `${new Date(this.clock.now()).toISOString().slice(11, 19)} `;
  }

  /** A line on stderr; `scope` is the key of the running step it belongs to. */
  private line(text: string, scope?: string): void {
    this.clearStatus();
    const stamp = this.mode === 'plain' ? this.stamp() : '';
    this.err.write(this.redactor.redact(`${stamp}${text}`) + '\n');
    const running = scope === undefined ? undefined : this.running.get(scope);
    if (running) running.lastLine = this.clock.now();
    this.redrawStatus();
  }

  private startTicker(): void {
    if (this.stopTicker || this.mode === 'json') return;
    this.stopTicker = this.mode === 'tty' ? this.clock.every(TICK_MS, () => this.redrawStatus()) : this.clock.every(TICK_MS, () => this.printProgress());
  }

  /** Plain mode: each step silent for PLAIN_PROGRESS_MS gets a line with its elapsed time ("waiting for SSH… 45 s"). */
  private printProgress(): void {
    const now = this.clock.now();
    for (const [scope, step] of this.running) {
      // Due when the next tick would come too late.
      if (now - step.lastLine + TICK_MS <= PLAIN_PROGRESS_MS) continue;
      this.line(`${scope ? `[${scope}] ` : ''}${step.message}… ${seconds(now - step.started)}`, scope);
    }
  }

  private clearStatus(): void {
    if (this.mode === 'tty' && this.statusShown) {
      this.err.write('\r\x1b[2K');
      this.statusShown = false;
    }
  }

  private redrawStatus(): void {
    if (this.mode !== 'tty') return;
    this.clearStatus();
    if (!this.running.size) return;
    const now = this.clock.now();
    const parts = [...this.running.entries()].map(
      ([scope, s]) => `${scope ? `${scope}: ` : ''}${s.message} (${seconds(now - s.started)})`,
    );
    const width = this.err.columns || 100;
    let status = `⏳ ${parts.join(' | ')}`;
    if (status.length > width - 1) status = `${status.slice(0, width - 2)}…`;
    this.err.write(`\x1b[2m${this.redactor.redact(status)}\x1b[0m`);
    this.statusShown = true;
  }
}

export function seconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}
