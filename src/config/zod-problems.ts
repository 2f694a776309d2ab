/** Zod's issues as config problems: each with its key path, unknown keys with the allowed ones. */
import type { z } from 'zod';
import type { ConfigProblem } from '../core/errors.js';
import { closest } from './suggest.js';

export function zodProblems(
  schema: z.ZodType,
  issues: z.core.$ZodIssue[],
  problem: (path: PropertyKey[], message: string) => ConfigProblem): ConfigProblem[] {
  return issues.flatMap((issue) => {
    const path = issue.path as PropertyKey[];
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => {
        const allowed = allowedKeys(schema, path);
        const guess = closest(key, allowed);
        return problem([...path, key], `unknown key${guess ? `; did you mean "${guess}"?` : allowed.length ? `; allowed here: ${allowed.join(', ')}` : ''}`);
      });
    }
    if (issue.code === 'invalid_type') {
      const got = (issue as { input?: unknown }).input;
      if (got === undefined) return [problem(path, `is required (${issue.expected})`)];
      return [problem(path, `must be ${article(issue.expected)}, not ${describeValue(got)}`)];
    }
    if (issue.code === 'invalid_key') {
      return [problem(path, issue.issues.map((i) => i.message).join('; '))];
    }
    if (issue.code === 'invalid_union' && path.join('.') === 'provider') {
      return [problem(path, 'must be a provider name, or a mapping with `name:` and its settings')];
    }
    return [problem(path, issue.message)];
  });
}

/** The keys allowed where an unknown key was found, read off the schema itself. */
function allowedKeys(schema: z.ZodType, path: PropertyKey[]): string[] {
  let current: unknown = schema;
  const defOf = (s: unknown) => (s as { _zod: { def: Record<string, unknown> & { type: string } } })._zod.def;
  const unwrap = () => {
    for (let def = defOf(current); ['optional', 'default', 'nullable', 'prefault'].includes(def.type); def = defOf(current)) {
      current = def.innerType;
    }
  };
  for (const key of path) {
    unwrap();
    const def = defOf(current);
    if (def.type === 'object') current = (def.shape as Record<string, unknown>)[String(key)];
    else if (def.type === 'record') current = def.valueType;
    else return [];
    if (!current) return [];
  }
  unwrap();
  const def = defOf(current);
  return def.type === 'object' ? Object.keys(def.shape as object) : [];
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function describeValue(v: unknown): string {
  if (v === null) return 'null (an empty value)';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return `${typeof v} ${String(v)}`;
}
