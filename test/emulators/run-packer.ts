/**
 * Runs Debian's Packer 1.6.6 (the real client the emulators are judged by) in a directory of its own,
 * killed after a time limit. `env` is added to `inherit` (the process's environment unless a test
 * gives a filtered one, e.g. without AWS_* variables).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';

export function runPacker(args: string[], cwd: string, timeoutMs: number, env: Record<string, string> = {}, inherit: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('packer', args, {
      cwd,
      env: { ...inherit, ...env, CHECKPOINT_DISABLE: '1', PACKER_LOG: '1', PACKER_LOG_PATH: join(cwd, 'packer.log'), HOME: cwd },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
      reject(new Error(`packer did not finish within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}
