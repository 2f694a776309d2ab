/**
 * Loads config/provisional/config.yml: YAML -> ${VAR} interpolation -> schema -> provider settings
 * -> the checks a schema cannot make (bases exist, no cycles, scripts are executable files).
 * Every problem is collected and reported at once, each with its file, line and key.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import type { z } from 'zod';
import { ConfigError, type ConfigProblem } from '../core/errors.js';
import { ImageGraph } from '../images/graph.js';
import type { ImageDirs } from '../images/inputs.js';
import { availableProviders, loadProviderDefinition } from '../providers/registry.js';
import type { ProviderDefinition } from '../providers/types.js';
import { checkDeployments, deploymentSecrets } from './deployments.js';
import { checkEndpoints } from './endpoints.js';
import { interpolate } from './interpolate.js';
import { configSchema, IMAGE_NAME, type DeploymentImageConfig, type ImageConfig } from './schema.js';
import { closest } from './suggest.js';
import { formatPath, YamlSource } from './yaml-source.js';
import { zodProblems } from './zod-problems.js';

export const CONFIG_RELATIVE_PATH = join('config', 'provisional', 'config.yml');

export interface ProjectConfig {
  /** Absolute path of config.yml. */
  file: string;
  /** The application directory. */
  projectDir: string;
  /** config/provisional: where the image folders are. */
  configDir: string;
  project: string;
  provider: { name: string; settings: unknown; definition: ProviderDefinition<unknown> };
  images: Record<string, ImageConfig>;
  deployments: Record<string, Record<string, DeploymentImageConfig>>;
  graph: ImageGraph;
  /** Values to redact from every output. */
  secrets: string[];
  /** A problem at a key of this file (with its line), for checks made later (a deploy's endpoint). */
  problem(path: PropertyKey[], message: string): ConfigProblem;
}

export function imageDirs(config: Pick<ProjectConfig, 'configDir'>, image: string): ImageDirs {
  return { scriptsDir: join(config.configDir, image, 'scripts'), filesDir: join(config.configDir, image, 'files'), testsDir: join(config.configDir, image, 'tests') };
}

/** The config file: --config, or config/provisional/config.yml here or in a parent directory. */
export function findConfigFile(explicit: string | undefined, cwd = process.cwd()): string {
  if (explicit) return resolve(cwd, explicit);
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    const candidate = join(dir, CONFIG_RELATIVE_PATH);
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) return join(resolve(cwd), CONFIG_RELATIVE_PATH);
  }
}

export async function loadConfig(
  opts: {
    configPath?: string;
    cwd?: string;
    env?: NodeJS.ProcessEnv;
    /** Told about secret values as soon as they are known, so that even error messages are redacted. */
    onSecrets?: (values: string[]) => void;
  } = {},
): Promise<ProjectConfig> {
  const cwd = opts.cwd ?? process.cwd();
  const env = opts.env ?? process.env;
  const file = findConfigFile(opts.configPath, cwd);
  const shown = relative(cwd, file) || file;
  const configDir = dirname(file);
  const projectDir = file.endsWith(CONFIG_RELATIVE_PATH) ? resolve(configDir, '..', '..') : configDir;

  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(
      [{ file: shown, path: '', message: code === 'ENOENT' ? 'no such file' : `cannot read: ${(err as Error).message}` }],
      code === 'ENOENT' ? 'run `provisional init` in your application directory, or pass --config PATH' : undefined,
    );
  }
  if (text.includes('\u0000')) throw new ConfigError([{ file: shown, path: '', message: 'is a binary file, not YAML' }]);

  const source = new YamlSource(shown, text);
  const syntax = source.syntaxProblems();
  if (syntax.length) throw new ConfigError(syntax);
  const problem = (path: PropertyKey[], message: string): ConfigProblem => ({
    file: shown,
    path: formatPath(path),
    line: source.lineOf(path),
    message,
  });

  let raw: unknown;
  try {
    // Aliases are resolved here: an unknown one, or a billion laughs, is refused, not followed.
    raw = source.doc.toJS({ maxAliasCount: 100 }) as unknown;
  } catch (err) {
    throw new ConfigError([problem([], `invalid YAML: ${(err as Error).message}`)]);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError([problem([], 'must be a mapping with at least `images:`')], 'run `provisional init` elsewhere to see a sample');
  }
  const { value, problems: interpolationProblems, secrets } = interpolate(raw, env);
  opts.onSecrets?.(secrets);
  const problems: ConfigProblem[] = interpolationProblems.map((p) => problem(p.path, p.message));

  const parsed = configSchema.safeParse(value, { reportInput: true });
  if (!parsed.success) {
    problems.push(...zodProblems(configSchema, parsed.error.issues, problem));
    throw new ConfigError(problems);
  }
  const config = parsed.data;

  // The provider and its own settings.
  const providerBlock = typeof config.provider === 'string' ? { name: config.provider } : config.provider;
  const { name: providerName, ...providerSettings } = providerBlock;
  const definition = await loadProviderDefinition(providerName);
  let settings: unknown;
  if (!definition) {
    const known = availableProviders();
    const guess = closest(providerName, known);
    problems.push(
      problem(['provider'], `unknown provider "${providerName}"; available: ${known.join(', ')}${guess ? ` (did you mean "${guess}"?)` : ''}`),
    );
  } else {
    const result = definition.settingsSchema.safeParse(providerSettings, { reportInput: true });
    if (result.success) settings = result.data;
    else {
      const base = typeof config.provider === 'string' ? [] : ['provider'];
      problems.push(...zodProblems(definition.settingsSchema, result.error.issues, (path, message) => problem([...base, ...path], message)));
    }
  }

  const graph = new ImageGraph(config.images);
  if (definition && settings !== undefined) problems.push(...checkImages(config.images, graph, definition, settings, problem));
  problems.push(...checkDeployments(config.deployments, graph, problem));
  if (definition) problems.push(...checkEndpoints(config.deployments, definition, problem));
  problems.push(...(await checkImageFolders(configDir, Object.keys(config.images), cwd)));
  if (problems.length) throw new ConfigError(problems);

  return {
    file,
    projectDir,
    configDir,
    project: config.project ?? projectNameFrom(projectDir),
    provider: { name: providerName, settings, definition: definition! },
    images: config.images,
    deployments: config.deployments,
    graph,
    secrets: [...secrets, ...deploymentSecrets(config.deployments), ...(definition!.secrets?.(settings) ?? [])],
    problem,
  };
}

