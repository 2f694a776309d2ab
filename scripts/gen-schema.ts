/**
 * Writes schema/config.schema.json from the zod schema, with each provider's settings, so that
 * editors can complete and check config.yml. Run by `npm run build`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import { configSchema } from '../src/config/schema.js';
import { availableProviders, loadProviderDefinition } from '../src/providers/registry.js';

const providers = await Promise.all(availableProviders().map(async (name) => ({ name, def: (await loadProviderDefinition(name))! })));
const providerBlocks = providers.map(({ name, def }) =>
  z.object({ name: z.literal(name) }).extend((def.settingsSchema as unknown as z.ZodObject).shape).strict(),
);
const schema = configSchema.extend({
  provider: z.union([z.enum(providers.map((p) => p.name) as [string, ...string[]]), ...providerBlocks]).optional(),
});
const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' });
mkdirSync(new URL('../../schema/', import.meta.url), { recursive: true });
writeFileSync(
  new URL('../../schema/config.schema.json', import.meta.url),
  `${JSON.stringify({ ...json, title: 'Provisional config (config/provisional/config.yml)' }, null, 2)}\n`,
);
