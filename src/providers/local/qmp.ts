/**
 * A minimal QMP client (QEMU's JSON control protocol, https://www.qemu.org/docs/master/interop/qmp-spec.html):
 * enough to ask a machine to power down or to quit. One connection per command: we rarely need it.
 */
import { connect } from 'node:net';

export function qmpCommand(socketPath: string, command: string, timeoutMs = 5000, args?: Record<string, unknown>): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path: socketPath });
    let buffer = '';
    let stage: 'greeting' | 'capabilities' | 'command' = 'greeting';
    const timer = setTimeout(() => finish(new Error(`QMP ${command} timed out after ${timeoutMs} ms`)), timeoutMs);
    const finish = (err?: Error, value?: unknown) => {
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    socket.setEncoding('utf8');
    socket.on('error', (err) => finish(err));
    socket.on('close', () => finish(new Error(`QMP connection closed before ${command} was answered`)));
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (!line) continue;
        let message: Record<string, unknown>;
        try {
          message = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        if ('event' in message) continue; // asynchronous events (SHUTDOWN, POWERDOWN...) are not answers
        if (stage === 'greeting' && 'QMP' in message) {
          stage = 'capabilities';
          socket.write(`${JSON.stringify({ execute: 'qmp_capabilities' })}\n`);
        } else if (stage === 'capabilities' && 'return' in message) {
          stage = 'command';
          socket.write(`${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`);
        } else if ('error' in message) {
          const error = message['error'] as { desc?: string };
          finish(new Error(`QMP ${command}: ${error.desc ?? 'error'}`));
        } else if (stage === 'command' && 'return' in message) {
          finish(undefined, message['return']);
        }
      }
    });
  });
}
