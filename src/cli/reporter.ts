/**
 * Renders progress events: on a terminal, a live status line with each running step and its
 * elapsed time above which script output streams; plain timestamped lines when not a terminal;
 * NDJSON on stdout with --json. Every line passes through the redactor.
 */
import type { EventSink, ProgressEvent } from '../core/events.js';
import { Redactor } from '../core/redact.js';

export type ReporterMode = 'tty' | 'plain' | 'json';

export interface ReporterOptions {
  mode: ReporterMode;
  verbose: boolean;
  redactor: Redactor;
  stdout?: NodeJS.WriteStream;
  stderr?: NodeJS.WriteStream;
}

interface RunningStep {
  message: string;
  started: number;
}

export class Reporter implements EventSink {
  readonly mode: ReporterMode;
  private readonly verbose: boolean;
  readonly redactor: Redactor;
  private readonly out: NodeJS.WriteStream;
  private readonly err: NodeJS.WriteStream;
  private readonly running = new Map<string, RunningStep>();
  private statusShown = false;
  private ticker?: NodeJS.Timeout;

  constructor(opts: ReporterOptions) {
    this.mode = opts.mode;
    this.verbose = opts.verbose;
    this.redactor = opts.redactor;
    this.out = opts.stdout ?? process.stdout;
    this.err = opts.stderr ?? process.stderr;
  }

  static detectMode(json: boolean, stream: NodeJS.WriteStream = process.stderr): ReporterMode {
    if (json) return 'json';
    return stream.isTTY && process.env.TERM !== 'dumb' && !process.env.CI ? 'tty' : 'plain';
  }

  emit(event: ProgressEvent): void {
    if (this.mode === 'json') {
      if (event.type === 'debug' && !this.verbose) return;
      this.out.write(this.redactor.redact(JSON.stringify({ time: new Date().toISOString(), ...event })) + '\n');
      return;
    }
    const prefix = event.scope ? `[${event.scope}] ` : '';
    const key = `${event.scope ?? ''}`;
    switch (event.type) {
      case 'step':
        this.running.set(key, { message: event.message, started: performance.now() });
        this.line(`${prefix}${event.message}…`);
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
        this.line(`${prefix}${event.source} | ${event.line}`);
        break;
      case 'info':
      case 'result':
        this.line(`${prefix}${event.message}`);
        break;
      case 'warn':
        this.line(`${prefix}warning: ${event.message}`);
        break;
      case 'debug':
        if (this.verbose) this.line(`${prefix}${event.message}`);
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

  /** An error or a notice for people: stderr. */
  message(text: string): void {
    this.clearStatus();
    this.err.write(this.redactor.redact(text) + (text.endsWith('\n') ? '' : '\n'));
    this.redrawStatus();
  }

  close(): void {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = undefined;
    this.clearStatus();
  }

  private line(text: string): void {
    this.clearStatus();
    const stamp = this.mode === 'plain' ? `${new Date().toISOString().slice(11, 19)} ` : '';
    this.err.write(this.redactor.redact(`${stamp}${text}`) + '\n');
    this.redrawStatus();
  }

  private startTicker(): void {
    if (this.mode !== 'tty' || this.ticker) return;
    this.ticker = setInterval(() => this.redrawStatus(), 1000);
    this.ticker.unref();
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
    const now = performance.now();
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
