import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { InvocationResult, RouteSpec } from '../core/index.js';
import { Router } from './router.js';
import { buildEventV1, buildEventV2, clfTime, parseQuery, type IncomingRequest } from './events.js';
import { mapResult } from './responses.js';
import { preflightResponse } from './cors.js';

const route = (api: 'REST' | 'HTTP', method: string, path: string, functionKey = 'f'): RouteSpec => ({
  api, method, path, functionKey, payloadFormatVersion: api === 'REST' ? '1.0' : '2.0',
});

describe('Router', () => {
  const r = new Router([
    route('REST', 'GET', '/users/me', 'me'),
    route('REST', 'GET', '/users/{id}', 'user'),
    route('REST', 'ANY', '/users/{id}', 'userAny'),
    route('REST', 'GET', '/files/{proxy+}', 'files'),
    route('REST', 'GET', '/', 'root'),
  ]);

  it('prefers a literal segment over a parameter', () => {
    assert.equal(r.match('GET', '/users/me')?.route.functionKey, 'me');
    assert.deepEqual(r.match('GET', '/users/42')?.pathParameters, { id: '42' });
  });

  it('prefers an exact method over ANY, and falls back to ANY', () => {
    assert.equal(r.match('GET', '/users/42')?.route.functionKey, 'user');
    assert.equal(r.match('DELETE', '/users/42')?.route.functionKey, 'userAny');
  });

  it('gives a greedy parameter the rest of the path with its slashes', () => {
    const m = r.match('GET', '/files/a/b/c.txt');
    assert.equal(m?.route.functionKey, 'files');
    assert.deepEqual(m?.pathParameters, { proxy: 'a/b/c.txt' });
  });

  it('keeps path parameters percent-encoded', () => {
    assert.deepEqual(r.match('GET', '/users/a%2Fb')?.pathParameters, { id: 'a%2Fb' });
  });

  it('matches the root and ignores a trailing slash', () => {
    assert.equal(r.match('GET', '/')?.route.functionKey, 'root');
    assert.equal(r.match('GET', '/users/me/')?.route.functionKey, 'me');
  });

  it('serves HEAD from a GET route, and nothing for an unknown path', () => {
    assert.equal(r.match('HEAD', '/files/a')?.route.functionKey, 'files');
    // ANY covers HEAD, so an ANY route wins over the GET fallback.
    assert.equal(r.match('HEAD', '/users/me')?.route.functionKey, 'userAny');
    assert.equal(r.match('GET', '/nope'), null);
    assert.equal(r.match('POST', '/users/me')?.route.functionKey, 'userAny');
  });

  it('sends unmatched requests to $default', () => {
    const h = new Router([route('HTTP', 'GET', '/a'), { ...route('HTTP', 'ANY', '$default'), functionKey: 'def' }]);
    assert.equal(h.match('GET', '/zzz')?.route.functionKey, 'def');
    assert.equal(h.match('GET', '/a')?.route.functionKey, 'f');
  });
});

const request = (over: Partial<IncomingRequest> = {}): IncomingRequest => ({
  method: 'GET', rawPath: '/dev/items', rawQuery: '', rawHeaders: ['Host', 'api.example.com', 'User-Agent', 'test'],
  body: Buffer.alloc(0), sourceIp: '127.0.0.1', protocol: 'HTTP/1.1', requestId: 'req-1', timeEpoch: 1583349317135, ...over,
});

