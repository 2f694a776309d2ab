/**
 * Test controls beside an emulator's API, under /_emulator/: faults, delays, the request log, and
 * publishing a new build of a base image behind the same name (`POST /_emulator/base-images`
 * `{"ref": "debian-12-x64"}`), as clouds do when a distribution ships fixes.
 * No token, never counted, never rate limited.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Faults, FaultSettings } from './faults.js';
import { readJsonBody, sendJson } from './json-http.js';
import type { RequestLog } from './request-log.js';

/** Publishes a new image behind a base's name; answers what it replaced and what it is now. */
export type PublishBase = (ref: string) => { ref: string; previous: string; current: string };

export async function answerControl(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  faults: Faults,
  delays: object,
  requests: RequestLog,
  publishBase?: PublishBase,
): Promise<void> {
  try {
    const body = (await readJsonBody(req)) as Record<string, unknown> | undefined;
    const path = url.pathname.replace(/\/$/, '');
    const route = `${req.method} ${path}`;
    switch (route) {
      case 'POST /_emulator/faults':
        faults.set((body ?? {}) as FaultSettings);
        return sendJson(res, 200, { fired: faults.fired });
      case 'DELETE /_emulator/faults':
        faults.clear();
        return sendJson(res, 200, { fired: faults.fired });
      case 'GET /_emulator/faults':
        return sendJson(res, 200, { fired: faults.fired });
      case 'POST /_emulator/delays':
        Object.assign(delays, body ?? {});
        return sendJson(res, 200, { delays });
      case 'GET /_emulator/delays':
        return sendJson(res, 200, { delays });
      case 'GET /_emulator/requests':
        return sendJson(res, 200, { total: requests.total, counts: requests.counts(), statuses: requests.statuses() });
      case 'POST /_emulator/base-images': {
        const ref = body?.ref;
        if (!publishBase || typeof ref !== 'string') return sendJson(res, 400, { id: 'bad_request', message: 'POST /_emulator/base-images takes {"ref": "<a base image name>"}' });
        return sendJson(res, 200, publishBase(ref));
      }
      case 'DELETE /_emulator/requests':
        requests.clear();
        return sendJson(res, 200, { total: 0 });
      default:
        return sendJson(res, 404, { id: 'not_found', message: `no emulator control at ${route}` });
    }
  } catch (err) {
    sendJson(res, 400, { id: 'bad_request', message: err instanceof Error ? err.message : String(err) });
  }
}
