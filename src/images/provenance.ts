/**
 * A version's provenance (providers/types.ts Provenance): the project's git commit and whether the
 * tree had uncommitted changes, the builder's size, the scripts and tests by name. Git is asked,
 * not parsed: a project outside git (or without git installed) records no commit.
 */
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { Provenance } from '../providers/types.js';
import { listScripts, type ImageDirs } from './inputs.js';

const exec = promisify(execFile);

export interface GitState {
  commit?: string;
  dirty?: boolean;
}

export async function gitState(dir: string): Promise<GitState> {
  const git = (...args: string[]) => exec('git', ['-C', dir, ...args], { timeout: 30_000, maxBuffer: 64 * 1024 * 1024 }).then((r) => r.stdout);
  try {
    const commit = (await git('rev-parse', '--verify', 'HEAD')).trim();
    // Untracked files count: a new script is an uncommitted change too.
    const dirty = (await git('status', '--porcelain', '--untracked-files=normal')).trim().length > 0;
    return { commit, dirty };
  } catch {
    return {};
  }
}

/** config/provisional/<image>/tests, beside scripts/. */
function testsDirOf(dirs: ImageDirs): string {
  return dirs.testsDir ?? join(dirname(dirs.scriptsDir), 'tests');
}

export async function provenanceOf(git: GitState, dirs: ImageDirs, builderSize: string): Promise<Provenance> {
  return {
    ...git,
    builderSize,
    scripts: await listScripts(dirs.scriptsDir),
    tests: await listScripts(testsDirOf(dirs)),
  };
}
