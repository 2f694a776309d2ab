/**
 * Durations as users type them on the command line (`--older-than 30d`): one or more
 * NUMBER+UNIT parts, `90m`, `12h`, `30d`, `2w`, `1d12h`. Units: s, m (minutes), h, d, w. No
 * months or years: their length varies, and an age limit must mean the same thing every time.
 */
import { UsageError } from './errors.js';

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };
const PART = /(\d+)([smhdw])/gy;

/** Milliseconds, or a UsageError (exit 2) naming the flag and what is wrong. */
export function parseDuration(text: string, flag: string): number {
  const value = text.trim();
  const fail = (why: string) =>
    new UsageError(`${flag}: "${text}" is not a duration: ${why}`, 'write a number and a unit, e.g. 30d, 12h, 2w or 1d12h (units: s, m, h, d, w)');
  if (!value) throw fail('it is empty');
  let total = 0;
  let at = 0;
  let seen = '';
  while (at < value.length) {
    PART.lastIndex = at;
    const m = PART.exec(value);
    if (!m) {
      const rest = value.slice(at);
      throw fail(/^\d+$/.test(rest) ? `"${rest}" has no unit` : `"${rest}" is not NUMBER+UNIT`);
    }
    const unit = m[2]!;
    if (seen.includes(unit)) throw fail(`the unit "${unit}" comes twice`);
    seen += unit;
    total += Number(m[1]) * UNIT_MS[unit]!;
    at = PART.lastIndex;
  }
  if (total <= 0) throw fail('it must be longer than zero');
  if (!Number.isSafeInteger(total)) throw fail('it is too long');
  return total;
}
