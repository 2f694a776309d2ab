/**
 * Bad input never crashes: random YAML, random structures of the right and wrong types, odd names,
 * binary and huge files. Loading either succeeds or fails with a ConfigError (exit 2) that names
 * the file; never another exception, never a stack trace.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/core/errors.js';
import { tempProject } from '../helpers/project.js';

const project = tempProject('provisional-fuzz-');
after(() => project.remove());

async function outcome(text: string | Buffer): Promise<'ok' | 'config-error'> {
  project.write('config/provisional/config.yml', text as string);
  try {
    await loadConfig({ cwd: project.dir, env: { SET: 'value' } });
    return 'ok';
  } catch (err) {
    if (err instanceof ConfigError) {
      assert.equal(err.exitCode, 2);
      assert.ok(err.problems.length > 0);
      assert.ok(err.problems.every((p) => p.file.endsWith('config.yml') || p.file.includes('config/provisional')), JSON.stringify(err.problems));
      return 'config-error';
    }
    throw new Error(`crashed on ${JSON.stringify(String(text).slice(0, 200))}: ${(err as Error).stack}`);
  }
}

const name = fc.oneof(fc.constantFrom('base', 'app', 'db', 'debian-12', 'Bad Name', '', '-x', 'a'.repeat(60), '${SET}', '${UNSET}', '💥'), fc.string());
const scalar = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), name);
const value = fc.letrec((tie) => ({
  node: fc.oneof({ depthSize: 'small' }, scalar, fc.array(tie('node'), { maxLength: 3 }), fc.dictionary(name, tie('node'), { maxKeys: 4 })),
})).node;
const image = fc.record({ 'base-image': fc.oneof(name, value) }, { requiredKeys: [] });
const configLike = fc.record(
  {
    project: fc.oneof(name, value),
    provider: fc.oneof(fc.constantFrom('local', 'digitalocean', 'aws', 'nope'), value),
    images: fc.oneof(fc.dictionary(name, fc.oneof(image, value), { maxKeys: 4 }), value),
    deployments: fc.oneof(fc.dictionary(name, fc.dictionary(name, fc.oneof(fc.record({ servers: fc.oneof(fc.nat(5), value) }), value), { maxKeys: 2 }), { maxKeys: 2 }), value),
  },
  { requiredKeys: [] },
);

describe('config fuzzing', () => {
  it('random text never crashes the loader', async () => {
    await fc.assert(fc.asyncProperty(fc.string({ maxLength: 300 }), async (text) => void (await outcome(text))), { numRuns: 300 });
  });

  it('random structures, of right and wrong types, never crash the loader', async () => {
    await fc.assert(fc.asyncProperty(configLike, async (doc) => void (await outcome(stringify(doc)))), { numRuns: 300 });
  });

  it('binary, huge and deeply nested files are refused cleanly', async () => {
    assert.equal(await outcome(Buffer.from([0, 1, 2, 255, 254]) as unknown as string), 'config-error');
    assert.equal(await outcome(`images:\n${'  x'.repeat(1)}: [${'['.repeat(5000)}`), 'config-error');
    const aliases = `a: &a [x, x, x, x, x, x, x, x, x]\n${Array.from({ length: 12 }, (_, i) => `b${i + 1}: &b${i + 1} [*${i === 0 ? 'a' : `b${i}`}, *${i === 0 ? 'a' : `b${i}`}, *${i === 0 ? 'a' : `b${i}`}]`).join('\n')}\nimages: {}\n`;
    assert.equal(await outcome(aliases), 'config-error');
  });

  // Large projects: any forest of images (each built from debian-12 or from an image earlier in the
  // forest, written in any order) loads, and the graph has each image's parent and root base. A few
  // hundred images show it; how long 20,000 take is a figure: bench/config-scale.ts.
  it('any forest of up to 400 images loads, with every parent and root base right', async () => {
    const forest = fc
      .integer({ min: 1, max: 400 })
      .chain((n) => fc.tuple(fc.array(fc.nat(), { minLength: n, maxLength: n }), fc.shuffledSubarray([...Array(n).keys()], { minLength: n })));
    await fc.assert(
      fc.asyncProperty(forest, async ([picks, order]) => {
        // Image i is built from image (picks[i] mod i) when picks[i] is odd, else from debian-12.
        const parentOf = (i: number) => (i > 0 && picks[i]! % 2 === 1 ? (picks[i]! >> 1) % i : undefined);
        const lines = order.map((i) => `  i${i}:\n    base-image: ${parentOf(i) === undefined ? 'debian-12' : `i${parentOf(i)}`}\n`);
        project.write('config/provisional/config.yml', `images:\n${lines.join('')}`);
        const config = await loadConfig({ cwd: project.dir, env: {} });
        assert.equal(config.graph.names().length, picks.length);
        for (let i = 0; i < picks.length; i++) {
          const parent = parentOf(i);
          assert.equal(config.graph.parentOf(`i${i}`), parent === undefined ? undefined : `i${parent}`);
          assert.equal(config.graph.rootBaseOf(`i${i}`), 'debian-12');
        }
      }),
      { numRuns: 25 },
    );
  });
});
