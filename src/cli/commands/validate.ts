/** `provisional validate`: the config and image folders, checked without calling the provider. */
import { imageDirs } from '../../config/load.js';
import { listScripts } from '../../images/inputs.js';
import { loadProject, type CommandContext } from '../context.js';

export async function run(ctx: CommandContext): Promise<number> {
  const config = await loadProject(ctx);
  const images = await Promise.all(
    config.graph.order().map(async (name) => ({
      name,
      base: config.images[name]!['base-image'],
      scripts: await listScripts(imageDirs(config, name).scriptsDir),
      tests: await listScripts(imageDirs(config, name).testsDir!),
    })),
  );
  const environments = Object.entries(config.deployments).map(([name, imgs]) => ({
    name,
    servers: Object.values(imgs).reduce((n, d) => n + d.servers, 0),
  }));
  if (ctx.globals.json) {
    ctx.reporter.printJson({ valid: true, file: config.file, project: config.project, provider: config.provider.name, images, environments });
    return 0;
  }
  const lines = [
    `${config.file}: valid`,
    `project ${config.project}, provider ${config.provider.name}`,
    ...images.map((i) => `  image ${i.name} <- ${i.base} (${i.scripts.length} script${i.scripts.length === 1 ? '' : 's'}${i.tests.length ? `, ${i.tests.length} test${i.tests.length === 1 ? '' : 's'}` : ''})`),
    ...environments.map((e) => `  environment ${e.name}: ${e.servers} server${e.servers === 1 ? '' : 's'}`),
  ];
  ctx.reporter.print(lines.join('\n'));
  return 0;
}
