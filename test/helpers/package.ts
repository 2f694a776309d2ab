/**
 * The package as users get it: `npm pack` of this checkout (built), installed into an empty
 * temporary project, or globally into a temporary prefix. Shared by test/package and bench/.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../..', import.meta.url));

const npm = (args: string[], cwd: string) => execFileSync('npm', [...args, '--no-fund', '--no-audit', '--loglevel=error'], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

export interface InstalledPackage {
  /** The tarball npm pack made. */
  tarball: string;
  /** A project with the package installed (`npm install ./provisional-*.tgz`). */
  project: string;
  /** The installed package's own folder (node_modules/provisional). */
  packageDir: string;
  remove(): void;
}

/** Packs the checkout (which must be built: `npm run build`) and installs the tarball into an empty project. */
export function packAndInstall(): InstalledPackage {
  const root = mkdtempSync(join(tmpdir(), 'provisional-pack-'));
  const [{ filename }] = JSON.parse(npm(['pack', '--json', '--pack-destination', root], REPO)) as { filename: string }[];
  const tarball = join(root, filename);
  const project = join(root, 'project');
  execFileSync('mkdir', [project]);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'try-provisional', version: '1.0.0', private: true }));
  npm(['install', tarball], project);
  return { tarball, project, packageDir: join(project, 'node_modules/provisional'), remove: () => rmSync(root, { recursive: true, force: true }) };
}

/** Installs the tarball globally into `prefix` (`npm install -g --prefix`); returns the bin directory. */
export function installGlobally(tarball: string, prefix: string): string {
  npm(['install', '-g', '--prefix', prefix, tarball], prefix);
  return join(prefix, 'bin');
}

/**
 * A module hook, for `node --import`, that appends the URL of every ES module loaded to $LOAD_LOG:
 * which files a command started from.
 */
export function writeLoadLogger(dir: string): string {
  const hooks = join(dir, 'load-log-hooks.mjs');
  const register = join(dir, 'load-log.mjs');
  writeFileSync(hooks, "import { appendFileSync } from 'node:fs';\nexport async function load(url, context, next) {\n  appendFileSync(process.env.LOAD_LOG, url + '\\n');\n  return next(url, context);\n}\n");
  writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(`file://${hooks}`)});\n`);
  return register;
}
