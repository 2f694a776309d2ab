/**
 * Which Debian mirror to build debian-12 from. By default the one this machine's apt already uses:
 * it is the one known to be reachable (a local mirror, a proxy, a snapshot), where deb.debian.org
 * may not be.
 */
import { readFile } from 'node:fs/promises';

export const DEFAULT_MIRROR = 'http://deb.debian.org/debian';
export const DEFAULT_SECURITY_MIRROR = 'http://deb.debian.org/debian-security';

export interface AptSource {
  uris: string[];
  suites: string[];
}

export interface DebianMirrors {
  /** Serves `bookworm` and `bookworm-updates`. */
  mirror: string;
  /** Serves `bookworm-security`, when known. */
  security?: string;
}

/** Entries of a deb822 `.sources` file (apt's sources.list(5), "DEB822-STYLE FORMAT"). */
export function parseDeb822Sources(text: string): AptSource[] {
  const sources: AptSource[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let last: string | undefined;
    for (const line of stanza.split('\n')) {
      if (line.startsWith('#')) continue;
      if (/^\s/.test(line) && last) {
        // A continuation line belongs to the previous field.
        fields.set(last, `${fields.get(last)} ${line.trim()}`);
        continue;
      }
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
      if (!m) continue;
      last = m[1]!.toLowerCase();
      fields.set(last, m[2]!.trim());
    }
    const types = (fields.get('types') ?? '').split(/\s+/);
    if (!types.includes('deb')) continue;
    if (/^(no|false)$/i.test(fields.get('enabled') ?? 'yes')) continue;
    const uris = (fields.get('uris') ?? '').split(/\s+/).filter(Boolean);
    const suites = (fields.get('suites') ?? '').split(/\s+/).filter(Boolean);
    if (uris.length && suites.length) sources.push({ uris, suites });
  }
  return sources;
}

/** Lines of a one-line-style `sources.list`: `deb [options] URI SUITE COMPONENT...`. */
export function parseOneLineSources(text: string): AptSource[] {
  const sources: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
    if (m) sources.push({ uris: [m[1]!], suites: [m[2]!] });
  }
  return sources;
}

const usable = (uri: string) => /^https?:\/\//.test(uri);
const trimSlash = (uri: string) => uri.replace(/\/+$/, '');

/** Picks the main and security mirrors from apt sources; undefined when none is usable. */
export function pickMirrors(sources: AptSource[]): DebianMirrors | undefined {
  const isSecurity = (suite: string) => /[-/]security$/.test(suite);
  const main = sources.find((s) => s.suites.some((x) => !isSecurity(x)) && s.uris.some(usable));
  if (!main) return undefined;
  const security = sources.find((s) => s.suites.some(isSecurity) && s.uris.some(usable));
  return {
    mirror: trimSlash(main.uris.find(usable)!),
    security: security ? trimSlash(security.uris.find(usable)!) : undefined,
  };
}

export interface MirrorFiles {
  deb822?: string;
  oneLine?: string;
}

/** The mirrors to use: the setting if given, else this machine's apt sources, else deb.debian.org. */
export function resolveMirrors(setting: string | undefined, files: MirrorFiles): DebianMirrors {
  if (setting) {
    const mirror = trimSlash(setting);
    // The public mirror's security archive sits beside it; a private mirror may not have one.
    return { mirror, security: mirror === DEFAULT_MIRROR ? DEFAULT_SECURITY_MIRROR : undefined };
  }
  const fromApt =
    (files.deb822 !== undefined ? pickMirrors(parseDeb822Sources(files.deb822)) : undefined) ??
    (files.oneLine !== undefined ? pickMirrors(parseOneLineSources(files.oneLine)) : undefined);
  return fromApt ?? { mirror: DEFAULT_MIRROR, security: DEFAULT_SECURITY_MIRROR };
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

export async function machineMirrors(setting: string | undefined): Promise<DebianMirrors> {
  if (setting) return resolveMirrors(setting, {});
  return resolveMirrors(undefined, {
    deb822: await readIfExists('/etc/apt/sources.list.d/debian.sources'),
    oneLine: await readIfExists('/etc/apt/sources.list'),
  });
}
