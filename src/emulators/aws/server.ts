/**
 * The EC2 emulator's HTTP side: Query protocol requests (form-encoded POST, `Action=...&Version=...`)
 * signed with Signature Version 4, answered in EC2's XML, with faults and a request log.
 *
 * A few JSON routes under /_emulator/ let a test in another process look and switch faults:
 * `GET /_emulator/requests`, `POST /_emulator/faults` (a partial Ec2Faults).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseAuthorization, verifySignature } from './auth.js';
import { memoryBackend, type InstanceBackend } from './backend.js';
import { machineBackend } from './machine-backend.js';
import { Ec2Cloud, type Ec2Delays, type Ec2Faults, type Handler } from './cloud.js';
import { Ec2Error } from './errors.js';
import { imageOperations } from './images.js';
import { installShutdownHandler, instanceOperations } from './instances.js';
import { keyPairOperations } from './keys.js';
import { networkOperations } from './network.js';
import { Params } from './query.js';
import { tagOperations } from './tags.js';
import { addressOperations } from './addresses.js';
import { imageAttributeOperations } from './image-attributes.js';
import { instanceInfoOperations } from './instance-info.js';
import { instanceTypeOperations } from './instance-types.js';
import { volumeOperations } from './volumes.js';
import { errorXml, responseXml } from './xml.js';
import { ELBV2_OPERATIONS } from './elbv2-operations.js';
import { elbv2ErrorXml, elbv2ResponseXml } from './elbv2-query.js';

export const OPERATIONS: Record<string, Handler> = {
  ...instanceOperations,
  ...imageOperations,
  ...keyPairOperations,
  ...networkOperations,
  ...tagOperations,
  ...instanceInfoOperations,
  ...instanceTypeOperations,
  ...imageAttributeOperations,
  ...volumeOperations,
  ...addressOperations,
};

export const DEFAULT_ACCESS_KEY_ID = 'AKIDEXAMPLE';
export const DEFAULT_SECRET_ACCESS_KEY = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';

export interface Ec2Request {
  /** ms since the epoch. */
  at: number;
  action: string;
  region: string;
  status: number;
  errorCode?: string;
  durationMs: number;
  /** The XML answered (only with `recordResponses`). */
  body?: string;
}

/** Every request answered, and counts by action. */
export class RequestLog {
  readonly entries: Ec2Request[] = [];

  add(entry: Ec2Request): void {
    this.entries.push(entry);
  }

  /** Requests of one action (or all), optionally only those answered with an error code. */
  count(action?: string, errorCode?: string): number {
    return this.entries.filter((e) => (!action || e.action === action) && (!errorCode || e.errorCode === errorCode)).length;
  }

  counts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const e of this.entries) counts[e.action] = (counts[e.action] ?? 0) + 1;
    return counts;
  }

  clear(): void {
    this.entries.length = 0;
  }
}

export interface Ec2EmulatorOptions {
  /** Only this access key is accepted (any is, when unset). */
  accessKeyId?: string;
  /** When set, signatures are checked with it. */
  secretAccessKey?: string;
  delays?: Partial<Ec2Delays>;
  /**
   * What instances are made of: real machines (the default: containers with sshd, see
   * ../machines/), bookkeeping only ('memory'), or a backend of the caller's, closed with the
   * emulator.
   */
  backend?: InstanceBackend | 'machines' | 'memory';
  host?: string;
  port?: number;
  /** Keep each answer's XML in the request log (for conformance tests). */
  recordResponses?: boolean;
}

export interface Ec2Emulator {
  /** `http://host:port`, for `--endpoint-url` or the SDK's `endpoint`. */
  url: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** The port instances' sshd listens on, at their PublicIpAddress. */
  sshPort: number;
  /** Change the fields to switch faults on. */
  faults: Ec2Faults;
  requests: RequestLog;
  cloud: Ec2Cloud;
  close(): Promise<void>;
}

/** Answers per region beyond EC2's request rate, like its token bucket. */
class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  allow(region: string, limit: { perSecond: number; burst: number }): boolean {
    const now = Date.now();
    const bucket = this.buckets.get(region) ?? { tokens: limit.burst, at: now };
    bucket.tokens = Math.min(limit.burst, bucket.tokens + ((now - bucket.at) / 1000) * limit.perSecond);
    bucket.at = now;
    this.buckets.set(region, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }
}

