/** `provisional init`: config/provisional/config.yml and a sample image tree, never overwriting. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { sampleTree, writeSampleTree } from '../../config/init.js';
import { CONFIG_RELATIVE_PATH } from '../../config/load.js';
import { closest } from '../../config/suggest.js';
import { UsageError } from '../../core/errors.js';
import { availableProviders, loadProviderDefinition } from '../../providers/registry.js';
import type { CommandContext } from '../context.js';
import { packageRoot } from '../version.js';

export async function run(ctx: CommandContext, opts: { provider: string }): Promise<number> {
  const root = process.cwd();
  const configFile = join(root, CONFIG_RELATIVE_PATH);
  if (ctx.globals.config) throw new UsageError('init writes config/provisional/config.yml in the current directory; --config does not apply', 'cd into your application directory and run provisional init');
  if (existsSync(configFile)) {
    throw new UsageError(`${CONFIG_RELATIVE_PATH} already exists; init changed nothing`, 'edit it, or check it with: provisional validate');
  }
  const providers = availableProviders();
  if (!providers.includes(opts.provider)) {
    const guess = closest(opts.provider, providers);
    throw new UsageError(`unknown provider "${opts.provider}"`, guess ? `did you mean "${guess}"?` : `available: ${providers.join(', ')}`);
  }
  const schemaUrl = new URL('schema/config.schema.json', packageRoot()).href;
  const definition = (await loadProviderDefinition(opts.provider))!;
  const tree = await writeSampleTree(root, sampleTree(opts.provider, definition.sampleBaseRef, existsSync(new URL(schemaUrl)) ? schemaUrl : undefined, definition.sampleEndpoint));
  // A stable listing: the config first, then the sample tree in path order.
  const written = [...tree.written].sort((a, b) => Number(b === CONFIG_RELATIVE_PATH) - Number(a === CONFIG_RELATIVE_PATH) || a.localeCompare(b));
  const kept = [...tree.kept].sort();
  if (ctx.globals.json) {
    ctx.reporter.printJson({ config: configFile, written, kept });
    return 0;
  }
  ctx.reporter.print(
    [
      `wrote ${CONFIG_RELATIVE_PATH} (provider: ${opts.provider}) and a sample image tree:`,
      ...written.filter((w) => w !== CONFIG_RELATIVE_PATH).map((w) => `  ${w}`),
      ...(kept.length ? [`kept as they were: ${kept.join(', ')}`] : []),
      '',
      'next:',
      '  provisional validate            check the config',
      '  provisional image update        build base, then app and db from it',
      '  provisional image list          see the versions',
    ].join('\n'),
  );
  return 0;
}