describe('payload format 1.0', () => {
  it('keeps the last value in headers and all in multiValueHeaders, with the client casing', () => {
    const ev = JSON.parse(buildEventV1(request({ rawHeaders: ['X-Tag', 'a', 'x-tag', 'b', 'Host', 'h'] }), route('REST', 'GET', '/items'), null,
      { stage: 'dev', pathWithoutStage: '/items', binaryMediaTypes: [] }));
    assert.deepEqual(ev.headers, { 'X-Tag': 'b', Host: 'h' });
    assert.deepEqual(ev.multiValueHeaders, { 'X-Tag': ['a', 'b'], Host: ['h'] });
  });

  it('decodes query values, keeps the last in queryStringParameters and all in the multi-value map', () => {
    const ev = JSON.parse(buildEventV1(request({ rawQuery: 'a=1&a=2&q=hello%20world&plus=a+b' }), route('REST', 'GET', '/items'), null,
      { stage: 'dev', pathWithoutStage: '/items', binaryMediaTypes: [] }));
    assert.deepEqual(ev.queryStringParameters, { a: '2', q: 'hello world', plus: 'a+b' });
    assert.deepEqual(ev.multiValueQueryStringParameters, { a: ['1', '2'], q: ['hello world'], plus: ['a+b'] });
  });

  it('uses null for absent query, body and path parameters, and ms / CLF times', () => {
    const ev = JSON.parse(buildEventV1(request(), route('REST', 'GET', '/items'), null, { stage: 'dev', pathWithoutStage: '/items', binaryMediaTypes: [] }));
    assert.equal(ev.body, null);
    assert.equal(ev.queryStringParameters, null);
    assert.equal(ev.multiValueQueryStringParameters, null);
    assert.equal(ev.pathParameters, null);
    assert.equal(ev.stageVariables, null);
    assert.equal(ev.isBase64Encoded, false);
    assert.equal(ev.requestContext.requestTimeEpoch, 1583349317135);
    assert.equal(ev.requestContext.requestTime, '04/Mar/2020:19:15:17 +0000');
    assert.equal(ev.requestContext.path, '/dev/items');
    assert.equal(ev.path, '/items');
    assert.equal(ev.resource, '/items');
    assert.equal(ev.requestContext.stage, 'dev');
  });

  it('base64-encodes a REST body only for binary media types', () => {
    const body = Buffer.from([1, 2, 3]);
    const headers = ['Content-Type', 'application/octet-stream'];
    const text = JSON.parse(buildEventV1(request({ body, rawHeaders: headers }), route('REST', 'POST', '/items'), null, { stage: 'dev', pathWithoutStage: '/items', binaryMediaTypes: [] }));
    assert.equal(text.isBase64Encoded, false);
    const bin = JSON.parse(buildEventV1(request({ body, rawHeaders: headers }), route('REST', 'POST', '/items'), null, { stage: 'dev', pathWithoutStage: '/items', binaryMediaTypes: ['application/octet-stream'] }));
    assert.equal(bin.isBase64Encoded, true);
    assert.equal(bin.body, 'AQID');
  });
});

describe('payload format 2.0', () => {
  it('lower-cases header names, joins repeats with commas and moves cookies out', () => {
    const ev = JSON.parse(buildEventV2(request({
      rawPath: '/me', rawQuery: 'a=1&a=2',
      rawHeaders: ['X-Tag', 'a', 'X-Tag', 'b', 'Cookie', 's=1; t=2', 'Host', 'h'],
    }), route('HTTP', 'GET', '/me'), null));
    assert.deepEqual(ev.headers, { 'x-tag': 'a,b', host: 'h' });
    assert.deepEqual(ev.cookies, ['s=1', 't=2']);
    assert.deepEqual(ev.queryStringParameters, { a: '1,2' });
    assert.equal(ev.routeKey, 'GET /me');
    assert.equal(ev.rawQueryString, 'a=1&a=2');
    assert.equal(ev.requestContext.http.method, 'GET');
    assert.equal(ev.requestContext.stage, '$default');
    assert.equal(ev.body, undefined);
    assert.equal(ev.pathParameters, undefined);
  });

  it('sends text bodies as text and the rest as base64', () => {
    const json = JSON.parse(buildEventV2(request({ rawHeaders: ['content-type', 'application/json'], body: Buffer.from('{"a":1}') }), route('HTTP', 'POST', '/x'), null));
    assert.equal(json.body, '{"a":1}');
    assert.equal(json.isBase64Encoded, false);
    const form = JSON.parse(buildEventV2(request({ rawHeaders: ['content-type', 'application/x-www-form-urlencoded'], body: Buffer.from('a=1') }), route('HTTP', 'POST', '/x'), null));
    assert.equal(form.isBase64Encoded, true);
    assert.equal(form.body, Buffer.from('a=1').toString('base64'));
  });
});

describe('helpers', () => {
  it('parses a query string in order', () => {
    assert.deepEqual(parseQuery('a=1&b&c=%E2%9C%93&bad=%E0%A4%A'), [['a', '1'], ['b', ''], ['c', '✓'], ['bad', '%E0%A4%A']]);
  });
  it('formats CLF time in UTC', () => {
    assert.equal(clfTime(Date.UTC(2026, 0, 2, 3, 4, 5)), '02/Jan/2026:03:04:05 +0000');
  });
});

const ok = (payload: unknown): InvocationResult => ({
  requestId: 'r', outcome: 'ok', payload: JSON.stringify(payload), durationMs: 1, billedDurationMs: 1, logs: '',
});
const header = (h: string[], name: string) => h.filter((_, i) => i % 2 === 0 && h[i].toLowerCase() === name).map((_, i, a) => a[i]).length
  ? h.flatMap((v, i) => (i % 2 === 0 && v.toLowerCase() === name ? [h[i + 1]] : []))
  : [];

