/**
 * Progress events. Everything below the CLI reports through an EventSink; only the reporter
 * (src/cli/reporter.ts) turns events into terminal lines or NDJSON.
 */
export type ProgressEvent =
  /** A long step begins; `scope` groups steps of one build or deploy (e.g. the image name). */
  | { type: 'step'; scope?: string; step: string; message: string }
  /** The step ends. */
  | { type: 'step-done'; scope?: string; step: string; message?: string; durationMs: number }
  /** A line of script output. */
  | { type: 'output'; scope?: string; source: string; stream: 'stdout' | 'stderr'; line: string }
  | { type: 'info'; scope?: string; message: string }
  | { type: 'warn'; scope?: string; message: string }
  /** Detail shown with --verbose only. */
  | { type: 'debug'; scope?: string; message: string }
  /** A result record (e.g. a built version); rendered by the command. */
  | { type: 'result'; scope?: string; message: string; data?: unknown };

export interface EventSink {
  emit(event: ProgressEvent): void;
}

export const nullSink: EventSink = { emit() {} };

/** A sink that stamps every event with a scope (used to prefix parallel builds). */
export function scoped(sink: EventSink, scope: string): EventSink {
  return { emit: (event) => sink.emit({ ...event, scope: event.scope ?? scope }) };
}

/** Send every event to each sink. */
export function tee(...sinks: EventSink[]): EventSink {
  return { emit: (event) => sinks.forEach((s) => s.emit(event)) };
}

/** Run `fn` as a named step, emitting step/step-done (durations let users see where time goes). */
export async function step<T>(sink: EventSink, step: string, message: string, fn: () => Promise<T>): Promise<T> {
  const started = performance.now();
  sink.emit({ type: 'step', step, message });
  const result = await fn();
  sink.emit({ type: 'step-done', step, durationMs: Math.round(performance.now() - started) });
  return result;
}
