import { readFileSync } from 'node:fs';

let cached: string | undefined;

/** The tool's version, from package.json (dist/src/cli -> the package root). */
export function toolVersion(): string {
  cached ??= (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  return cached;
}
