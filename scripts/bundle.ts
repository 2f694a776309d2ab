/**
 * Bundles the CLI for a fast start: commander, yaml and zod are read as a few files instead of a
 * few hundred modules. Each command and each provider stays its own chunk, loaded when used, and
 * the heavy SDKs (ssh2, the AWS SDK) stay outside, loaded only by what needs them.
 * Output: dist/bundle/cli/main.js (what bin/provisional.js runs) and dist/bundle/providers/<name>/index.js.
 */
import { build } from 'esbuild';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const root = fileURLToPath(new URL('../..', import.meta.url));
const providers = readdirSync(join(root, 'src/providers'), { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(join(root, 'src/providers', d.name, 'index.ts')))
  .map((d) => join(root, 'src/providers', d.name, 'index.ts'));

// Chunk names carry a hash: start empty, so that no chunk of an earlier build is left (or packed).
rmSync(join(root, 'dist/bundle'), { recursive: true, force: true });

await build({
  absWorkingDir: root,
  entryPoints: [join(root, 'src/cli/main.ts'), ...providers],
  outbase: join(root, 'src'),
  outdir: join(root, 'dist/bundle'),
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  logLevel: 'warning',
  external: ['ssh2', 'tar', '@aws-sdk/*', 'cpu-features'],
  // CommonJS packages inside an ESM bundle need a require of their own.
  banner: { js: "import { createRequire as __provisionalCreateRequire } from 'node:module'; const require = __provisionalCreateRequire(import.meta.url);" },
});