/** A default project name from the directory name, made into a valid name. */
export function projectNameFrom(dir: string): string {
  const name = basename(dir)
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^[^a-z]+/, '')
    .replace(/-+$/, '')
    .slice(0, 48);
  return IMAGE_NAME.test(name) ? name : 'project';
}

function checkImages(
  images: Record<string, ImageConfig>,
  graph: ImageGraph,
  definition: ProviderDefinition<unknown>,
  settings: unknown,
  problem: (path: PropertyKey[], message: string) => ConfigProblem,
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const knownBases = definition.knownBaseRefs?.(settings);
  for (const [name, image] of Object.entries(images)) {
    const nameProblem = definition.checkImageName?.(name);
    if (nameProblem) problems.push(problem(['images', name], `the ${definition.name} provider cannot take this name: ${nameProblem}`));
    if (knownBases?.includes(name)) {
      problems.push(problem(['images', name], `"${name}" is also a base image of the ${definition.name} provider; rename the image`));
    }
    const base = image['base-image'];
    if (graph.has(base)) continue;
    const baseProblem = knownBases
      ? knownBases.includes(base)
        ? undefined
        : `"${base}" is neither an image of this file nor a base image of the ${definition.name} provider`
      : definition.checkBaseRef?.(base, settings);
    if (baseProblem) {
      const guess = closest(base, [...graph.names(), ...(knownBases ?? [])]);
      const options = [...graph.names().filter((n) => n !== name), ...(knownBases ?? [])];
      problems.push(
        problem(
          ['images', name, 'base-image'],
          `${baseProblem}${guess ? ` (did you mean "${guess}"?)` : options.length ? `; use one of: ${options.join(', ')}` : ''}`,
        ),
      );
    }
  }
  for (const cycle of graph.cycles()) {
    problems.push(
      problem(['images', cycle[0]!, 'base-image'], `images are built from each other in a cycle: ${cycle.join(' -> ')}; one of them must start from a base image`),
    );
  }
  return problems;
}

/**
 * Scripts must be executable regular files: build scripts (scripts/) run in lexical order on the
 * builder, image tests (tests/) on a server booted from the new version, deploy scripts (deploy/)
 * on every new server.
 */
async function checkImageFolders(configDir: string, images: string[], cwd: string): Promise<ConfigProblem[]> {
  const problems: ConfigProblem[] = [];
  for (const folder of images.flatMap((image) => [join(image, 'scripts'), join(image, 'tests'), join(image, 'deploy')])) {
    const scriptsDir = join(configDir, folder);
    const kind = basename(folder);
    let entries: string[];
    try {
      entries = await readdir(scriptsDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      problems.push({ file: relative(cwd, scriptsDir), path: '', message: `cannot read the ${kind} folder: ${(err as Error).message}` });
      continue;
    }
    for (const entry of entries.sort()) {
      const path = join(scriptsDir, entry);
      const shown = relative(cwd, path) || path;
      const st = await stat(path).catch(() => undefined);
      if (!st) problems.push({ file: shown, path: '', message: 'is a broken symbolic link; remove it or point it at a script' });
      else if (!st.isFile()) problems.push({ file: shown, path: '', message: `is not a file; ${kind}/ holds only ${kind === 'tests' ? 'tests' : 'scripts'}${kind === 'deploy' ? '' : ' (put other files in files/)'}` });
      else if ((st.mode & 0o100) === 0) problems.push({ file: shown, path: '', message: `is not executable; run: chmod +x ${shown}` });
    }
  }
  return problems;
}
