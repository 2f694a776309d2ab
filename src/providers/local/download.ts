/**
 * Downloads for configured bases (`provider.bases`): http(s):// or file://, hashed while they
 * stream, refused unless the sha256 matches the configured checksum. A stalled download ends
 * after a minute without data rather than hanging forever.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import type { EventSink } from '../../core/events.js';
import { CancelledError, ProviderError, UserFacingError } from '../../core/errors.js';

const STALL_MS = 60_000;

export interface DownloadOptions {
  url: string;
  /** "sha256:<hex>" */
  checksum: string;
  dest: string;
  events: EventSink;
  signal: AbortSignal;
}

export async function downloadVerified(opts: DownloadOptions): Promise<number> {
  const partial = `${opts.dest}.partial`;
  const stall = new AbortController();
  const signal = AbortSignal.any([opts.signal, stall.signal]);
  let stallTimer = setTimeout(() => stall.abort(), STALL_MS);
  const hash = createHash('sha256');
  let bytes = 0;
  let total: number | undefined;
  let nextReport = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      clearTimeout(stallTimer);
      stallTimer = setTimeout(() => stall.abort(), STALL_MS);
      hash.update(chunk);
      bytes += chunk.length;
      if (total && bytes >= nextReport) {
        opts.events.emit({ type: 'debug', message: `downloaded ${Math.floor((bytes / total) * 100)}% of ${opts.url}` });
        nextReport += total / 10;
      }
      done(null, chunk);
    },
  });
  try {
    let source: Readable;
    if (opts.url.startsWith('file://')) {
      const path = fileURLToPath(opts.url);
      total = (await stat(path)).size;
      source = createReadStream(path);
    } else {
      const response = await fetch(opts.url, { signal, redirect: 'follow' });
      if (!response.ok || !response.body) {
        throw new ProviderError({
          provider: 'local',
          operation: `downloading ${opts.url}`,
          message: `the server answered ${response.status} ${response.statusText}`,
          status: response.status,
        });
      }
      total = Number(response.headers.get('content-length')) || undefined;
      source = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream);
    }
    await pipeline(source, meter, createWriteStream(partial), { signal });
    const actual = `sha256:${hash.digest('hex')}`;
    if (actual !== opts.checksum.toLowerCase()) {
      throw new UserFacingError(`the download of ${opts.url} does not match its checksum: expected ${opts.checksum}, got ${actual}`, {
        hint: 'check the URL and the checksum in provider.bases (a moving "latest" URL changes its content)',
      });
    }
    await rename(partial, opts.dest);
    return bytes;
  } catch (err) {
    if (opts.signal.aborted) throw new CancelledError();
    if (stall.signal.aborted) {
      throw new ProviderError({
        provider: 'local',
        operation: `downloading ${opts.url}`,
        message: `no data for ${STALL_MS / 1000} s`,
        cause: err,
      });
    }
    if (err instanceof UserFacingError) throw err;
    throw new ProviderError({ provider: 'local', operation: `downloading ${opts.url}`, message: (err as Error).message, cause: err });
  } finally {
    clearTimeout(stallTimer);
    await rm(partial, { force: true });
  }
}
