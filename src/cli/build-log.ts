/**
 * Each build's full log (every step and every line of script output, secrets redacted), kept under
 * the state directory with mode 0600 so that a failure can be read after the terminal is gone.
 */
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { EventSink, ProgressEvent } from '../core/events.js';
import { stateDir } from '../core/paths.js';
import type { Redactor } from '../core/redact.js';

export interface BuildLog {
  sink: EventSink;
  path: string;
  close(): Promise<void>;
}

export async function openBuildLog(project: string, image: string, runId: string, redactor: Redactor): Promise<BuildLog> {
  const dir = join(stateDir(), 'logs', project);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, `${image}-${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}-${runId}.log`);
  const stream = createWriteStream(path, { mode: 0o600, flags: 'wx' });
  const line = (event: ProgressEvent): string => {
    switch (event.type) {
      case 'output':
        return `${event.source} | ${event.line}`;
      case 'step-done':
        return `${event.message ?? event.step}: done in ${event.durationMs} ms`;
      case 'warn':
        return `warning: ${event.message}`;
      default:
        return event.message;
    }
  };
  return {
    path,
    sink: { emit: (event) => stream.write(redactor.redact(`${new Date().toISOString()} ${line(event)}`) + '\n') },
    close: () => new Promise<void>((resolve) => stream.end(resolve)),
  };
}
