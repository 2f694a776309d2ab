/** Processes of this machine, as the tests look for leftovers. */
import { readdirSync, readFileSync } from 'node:fs';

/** Running processes (not this one) whose command line mentions `text`, as "pid: command line" (QEMU and HAProxy carry their run folders in their arguments). */
export function processesMentioning(text: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmdline.includes(text)) found.push(`${pid}: ${cmdline.slice(0, 120)}`);
    } catch {
      /* gone meanwhile */
    }
  }
  return found;
}
