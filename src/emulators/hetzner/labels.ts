/**
 * Label selectors, as the API filters with them (https://docs.hetzner.cloud/#label-selector):
 * `k=v` (or `k==v`), `k!=v`, `k` (present), `!k` (absent), `k in (a,b)`, `k notin (a,b)`;
 * expressions joined by commas must all hold. Labels themselves: keys up to 63 characters (with
 * an optional DNS prefix), values up to 63, both starting and ending alphanumeric.
 */
import { invalidInput } from './http.js';

export type Labels = Record<string, string>;
type Test = (labels: Labels) => boolean;

const KEY = /^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;
const VALUE = /^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$/;

/** Splits on commas outside parentheses. */
function expressions(selector: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of selector) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(current);
      current = '';
    } else current += ch;
  }
  out.push(current);
  return out.map((e) => e.trim());
}

function parseExpression(expr: string): Test | undefined {
  let m = /^!\s*(\S+)$/.exec(expr);
  if (m && KEY.test(m[1]!)) return (l) => !(m![1]! in l);
  m = /^(\S+?)\s*(==|!=|=)\s*(\S*)$/.exec(expr);
  if (m && KEY.test(m[1]!) && VALUE.test(m[3]!)) {
    const [, key, op, value] = m as unknown as [string, string, string, string];
    return op === '!=' ? (l) => l[key] !== value : (l) => l[key] === value;
  }
  m = /^(\S+)\s+(in|notin)\s*\(([^()]*)\)$/.exec(expr);
  if (m && KEY.test(m[1]!)) {
    const values = m[3]!.split(',').map((v) => v.trim());
    if (values.some((v) => !VALUE.test(v))) return undefined;
    const key = m[1]!;
    return m[2] === 'in' ? (l) => key in l && values.includes(l[key]!) : (l) => !(key in l) || !values.includes(l[key]!);
  }
  if (KEY.test(expr)) return (l) => expr in l;
  return undefined;
}

/** A predicate for the selector; an unreadable selector is the API's invalid_input. */
export function parseLabelSelector(selector: string): Test {
  const tests = expressions(selector).map((expr) => {
    const test = expr ? parseExpression(expr) : undefined;
    if (!test) throw invalidInput('label_selector', `invalid label selector expression "${expr}"`);
    return test;
  });
  return (labels) => tests.every((t) => t(labels));
}

/** Checks labels given in a request body; invalid ones are invalid_input on `labels`. */
export function validLabels(value: unknown): Labels {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw invalidInput('labels', 'labels must be an object');
  const labels: Labels = {};
  for (const [k, v] of Object.entries(value)) {
    if (!KEY.test(k)) throw invalidInput('labels', `label key "${k}" is invalid`);
    if (typeof v !== 'string' || !VALUE.test(v)) throw invalidInput('labels', `label value of "${k}" is invalid`);
    labels[k] = v;
  }
  return labels;
}
