import { readFileSync } from 'node:fs';

let root: { url: URL; version: string } | undefined;

/** The package's root folder and version, from the package.json above this file (compiled or bundled, at any depth). */
function packageInfo(): { url: URL; version: string } {
  if (root) return root;
  for (let dir = new URL('.', import.meta.url); ; dir = new URL('..', dir)) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as { name?: string; version: string };
      if (pkg.name === 'provisional') return (root = { url: dir, version: pkg.version });
    } catch {
      // not here: one folder up
    }
    if (dir.pathname === '/') throw new Error('package.json of provisional not found');
  }
}

export function toolVersion(): string {
  return packageInfo().version;
}

export function packageRoot(): URL {
  return packageInfo().url;
}
