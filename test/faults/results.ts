/**
 * Each case's outcome, appended as one JSON line to $PROVISIONAL_FAULT_RESULTS (when set), so
 * that bench/fault-report.ts can add them up after the matrix ran.
 */
import { appendFileSync } from 'node:fs';

export interface CaseResult {
  provider: string;
  /** e.g. `SIGKILL build at snapshot`, `fault: 429 storm`. */
  name: string;
  kind: 'signal' | 'fault' | 'concurrent' | 'canary';
  /** Faults injected: signals sent, fault answers the emulator gave, faulty scripts run. */
  injected: number;
  /** Resources found at the provider (or on disk) that nothing should have left. */
  leftovers: string[];
  /** Versions listed before the case that were missing or unavailable after it. */
  versionsLost: string[];
  /** Places the canary showed up. */
  leaks: string[];
  passed: boolean;
  error?: string;
  durationMs: number;
  note?: string;
}

export function recordResult(result: CaseResult): void {
  const file = process.env.PROVISIONAL_FAULT_RESULTS;
  if (file) appendFileSync(file, `${JSON.stringify(result)}\n`);
}
