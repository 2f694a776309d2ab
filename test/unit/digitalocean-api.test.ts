/** The DigitalOcean HTTP client against a real local HTTP server that misbehaves on purpose. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DigitalOceanApi } from '../../src/providers/digitalocean/api.js';
import { ProviderError } from '../../src/core/errors.js';
import { nullSink } from '../../src/core/events.js';
import { z } from 'zod';

const TOKEN = 'dop_v1_secret_token_value';
let server: Server;
let url: string;
let script: ((path: string, count: number) => { status: number; body?: unknown; headers?: Record<string, string> }) | undefined;
const counts = new Map<string, number>();
const seenAuth: string[] = [];

before(async () => {
  server = createServer((req, res) => {
    const path = req.url!;
    const key = path.split('?')[0]!;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    seenAuth.push(req.headers.authorization ?? '');
    const answer = script!(path, counts.get(key)!);
    res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
    res.end(answer.body === undefined ? '' : JSON.stringify(answer.body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server.close());

const api = (budget?: number) => new DigitalOceanApi({ baseUrl: url, token: TOKEN, events: nullSink, budget, maxRetries: 4 });
const signal = () => AbortSignal.timeout(20_000);

describe('DigitalOcean API client', () => {
  it('sends the bearer token and honours 429 retry-after', async () => {
    counts.clear();
    script = (_p, n) => (n === 1 ? { status: 429, body: { id: 'too_many_requests', message: 'API Rate limit exceeded.' }, headers: { 'retry-after': '1', 'ratelimit-remaining': '0' } } : { status: 200, body: { account: { status: 'active' } } });
    const client = api();
    const started = Date.now();
    const r = await client.request<{ account: { status: string } }>('GET', '/v2/account', { operation: 'get account', signal: signal() });
    assert.equal(r.body.account.status, 'active');
    assert.ok(Date.now() - started >= 900, 'did not wait for retry-after');
    assert.equal(client.stats.rateLimited, 1);
    assert.equal(seenAuth.at(-1), `Bearer ${TOKEN}`);
  });

  it('retries 500 and 503, then succeeds', async () => {
    counts.clear();
    script = (_p, n) => (n <= 2 ? { status: n === 1 ? 500 : 503, body: { id: 'server_error', message: 'oops' } } : { status: 200, body: { ok: true } });
    const client = api();
    await client.request('GET', '/v2/thing', { operation: 'get thing', signal: signal() });
    assert.equal(counts.get('/v2/thing'), 3);
    assert.equal(client.stats.retries, 2);
  });

  it('reports what the API said (id, message, request id), never the token; 401 exits 2', async () => {
    script = () => ({ status: 401, body: { id: 'unauthorized', message: 'Unable to authenticate you', request_id: 'req-42' } });
    await assert.rejects(api().request('GET', '/v2/account', { operation: 'get account', signal: signal() }), (err: ProviderError) => {
      assert.ok(err instanceof ProviderError);
      assert.equal(err.exitCode, 2);
      assert.match(err.message, /get account failed: Unable to authenticate you \(unauthorized, HTTP 401, request req-42\)/);
      assert.match(err.hint!, /DIGITALOCEAN_TOKEN/);
      assert.ok(!err.message.includes(TOKEN) && !err.hint!.includes(TOKEN));
      return true;
    });
  });

  it('gives up on a persistent 503 with a clear error', async () => {
    counts.clear();
    script = () => ({ status: 503, body: { id: 'service_unavailable', message: 'down for maintenance' } });
    // Two retries show the giving up as well as four, in a quarter of the backoff.
    const client = new DigitalOceanApi({ baseUrl: url, token: TOKEN, events: nullSink, maxRetries: 2 });
    await assert.rejects(client.request('GET', '/v2/x', { operation: 'get x', signal: signal() }), /get x failed: down for maintenance \(service_unavailable, HTTP 503\)/);
    assert.equal(counts.get('/v2/x'), 3);
  });

  it('follows every page', async () => {
    script = (path) => {
      const page = Number(new URL(path, url).searchParams.get('page') ?? 1);
      return {
        status: 200,
        body: { droplets: [{ id: page }], links: page < 3 ? { pages: { next: `${url}/v2/droplets?page=${page + 1}&per_page=1` } } : {}, meta: { total: 3 } },
      };
    };
    const all = await api().list('/v2/droplets', 'droplets', { operation: 'list droplets', signal: signal(), schema: z.object({ id: z.number() }) });
    assert.deepEqual(all.map((d) => d.id), [1, 2, 3]);
  });

  it('stops at its request budget', async () => {
    script = () => ({ status: 200, body: {} });
    const client = api(2);
    await client.request('GET', '/v2/a', { operation: 'a', signal: signal() });
    await client.request('GET', '/v2/a', { operation: 'a', signal: signal() });
    await assert.rejects(client.request('GET', '/v2/a', { operation: 'a', signal: signal() }), /budget of 2 API requests/);
  });

  it('turns malformed answers into clear errors: truncated JSON, wrong types, bad links', async () => {
    script = () => ({ status: 200, body: undefined, headers: {} });
    const truncated = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"droplets": [{"id": 1, "na');
    });
    await new Promise<void>((resolve) => truncated.listen(0, '127.0.0.1', resolve));
    const client = new DigitalOceanApi({ baseUrl: `http://127.0.0.1:${(truncated.address() as AddressInfo).port}`, token: TOKEN, events: nullSink, maxRetries: 1 });
    await assert.rejects(client.request('GET', '/v2/droplets', { operation: 'list droplets', signal: signal() }), (err: Error) => {
      assert.ok(err instanceof ProviderError, String(err));
      assert.match(err.message, /malformed JSON/);
      return true;
    });
    truncated.close();

    script = () => ({ status: 200, body: { droplets: [{ id: 'one', name: 5 }] } });
    const schema = z.object({ id: z.number(), name: z.string() });
    await assert.rejects(api().list('/v2/droplets', 'droplets', { operation: 'list droplets', signal: signal(), schema }), /unexpected answer: id: /);
    script = () => ({ status: 200, body: { droplets: 'nope' } });
    await assert.rejects(api().list('/v2/droplets', 'droplets', { operation: 'list droplets', signal: signal(), schema }), /has no "droplets" list/);
    script = () => ({ status: 200, body: { droplets: [], links: { pages: { next: 42 } } } });
    await assert.rejects(api().list('/v2/droplets', 'droplets', { operation: 'list droplets', signal: signal(), schema }), /malformed links/);
  });
});
