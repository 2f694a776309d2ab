/**
 * Signature Version 4 as EC2 receives it: the access key and the region come from the
 * Authorization header's credential scope (`AKID/20240201/us-east-1/ec2/aws4_request`). When the
 * emulator knows the secret key it checks the signature too, so a client that signs wrongly fails
 * here as it would against AWS.
 *
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Ec2Error } from './errors.js';

export interface Credential {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
}

function authFailure(message: string): Ec2Error {
  return new Ec2Error('AuthFailure', message, 401);
}

/** Parses `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`. */
export function parseAuthorization(header: string | undefined): Credential {
  if (!header) throw authFailure('AWS was not able to validate the provided access credentials (no Authorization header)');
  const match = /^AWS4-HMAC-SHA256\s+(.*)$/.exec(header.trim());
  if (!match) throw authFailure('AWS was not able to validate the provided access credentials (not a Signature Version 4 Authorization header)');
  const fields = new Map<string, string>();
  for (const part of match[1].split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const scope = (fields.get('Credential') ?? '').split('/');
  const signedHeaders = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (scope.length !== 5 || scope[4] !== 'aws4_request' || !signedHeaders || !signature) {
    throw authFailure('AWS was not able to validate the provided access credentials (malformed Authorization header)');
  }
  const [accessKeyId, date, region, service] = scope;
  return { accessKeyId, date, region, service, signedHeaders: signedHeaders.split(';'), signature };
}

function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

function encodeRfc3986(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function canonicalQuery(search: string): string {
  const pairs = [...new URLSearchParams(search)].map(([k, v]) => [encodeRfc3986(k), encodeRfc3986(v)]);
  pairs.sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

/** Recomputes the signature of a request from its parts and compares. */
export function verifySignature(
  cred: Credential,
  secretAccessKey: string,
  req: { method: string; url: string; headers: IncomingHttpHeaders; body: Buffer },
): void {
  const url = new URL(req.url, 'http://emulator');
  const amzDate = String(req.headers['x-amz-date'] ?? '');
  if (!amzDate.startsWith(cred.date)) throw authFailure('Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP');
  const headerLines = cred.signedHeaders.map((name) => {
    const value = req.headers[name];
    const text = Array.isArray(value) ? value.join(',') : (value ?? '');
    return `${name}:${text.trim().replace(/\s+/g, ' ')}\n`;
  });
  const path = url.pathname
    .split('/')
    .map((seg) => encodeRfc3986(decodeURIComponent(seg)))
    .join('/');
  const payloadHash = String(req.headers['x-amz-content-sha256'] ?? sha256Hex(req.body));
  const canonical = [req.method, path, canonicalQuery(url.search), headerLines.join(''), cred.signedHeaders.join(';'), payloadHash].join('\n');
  const scope = `${cred.date}/${cred.region}/${cred.service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonical)].join('\n');
  let key = hmac(`AWS4${secretAccessKey}`, cred.date);
  key = hmac(key, cred.region);
  key = hmac(key, cred.service);
  key = hmac(key, 'aws4_request');
  const expected = Buffer.from(hmac(key, toSign).toString('hex'));
  const given = Buffer.from(cred.signature);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
    throw authFailure('AWS was not able to validate the provided access credentials (the signature does not match)');
  }
}
