/**
 * The DigitalOcean API v2 emulator: `startDigitalOceanEmulator()` serves the API subset of
 * routes.ts on 127.0.0.1, with Bearer-token auth, DigitalOcean's rate limits and headers, error
 * bodies with request ids, faults, and a request log; droplets are real machines.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BASE_LAYER, MachinePool } from '../machines/pool.js';
import { Cloud, DEFAULT_DELAYS, type Delays } from './cloud.js';
import { Faults, type FaultSettings } from '../shared/faults.js';
import { ApiError, readJsonBody, sendJson } from './http.js';
import { DEFAULT_RATE_LIMITS, RateLimiter, type RateLimits } from './ratelimit.js';
import { RequestLog } from '../shared/request-log.js';
import { answerControl } from '../shared/controls.js';
import { listen, type Listening } from '../shared/http-server.js';
import { matchRoute } from './routes.js';
import { DEFAULT_RESERVED_IP_PORTS } from './reserved-ips.js';

export interface DigitalOceanEmulatorOptions {
  /** Port on 127.0.0.1 (default: any free one). */
  port?: number;
  host?: string;
  /** Accepted token(s); default: a new random `dop_v1_...` token. */
  token?: string | string[];
  delays?: Partial<Delays>;
  rateLimits?: Partial<RateLimits>;
  faults?: FaultSettings;
  /** Machines to run droplets on (shared with another emulator); default: a pool of its own, closed with it. */
  pool?: MachinePool;
  /** Ports each reserved IP forwards (default: the droplets' SSH port, 80, 443 and 8080). */
  reservedIpPorts?: number[];
  /** Keep request and response bodies in the request log (default true). */
  recordBodies?: boolean;
  /** Errors of background work (a machine that failed to boot); default: printed to stderr. */
  onError?: (err: unknown) => void;
  signal?: AbortSignal;
}

export interface DigitalOceanEmulator {
  /** Base URL, e.g. http://127.0.0.1:41234 (clients add /v2/...; Packer's `api_url`). */
  url: string;
  /** The first accepted token. */
  token: string;
  /** Port the droplets' sshd listens on, at the address the API reports (22 unless the host holds it). */
  sshPort: number;
  faults: Faults;
  requests: RequestLog;
  /** Live: a change applies to the next action. */
  delays: Delays;
  cloud: Cloud;
  pool: MachinePool;
  close(): Promise<void>;
}

export async function startDigitalOceanEmulator(opts: DigitalOceanEmulatorOptions = {}): Promise<DigitalOceanEmulator> {
  const tokens = opts.token === undefined ? [`dop_v1_${randomBytes(32).toString('hex')}`] : [opts.token].flat();
  const ownPool = !opts.pool;
  let cloud: Cloud | undefined;
  const pool = opts.pool ?? (await MachinePool.open({ onExit: (id) => cloud?.machineExited(id) }, opts.signal));
  const onError = opts.onError ?? ((err: unknown) => console.error(`digitalocean emulator: ${err instanceof Error ? err.message : String(err)}`));
  const delays: Delays = { ...DEFAULT_DELAYS, ...opts.delays };
  const faults = new Faults();
  if (opts.faults) faults.set(opts.faults);
  cloud = new Cloud(pool, BASE_LAYER, delays, faults, onError, opts.reservedIpPorts ?? [pool.sshPort, ...DEFAULT_RESERVED_IP_PORTS]);
  const limiter = new RateLimiter({ ...DEFAULT_RATE_LIMITS, ...opts.rateLimits });
  const requests = new RequestLog();
  const recordBodies = opts.recordBodies ?? true;
  let baseUrl = '';

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const started = Date.now();
    const url = new URL(req.url ?? '/', baseUrl);
    const method = req.method ?? 'GET';
    if (url.pathname.startsWith('/_emulator/')) return answerControl(req, res, url, faults, delays, requests, (ref) => cloud.publishDistribution(ref));
    const requestId = randomUUID();
    const { route, params, pathKnown } = matchRoute(method, url.pathname);
    const auth = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1]?.trim();
    let status = 500;
    let body: unknown;
    let headers: Record<string, string> = { 'x-request-id': requestId };
    let requestBody: unknown;
    try {
      requestBody = await readJsonBody(req);
      if (!auth || !tokens.includes(auth)) {
        headers = { ...headers, ...limiter.peek(auth ?? '') };
        throw new ApiError(401, 'unauthorized', 'Unable to authenticate you');
      }
      const fault = faults.takeHttp(`${method} ${url.pathname}`);
      if (fault) {
        headers = { ...headers, ...limiter.peek(auth) };
        if (fault.status === 429) throw new ApiError(429, 'too_many_requests', 'API Rate limit exceeded.', { 'retry-after': String(fault.retryAfter ?? 1) });
        if (fault.status === 503) throw new ApiError(503, 'service_unavailable', 'The service is temporarily unavailable. Please try again later.');
        throw new ApiError(500, 'server_error', 'Unexpected server-side error');
      }
      const rate = limiter.take(auth, method === 'GET' && route?.template === '/v2/account/keys');
      headers = { ...headers, ...rate.headers };
      if (!rate.allowed) throw new ApiError(429, 'too_many_requests', 'API Rate limit exceeded.');
      if (!route) {
        if (pathKnown) throw new ApiError(405, 'method_not_allowed', `${method} is not allowed on ${url.pathname}.`);
        throw new ApiError(404, 'not_found', 'The resource you were accessing could not be found.');
      }
      const result = await route.handle({ cloud: cloud!, url, baseUrl, params, body: requestBody });
      status = result.status;
      body = result.body;
    } catch (err) {
      if (err instanceof ApiError) {
        status = err.status;
        headers = { ...headers, ...err.headers };
        body = { id: err.id, message: err.message, request_id: requestId };
      } else {
        onError(err);
        status = 500;
        body = { id: 'server_error', message: 'Unexpected server-side error', request_id: requestId };
      }
    }
    if (status === 204) {
      res.writeHead(204, { ...headers, 'content-type': 'application/json; charset=utf-8' });
      res.end();
    } else sendJson(res, status, body, headers);
    requests.add({
      at: started,
      method,
      path: url.pathname,
      query: url.search,
      template: route?.template,
      status,
      durationMs: Date.now() - started,
      requestBody: recordBodies ? requestBody : undefined,
      responseBody: recordBodies ? body : undefined,
      responseHeaders: headers,
    });
  };

  let http: Listening;
  try {
    http = await listen(handle, { port: opts.port, host: opts.host, onError, fallback: (res) => sendJson(res, 500, { id: 'server_error', message: 'Unexpected server-side error' }) });
  } catch (err) {
    if (ownPool) await pool.close();
    throw err;
  }
  baseUrl = http.url;

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      await http.close();
      // Droplets and snapshots go with the emulator, also from a pool it shares.
      for (const droplet of cloud!.liveDroplets()) cloud!.deleteDroplet(droplet);
      for (const image of [...cloud!.images.values()]) if (!image.public) await cloud!.deleteImage(image).catch(onError);
      await cloud!.close();
      if (ownPool) await pool.close();
    })());
  opts.signal?.addEventListener('abort', () => void close(), { once: true });

  return { url: baseUrl, token: tokens[0]!, sshPort: pool.sshPort, faults, requests, delays, cloud, pool, close };
}