function readBody(req: IncomingMessage, limit = 10 * 1024 * 1024): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new Ec2Error('RequestEntityTooLarge', 'Request body is too large', 413));
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export async function startEc2Emulator(opts: Ec2EmulatorOptions): Promise<Ec2Emulator> {
  const backend =
    typeof opts.backend === 'object' ? opts.backend : opts.backend === 'memory' ? memoryBackend() : await machineBackend();
  const cloud = new Ec2Cloud(backend, opts.delays);
  installShutdownHandler(cloud);
  const requests = new RequestLog();
  const limiter = new RateLimiter();
  const accessKeyId = opts.accessKeyId ?? DEFAULT_ACCESS_KEY_ID;
  const secretAccessKey = opts.secretAccessKey ?? DEFAULT_SECRET_ACCESS_KEY;

  async function answer(req: IncomingMessage, body: Buffer, requestId: string, log: Ec2Request): Promise<{ status: number; xml: string }> {
    const cred = parseAuthorization(req.headers.authorization);
    log.region = cred.region;
    if (opts.accessKeyId && cred.accessKeyId !== opts.accessKeyId) {
      throw new Ec2Error('AuthFailure', 'AWS was not able to validate the provided access credentials', 401);
    }
    if (opts.secretAccessKey) verifySignature(cred, opts.secretAccessKey, { method: req.method ?? 'POST', url: req.url ?? '/', headers: req.headers, body });
    const url = new URL(req.url ?? '/', 'http://emulator');
    const form = new URLSearchParams(req.method === 'POST' ? body.toString('utf8') : url.search);
    const action = form.get('Action');
    if (!action) throw new Ec2Error('MissingAction', 'The request must contain the parameter Action');
    log.action = action;
    // Elastic Load Balancing v2 shares the endpoint: the credential scope names the service.
    if (cred.service === 'elasticloadbalancing') return answerElbv2(action, cred.region, form, requestId, log);
    const handler = Object.hasOwn(OPERATIONS, action) ? OPERATIONS[action] : undefined;
    if (!handler) throw new Ec2Error('InvalidAction', `The action ${action} is not valid for this web service.`);
    const region = cloud.region(cred.region);
    const faults = cloud.faults;
    const faulty = !faults.actions || faults.actions.includes(action);
    if (faulty && faults.throttle > 0) {
      faults.throttle--;
      throw new Ec2Error('RequestLimitExceeded', 'Request limit exceeded.', 503);
    }
    if (faulty && faults.internalError > 0) {
      faults.internalError--;
      throw new Ec2Error('InternalError', 'An internal error has occurred', 500);
    }
    if (faults.rateLimit && !limiter.allow(region.name, faults.rateLimit)) throw new Ec2Error('RequestLimitExceeded', 'Request limit exceeded.', 503);
    const params = Params.parse(form);
    if (params.bool('DryRun')) throw new Ec2Error('DryRunOperation', 'Request would have succeeded, but DryRun flag is set.', 412);
    const result = await handler(cloud, region, params);
    return { status: 200, xml: responseXml(action, requestId, result) };
  }

  async function answerElbv2(action: string, regionName: string, form: URLSearchParams, requestId: string, log: Ec2Request): Promise<{ status: number; xml: string }> {
    try {
      const handler = Object.hasOwn(ELBV2_OPERATIONS, action) ? ELBV2_OPERATIONS[action] : undefined;
      if (!handler) throw new Ec2Error('InvalidAction', `The action ${action} is not valid for this web service.`);
      if (form.get('Version') !== '2015-12-01') throw new Ec2Error('InvalidParameterValue', `Version ${form.get('Version')} is not 2015-12-01 (Elastic Load Balancing v2)`);
      const result = await handler(cloud.elbv2, cloud.region(regionName), Params.parse(form));
      return { status: 200, xml: elbv2ResponseXml(action, requestId, result) };
    } catch (err) {
      const error = err instanceof Ec2Error ? err : new Ec2Error('InternalFailure', 'An internal error has occurred', 500);
      if (!(err instanceof Ec2Error)) cloud.backgroundErrors.push(err as Error);
      log.errorCode = error.code;
      return { status: error.status, xml: elbv2ErrorXml(error.code, error.message, requestId, error.status) };
    }
  }

  async function control(req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
    const send = (status: number, value: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(`${JSON.stringify(value)}\n`);
    };
    const path = new URL(req.url ?? '/', 'http://emulator').pathname;
    if (path === '/_emulator/requests' && req.method === 'GET') return send(200, { total: requests.count(), counts: requests.counts() });
    if (path === '/_emulator/faults' && req.method === 'POST') {
      Object.assign(cloud.faults, JSON.parse(body.toString('utf8') || '{}'));
      return send(200, cloud.faults);
    }
    if (path === '/_emulator/faults' && req.method === 'GET') return send(200, cloud.faults);
    if (path === '/_emulator/base-images' && req.method === 'POST') {
      const ref = (JSON.parse(body.toString('utf8') || '{}') as { ref?: unknown }).ref;
      if (typeof ref !== 'string') return send(400, { error: 'POST /_emulator/base-images takes {"ref": "debian-12-amd64"}' });
      try {
        return send(200, cloud.publishDebianImage(ref));
      } catch (err) {
        return send(400, { error: (err as Error).message });
      }
    }
    send(404, { error: `no route ${req.method} ${path}` });
  }

  const server = createServer((req, res) => {
    const started = Date.now();
    const requestId = randomUUID();
    const log: Ec2Request = { at: started, action: '', region: '', status: 0, durationMs: 0 };
    readBody(req)
      .then(async (body) => {
        if (req.url?.startsWith('/_emulator/')) return control(req, res, body);
        let status: number;
        let xml: string;
        try {
          ({ status, xml } = await answer(req, body, requestId, log));
        } catch (err) {
          const error = err instanceof Ec2Error ? err : new Ec2Error('InternalError', 'An internal error has occurred', 500);
          if (!(err instanceof Ec2Error)) cloud.backgroundErrors.push(err as Error);
          status = error.status;
          xml = errorXml(error.code, error.message, requestId);
          log.errorCode = error.code;
        }
        log.status = status;
        log.durationMs = Date.now() - started;
        if (opts.recordResponses) log.body = xml;
        requests.add(log);
        res.writeHead(status, { 'content-type': 'text/xml;charset=UTF-8', 'x-amzn-requestid': requestId });
        res.end(xml);
      })
      .catch(() => {
        if (!res.headersSent) res.writeHead(400);
        res.end();
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${address.port}`,
    accessKeyId,
    secretAccessKey,
    sshPort: backend.sshPort,
    faults: cloud.faults,
    requests,
    cloud,
    close() {
      closing ??= (async () => {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await cloud.close();
      })();
      return closing;
    },
  };
}
