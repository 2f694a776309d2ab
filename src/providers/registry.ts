/**
 * Finds providers by folder: src/providers/<name>/index.ts default-exports a ProviderDefinition.
 * Adding a provider means adding a folder; nothing here names one.
 */
import { readdirSync, existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ProviderDefinition } from './types.js';

/**
 * The providers folder: this file's own folder when compiled as is (dist/src/providers); when
 * bundled, this code sits in a chunk at the bundle's root, beside providers/.
 */
const self = dirname(fileURLToPath(import.meta.url));
const here = existsSync(join(self, 'registry.js')) || basename(self) === 'providers' ? self : join(self, 'providers');

export function availableProviders(): string[] {
  return readdirSync(here, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(here, d.name, 'index.js')))
    .map((d) => d.name)
    .sort();
}

const loaded = new Map<string, ProviderDefinition<unknown>>();

/** Loads a provider's definition (its settings schema and factory; SDKs load later, in create()). */
export async function loadProviderDefinition(name: string): Promise<ProviderDefinition<unknown> | undefined> {
  if (!/^[a-z][a-z0-9-]*$/.test(name)) return undefined;
  const cached = loaded.get(name);
  if (cached) return cached;
  const entry = join(here, name, 'index.js');
  if (!existsSync(entry)) return undefined;
  const mod = (await import(pathToFileURL(entry).href)) as { default: ProviderDefinition<unknown> };
  loaded.set(name, mod.default);
  return mod.default;
}
