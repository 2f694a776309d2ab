/**
 * `${VAR}` interpolation, done on parsed values (never on the YAML text, so a value cannot
 * inject YAML). `${VAR:-default}` gives a default; `$${` is a literal `${`.
 */
const REFERENCE = /\$(\$)?\{([^}]*)\}/g;
const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Variables whose values are redacted from every output. */
const SECRET_NAME = /TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|ACCESS_KEY|PRIVATE|CREDENTIAL/i;

/** Whether a variable's name says its value is a secret (a token, a password, a key...). */
export function looksSecret(name: string): boolean {
  return SECRET_NAME.test(name);
}

export interface InterpolationProblem {
  path: PropertyKey[];
  message: string;
}

export interface Interpolated<T> {
  value: T;
  problems: InterpolationProblem[];
  /** Values taken from variables that look secret, to redact from output. */
  secrets: string[];
}

export function interpolate<T>(value: T, env: NodeJS.ProcessEnv): Interpolated<T> {
  const problems: InterpolationProblem[] = [];
  const secrets = new Set<string>();

  const visit = (v: unknown, path: PropertyKey[]): unknown => {
    if (typeof v === 'string') {
      return v.replace(REFERENCE, (match, escaped: string | undefined, body: string) => {
        if (escaped) return match.slice(1);
        const [name, fallback] = splitDefault(body);
        if (!VAR_NAME.test(name)) {
          problems.push({ path, message: `"\${${body}}" is not a variable reference; write \${NAME} or \${NAME:-default}, or $\${ for a literal \${` });
          return match;
        }
        const found = env[name];
        if (found === undefined || found === '') {
          if (fallback !== undefined) return fallback;
          problems.push({ path, message: `environment variable ${name} is not set; export it, or give a default: \${${name}:-value}` });
          return match;
        }
        if (SECRET_NAME.test(name)) secrets.add(found);
        return found;
      });
    }
    if (Array.isArray(v)) return v.map((item, i) => visit(item, [...path, i]));
    if (v && typeof v === 'object') {
      return Object.fromEntries(Object.entries(v).map(([k, item]) => [k, visit(item, [...path, k])]));
    }
    return v;
  };

  return { value: visit(value, []) as T, problems, secrets: [...secrets] };
}

function splitDefault(body: string): [string, string | undefined] {
  const i = body.indexOf(':-');
  return i < 0 ? [body, undefined] : [body.slice(0, i), body.slice(i + 2)];
}
