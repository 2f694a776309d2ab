/**
 * The Hetzner Cloud API v1 emulator: `startHetznerEmulator()` serves the subset in routes.ts under
 * /v1 on 127.0.0.1, with Bearer-token auth, Hetzner's token-bucket rate limit and its headers, its
 * error format, faults and a request log; servers are real machines reached over SSH.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BASE_LAYER, MachinePool } from '../machines/pool.js';
import { DEFAULT_ADDRESS_PORTS } from '../shared/address-forwarder.js';
import { answerControl } from '../shared/controls.js';
import { listen, type Listening } from '../shared/http-server.js';
import { Faults, type FaultSettings } from '../shared/faults.js';
import { BodyError, readJsonBody, sendJson } from '../shared/json-http.js';
import { RequestLog } from '../shared/request-log.js';
import { Cloud, DEFAULT_DELAYS, type Delays } from './cloud.js';
import { HcloudError } from './http.js';
import { DEFAULT_RATE_LIMIT, TokenBuckets, type RateLimit } from './ratelimit.js';
import { matchRoute } from './routes.js';

export interface HetznerEmulatorOptions {
  /** Port on 127.0.0.1 (default: any free one). */
  port?: number;
  host?: string;
  /** Accepted token(s); default: a new random 64-character token. Rate limits are per token. */
  token?: string | string[];
  delays?: Partial<Delays>;
  rateLimit?: Partial<RateLimit>;
  faults?: FaultSettings;
  /** Machines to run servers on (shared with another emulator); default: a pool of its own, closed with it. */
  pool?: MachinePool;
  /** Ports each Floating IP forwards to its server (default: the servers' SSH port, 80, 443 and 8080). */
  floatingIpPorts?: number[];
  /** Keep request and response bodies in the request log (default true). */
  recordBodies?: boolean;
  onError?: (err: unknown) => void;
  signal?: AbortSignal;
}

export interface HetznerEmulator {
  /** Base URL, e.g. http://127.0.0.1:41234. */
  url: string;
  /** The API root clients are given (HCLOUD_ENDPOINT, hcloud-go's WithEndpoint): `${url}/v1`. */
  endpoint: string;
  token: string;
  /** Port the servers' sshd listens on, at the address the API reports (22 unless the host holds it). */
  sshPort: number;
  faults: Faults;
  requests: RequestLog;
  /** Live: a change applies to the next action. */
  delays: Delays;
  cloud: Cloud;
  pool: MachinePool;
  close(): Promise<void>;
}

const serverError = new HcloudError(500, 'server_error', 'an internal error occurred');

export async function startHetznerEmulator(opts: HetznerEmulatorOptions = {}): Promise<HetznerEmulator> {
  const tokens = opts.token === undefined ? [randomBytes(32).toString('base64url').slice(0, 64)] : [opts.token].flat();
  const ownPool = !opts.pool;
  let cloud: Cloud | undefined;
  const pool = opts.pool ?? (await MachinePool.open({ onExit: (id) => cloud?.machineExited(id) }, opts.signal));
  const onError = opts.onError ?? ((err: unknown) => console.error(`hetzner emulator: ${err instanceof Error ? err.message : String(err)}`));
  const delays: Delays = { ...DEFAULT_DELAYS, ...opts.delays };
  const faults = new Faults();
  if (opts.faults) faults.set(opts.faults);
  cloud = new Cloud(pool, BASE_LAYER, delays, faults, onError, opts.floatingIpPorts ?? [pool.sshPort, ...DEFAULT_ADDRESS_PORTS]);
  const buckets = new TokenBuckets({ ...DEFAULT_RATE_LIMIT, ...opts.rateLimit });
  const requests = new RequestLog();
  const recordBodies = opts.recordBodies ?? true;
  let baseUrl = '';

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const started = Date.now();
    const url = new URL(req.url ?? '/', baseUrl);
    const method = req.method ?? 'GET';
    if (url.pathname.startsWith('/_emulator/')) return answerControl(req, res, url, faults, delays, requests, (ref) => cloud.publishSystemImage(ref));
    const { route, params, pathKnown } = matchRoute(method, url.pathname);
    const auth = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1]?.trim();
    let status = 500;
    let body: unknown;
    let headers = buckets.peek(auth ?? '');
    let requestBody: unknown;
    try {
      try {
        requestBody = await readJsonBody(req);
      } catch (err) {
        if (err instanceof BodyError) throw new HcloudError(err.status, err.status === 413 ? 'invalid_input' : 'json_error', err.message);
        throw err;
      }
      if (!auth || !tokens.includes(auth)) {
        throw new HcloudError(401, 'unauthorized', 'unable to authenticate');
      }
      const fault = faults.takeHttp(`${method} ${url.pathname}`);
      if (fault) {
        if (fault.status === 429) throw new HcloudError(429, 'rate_limit_exceeded', 'limit of requests per hour reached', null, { 'retry-after': String(fault.retryAfter ?? 1) });
        if (fault.status === 503) throw new HcloudError(503, 'unavailable', 'A service or product is temporarily unavailable');
        throw serverError;
      }
      const rate = buckets.take(auth);
      headers = rate.headers;
      if (!rate.allowed) throw new HcloudError(429, 'rate_limit_exceeded', 'limit of requests per hour reached');
      if (!route) throw pathKnown ? new HcloudError(405, 'method_not_allowed', `${method} is not allowed on ${url.pathname}`) : new HcloudError(404, 'not_found', 'the requested path does not exist');
      const result = await route.handle({ cloud: cloud!, url, params, body: requestBody });
      status = result.status;
      body = result.body;
      headers = { ...headers, ...result.headers };
    } catch (err) {
      const e = err instanceof HcloudError ? err : serverError;
      if (!(err instanceof HcloudError)) onError(err);
      status = e.status;
      headers = { ...headers, ...e.headers };
      body = e.body();
    }
    if (status === 204) {
      res.writeHead(204, headers);
      res.end();
    } else sendJson(res, status, body, headers);
    requests.add({
      at: started, method, path: url.pathname, query: url.search, template: route?.template, status, durationMs: Date.now() - started,
      requestBody: recordBodies ? requestBody : undefined, responseBody: recordBodies ? body : undefined, responseHeaders: headers,
    });
  };

  let http: Listening;
  try {
    http = await listen(handle, { port: opts.port, host: opts.host, onError, fallback: (res) => sendJson(res, 500, serverError.body()) });
  } catch (err) {
    if (ownPool) await pool.close();
    throw err;
  }
  baseUrl = http.url;

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      await http.close();
      // Servers and snapshots go with the emulator, also from a pool it shares.
      for (const s of cloud!.liveServers()) cloud!.deleteServer(s);
      await cloud!.close();
      for (const image of [...cloud!.images.values()]) if (image.type === 'snapshot') await cloud!.deleteImage(image).catch(onError);
      if (ownPool) await pool.close();
    })());
  opts.signal?.addEventListener('abort', () => void close(), { once: true });

  return { url: baseUrl, endpoint: `${baseUrl}/v1`, token: tokens[0]!, sshPort: pool.sshPort, faults, requests, delays, cloud, pool, close };
}