describe('response mapping', () => {
  const rest = { api: 'REST' as const, version: '1.0' as const, binaryMediaTypes: [], accept: undefined };
  const httpApi = { api: 'HTTP' as const, version: '2.0' as const, binaryMediaTypes: [], accept: undefined };

  it('merges headers and multiValueHeaders into repeated fields', () => {
    const r = mapResult(ok({ statusCode: 201, headers: { 'Set-Cookie': 'x=0' }, multiValueHeaders: { 'Set-Cookie': ['a=1', 'b=2'] }, body: 'hi' }), rest);
    assert.equal(r.status, 201);
    assert.deepEqual(header(r.headers, 'set-cookie'), ['x=0', 'a=1', 'b=2']);
    assert.deepEqual(header(r.headers, 'content-type'), ['application/json']);
    assert.equal(r.body.toString(), 'hi');
  });

  it('answers 502 for a REST result without statusCode, or a failed invocation', () => {
    assert.equal(mapResult(ok({ body: 'x' }), rest).status, 502);
    assert.equal(mapResult(ok('text'), rest).status, 502);
    const failed = mapResult({ ...ok(null), outcome: 'error' }, rest);
    assert.equal(failed.status, 502);
    assert.equal(failed.body.toString(), '{"message": "Internal server error"}');
    assert.deepEqual(header(failed.headers, 'x-nimbus-error'), ['NIMBUS_ERR_GATEWAY_FUNCTION_ERROR']);
  });

  it('infers a 2.0 response from a value without statusCode', () => {
    const obj = mapResult(ok({ message: 'hi' }), httpApi);
    assert.equal(obj.status, 200);
    assert.equal(obj.body.toString(), '{"message":"hi"}');
    assert.deepEqual(header(obj.headers, 'content-type'), ['application/json']);
    const str = mapResult(ok('Hello from Lambda!'), httpApi);
    assert.equal(str.body.toString(), 'Hello from Lambda!');
  });

  it('defaults a structured 2.0 response to text/plain and turns cookies into Set-Cookie', () => {
    const r = mapResult(ok({ statusCode: 200, body: 'Test body', cookies: ['a=1', 'b=2'] }), httpApi);
    assert.deepEqual(header(r.headers, 'content-type'), ['text/plain; charset=utf-8']);
    assert.deepEqual(header(r.headers, 'set-cookie'), ['a=1', 'b=2']);
  });

  it('decodes base64 bodies (HTTP API always, REST only for binary media types)', () => {
    const png = { statusCode: 200, isBase64Encoded: true, body: 'iVBORw0KGgo=', headers: { 'content-type': 'image/png' } };
    assert.equal(mapResult(ok(png), httpApi).body.toString('base64'), 'iVBORw0KGgo=');
    assert.equal(mapResult(ok(png), rest).body.toString(), 'iVBORw0KGgo=');
    assert.equal(mapResult(ok(png), { ...rest, binaryMediaTypes: ['image/png'], accept: 'image/png' }).body.toString('base64'), 'iVBORw0KGgo=');
  });

  it('answers a function timeout like any function error, and logs why a result is malformed', () => {
    const t = mapResult({ ...ok(null), outcome: 'timeout' }, httpApi);
    assert.equal(t.status, 500);
    assert.deepEqual(header(t.headers, 'x-nimbus-error'), ['NIMBUS_ERR_GATEWAY_FUNCTION_TIMEOUT']);
    assert.equal(mapResult({ ...ok(null), outcome: 'timeout' }, rest).status, 502);
    assert.equal(mapResult(ok({ body: 'x' }), rest).malformed, 'statusCode is missing');
    assert.equal(mapResult(ok({ statusCode: 200, body: { a: 1 } }), rest).malformed, 'body must be a string (use JSON.stringify), got an object');
    assert.equal(mapResult(ok({ statusCode: 200, body: 'fine' }), rest).malformed, undefined);
    const e = mapResult({ ...ok(null), outcome: 'crashed' }, httpApi);
    assert.equal(e.status, 500);
    assert.equal(e.body.toString(), '{"message":"Internal Server Error"}');
  });
});

describe('CORS', () => {
  const cors = { allowOrigins: ['https://app.example.com'], allowMethods: ['GET', 'POST'], allowHeaders: ['content-type'], exposeHeaders: [], allowCredentials: false, maxAge: 600 };
  it('answers an allowed preflight with the origin, methods, headers and max age', () => {
    const r = preflightResponse(cors, 'https://app.example.com', 'content-type');
    assert.equal(r.status, 204);
    assert.deepEqual(header(r.headers, 'access-control-allow-origin'), ['https://app.example.com']);
    assert.deepEqual(header(r.headers, 'access-control-allow-methods'), ['GET,POST']);
    assert.deepEqual(header(r.headers, 'access-control-max-age'), ['600']);
  });
  it('gives no CORS headers to a foreign origin', () => {
    const r = preflightResponse(cors, 'https://evil.example', 'content-type');
    assert.deepEqual(header(r.headers, 'access-control-allow-origin'), []);
  });
});
