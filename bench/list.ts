/**
 * `provisional image list` over 1,000 versions on the local provider (target: at most 300 ms,
 * the whole command, node start-up included). The versions are written as the local provider
 * stores them (one JSON record per version); listing reads only those records.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tempProject } from '../test/helpers/project.js';
import { median, timeCli } from './lib.js';
import { nullSink } from '../src/core/events.js';
import { LocalProvider } from '../src/providers/local/provider.js';
import { localSettingsSchema } from '../src/providers/local/settings.js';

/** The local provider's own listing, in this process: the first call (nothing read yet), then a second. */
async function timeProviderListing(dataDir: string): Promise<{ first: number; second: number }> {
  const previous = process.env.PROVISIONAL_DATA_DIR;
  process.env.PROVISIONAL_DATA_DIR = dataDir;
  try {
    const provider = new LocalProvider(localSettingsSchema.parse({}), { project: 'bench', projectDir: dataDir, events: nullSink });
    const signal = new AbortController().signal;
    const timed = async () => {
      const started = performance.now();
      await provider.listImageVersions(signal);
      return performance.now() - started;
    };
    return { first: await timed(), second: await timed() };
  } finally {
    if (previous === undefined) delete process.env.PROVISIONAL_DATA_DIR;
    else process.env.PROVISIONAL_DATA_DIR = previous;
  }
}

export async function benchList(total = 1000): Promise<{ versions: number; table: number; json: number; provider: { first: number; second: number } }> {
  const project = tempProject('provisional-bench-list-');
  const dataDir = mkdtempSync(join(tmpdir(), 'provisional-bench-list-data-'));
  const env = { PROVISIONAL_DATA_DIR: dataDir };
  try {
    project.writeConfig('project: bench\nimages:\n  base:\n    base-image: debian-12\n  app:\n    base-image: base\n  db:\n    base-image: base\n');
    const images = ['base', 'app', 'db'];
    for (let i = 0; i < total; i++) {
      const image = images[i % images.length]!;
      const date = new Date(Date.UTC(2026, 0, 1) + i * 60_000);
      const stamp = date.toISOString().replace(/[-:T]/g, '').slice(0, 14);
      const version = `${image}-${stamp}`;
      const dir = join(dataDir, 'local', 'bench', 'images', image);
      mkdirSync(dir, { recursive: true });
      const record = {
        image,
        version,
        id: join(dir, `${version}.qcow2`),
        status: 'available',
        sizeBytes: 6_000_000 + i,
        parent: image === 'base' ? { kind: 'base', ref: 'debian-12' } : { kind: 'image', image: 'base', version: `base-${stamp}` },
        inputHash: 'f'.repeat(64),
        toolVersion: '0.1.0',
        createdAt: date.toISOString(),
        local: { backing: '/nonexistent/disk.qcow2', boot: { kind: 'kernel', kernel: '/nonexistent/vmlinuz', initrd: '/nonexistent/initrd', append: 'root=/dev/vda' } },
      };
      writeFileSync(join(dir, `${version}.json`), JSON.stringify(record, null, 2));
    }
    const measure = (args: string[]) => {
      for (let i = 0; i < 2; i++) timeCli(args, { cwd: project.dir, env });
      return median(Array.from({ length: 11 }, () => timeCli(args, { cwd: project.dir, env })));
    };
    const provider = await timeProviderListing(dataDir);
    return { versions: total, table: measure(['image', 'list']), json: measure(['image', 'list', '--json']), provider };
  } finally {
    project.remove();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await benchList();
  console.log(`provisional image list, ${r.versions} versions:         ${r.table.toFixed(0)} ms (median of 11; target <= 300 ms)`);
  console.log(`provisional image list --json, ${r.versions} versions:  ${r.json.toFixed(0)} ms (median of 11; target <= 300 ms)`);
  console.log(`local provider listImageVersions, ${r.versions} versions, in process: ${r.provider.first.toFixed(0)} ms, then ${r.provider.second.toFixed(0)} ms`);
}
