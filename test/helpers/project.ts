/** Temporary application directories for tests. */
import { mkdtempSync, mkdirSync, writeFileSync, chmodSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export interface TempProject {
  dir: string;
  write(path: string, content: string, mode?: number): void;
  writeConfig(yaml: string): void;
  remove(): void;
}

export function tempProject(prefix = 'provisional-test-'): TempProject {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const write = (path: string, content: string, mode = 0o644) => {
    const abs = join(dir, path);
    mkdirSync(dirname(abs), { recursive: true });
    writeFileSync(abs, content);
    chmodSync(abs, mode);
  };
  return {
    dir,
    write,
    writeConfig: (yaml) => write('config/provisional/config.yml', yaml),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
