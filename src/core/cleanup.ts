/**
 * A stack of undo actions. Each resource's removal is registered the moment the resource exists;
 * on failure or Ctrl-C the stack unwinds in reverse order, each action with its own time limit and
 * a signal of its own (the command's signal is already aborted by then).
 */
import type { EventSink } from './events.js';

interface Entry {
  what: string;
  undo: (signal: AbortSignal) => Promise<void>;
}

export class CleanupStack {
  private entries: Entry[] = [];

  /** Register how to remove something; returns a function that drops the entry once it is removed normally. */
  defer(what: string, undo: (signal: AbortSignal) => Promise<void>): () => void {
    const entry = { what, undo };
    this.entries.push(entry);
    return () => {
      this.entries = this.entries.filter((e) => e !== entry);
    };
  }

  get size(): number {
    return this.entries.length;
  }

  /** Undo everything still registered, newest first. Failures are reported, not thrown. */
  async unwind(events: EventSink, timeoutMs = 120_000): Promise<{ failed: string[] }> {
    const failed: string[] = [];
    while (this.entries.length) {
      const entry = this.entries.pop()!;
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), timeoutMs);
      try {
        events.emit({ type: 'info', message: `cleaning up: ${entry.what}` });
        await entry.undo(controller.signal);
      } catch (err) {
        failed.push(entry.what);
        events.emit({ type: 'warn', message: `could not clean up ${entry.what}: ${(err as Error).message}` });
      } finally {
        clearTimeout(timer);
      }
    }
    return { failed };
  }
}
