// The gateway through real HTTP, against real Node and Python instances, for
// each kind of API Gateway behaviour (payload 1.0 / 2.0, response mapping,
// binary, CORS, limits). Expected values come from the AWS documentation:
// https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html
// https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DevServer } from '../src/server/index.js';

const NODE = `
exports.echo = async (event) => ({ statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(event) });
exports.cookies = async () => ({ statusCode: 200, headers: { 'Content-Type': 'text/html', 'X-One': 'single' },
  multiValueHeaders: { 'Set-Cookie': ['a=1; Path=/', 'b=2; Path=/'], 'X-One': ['m1', 'm2'] }, body: '<p>ok</p>' });
exports.v2cookies = async () => ({ statusCode: 201, cookies: ['a=1', 'b=2'], body: 'made' });
exports.png = async () => ({ statusCode: 200, headers: { 'Content-Type': 'image/png' }, isBase64Encoded: true, body: 'iVBORw0KGgo=' });
exports.infer = async () => ({ message: 'hi', headers: { 'content-type': 'application/xml' } });
exports.inferString = async () => 'Hello from Lambda!';
exports.plain = async () => ({ statusCode: 200, body: 'Test body' });
exports.boom = async () => { throw new Error('secret detail'); };
exports.malformed = async () => ({ body: 'no status' });
exports.slow = async () => { await new Promise((r) => setTimeout(r, 5000)); };
`;
const PYTHON = `
import json, time
def echo(event, context):
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(event)}
def cookies(event, context):
    return {"statusCode": 200, "headers": {"Content-Type": "text/html", "X-One": "single"},
            "multiValueHeaders": {"Set-Cookie": ["a=1; Path=/", "b=2; Path=/"], "X-One": ["m1", "m2"]}, "body": "<p>ok</p>"}
def v2cookies(event, context):
    return {"statusCode": 201, "cookies": ["a=1", "b=2"], "body": "made"}
def png(event, context):
    return {"statusCode": 200, "headers": {"Content-Type": "image/png"}, "isBase64Encoded": True, "body": "iVBORw0KGgo="}
def infer(event, context):
    return {"message": "hi", "headers": {"content-type": "application/xml"}}
def inferString(event, context):
    return "Hello from Lambda!"
def plain(event, context):
    return {"statusCode": 200, "body": "Test body"}
def boom(event, context):
    raise ValueError("secret detail")
def malformed(event, context):
    return {"body": "no status"}
def slow(event, context):
    time.sleep(5)
`;

function config(runtime: string, handlerModule: string): string {
  const fn = (name: string, events: string, extra = '') => `  ${name}:\n    handler: ${handlerModule}.${name}\n${extra}    events:\n${events}`;
  return `service: gw
provider:
  name: aws
  runtime: ${runtime}
  apiGateway:
    binaryMediaTypes: ['image/png']
  httpApi:
    cors:
      allowedOrigins: [https://app.example.com]
      allowedMethods: [GET, POST]
      allowedHeaders: [content-type]
      maxAge: 300
functions:
${fn('echo', `      - http: ANY echo
      - http: GET files/{key}
      - http: ANY api/{proxy+}
      - httpApi: ANY /echo
      - httpApi: GET /items/{id}
      - httpApi: ANY /any
`)}
${fn('cookies', '      - http: GET cookies\n')}
${fn('v2cookies', '      - httpApi: GET /cookies\n')}
${fn('png', '      - http: GET png\n      - httpApi: GET /png\n')}
${fn('infer', '      - httpApi: GET /infer\n')}
${fn('inferString', '      - httpApi: GET /infer-string\n')}
${fn('plain', '      - httpApi: GET /plain\n')}
${fn('boom', '      - http: GET boom\n      - httpApi: GET /boom\n')}
${fn('malformed', '      - http: GET malformed\n')}
${fn('slow', '      - httpApi: GET /slow\n', '    timeout: 1\n')}
  slowIntegration:
    handler: ${handlerModule}.slow
    timeout: 10
    events:
      - http: GET slow-integration
`;
}

interface Reply { status: number; headers: string[]; body: Buffer; text: string; json: () => any }

/** One request with raw header pairs (repeats kept apart), like the behaviour cases send. */
function send(port: number, method: string, path: string, headers: Array<[string, string]> = [], body?: Buffer | string): Promise<Reply> {
  const flat: string[] = ['Host', `127.0.0.1:${port}`];
  for (const [n, v] of headers) flat.push(n, v);
  const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body);
  if (payload) flat.push('Content-Length', String(payload.length));
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers: flat, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const b = Buffer.concat(chunks);
        resolve({ status: res.statusCode!, headers: res.rawHeaders, body: b, text: b.toString(), json: () => JSON.parse(b.toString()) });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

const values = (r: Reply, name: string) => r.headers.flatMap((v, i) => (i % 2 === 0 && v.toLowerCase() === name ? [r.headers[i + 1]] : []));

for (const [lang, runtime, module, file, source] of [
  ['node', 'nodejs20.x', 'handler', 'handler.js', NODE],
  ['python', 'python3.12', 'app', 'app.py', PYTHON],
] as const) {
  describe(`gateway over HTTP (${lang})`, () => {
    let dir: string;
    let server: DevServer;
    let port: number;
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'nimbus-gw-'));
      writeFileSync(join(dir, file), source);
      writeFileSync(join(dir, 'serverless.yml'), config(runtime, module));
      server = await DevServer.start({
        configPath: join(dir, 'serverless.yml'), env: process.env, port: 0, controlPort: 0, watch: false, log: () => {},
        integrationTimeoutMs: { REST: 1500, HTTP: 30_000 },
      });
      port = server.port;
    });
    after(async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('1.0: repeated query keys and headers (last value / all values), URL-decoded query', async () => {
      const ev = (await send(port, 'GET', '/dev/echo?tag=red&tag=blue&q=hello%20world', [['X-Tag', 'alpha'], ['X-Tag', 'beta']])).json();
      assert.equal(ev.httpMethod, 'GET');
      assert.deepEqual(ev.queryStringParameters, { tag: 'blue', q: 'hello world' });
      assert.deepEqual(ev.multiValueQueryStringParameters, { tag: ['red', 'blue'], q: ['hello world'] });
      assert.equal(ev.headers['X-Tag'], 'beta');
      assert.deepEqual(ev.multiValueHeaders['X-Tag'], ['alpha', 'beta']);
      assert.equal(ev.resource, '/echo');
      assert.equal(ev.path, '/echo');
      assert.equal(ev.requestContext.stage, 'dev');
      assert.match(String(ev.requestContext.requestTimeEpoch), /^1\d{12}$/);
      assert.ok(Math.abs(ev.requestContext.requestTimeEpoch - Date.now()) < 5000);
      assert.match(ev.requestContext.requestTime, /^\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} \+0000$/);
    });

    it('1.0: a GET without query or body has null fields; POST bodies arrive as text', async () => {
      const ev = (await send(port, 'GET', '/dev/echo')).json();
      for (const k of ['body', 'queryStringParameters', 'multiValueQueryStringParameters', 'pathParameters', 'stageVariables']) assert.equal(ev[k], null, k);
      assert.equal(ev.isBase64Encoded, false);
      const post = (await send(port, 'POST', '/dev/echo', [['Content-Type', 'application/json']], '{"a":1}')).json();
      assert.equal(post.body, '{"a":1}');
      assert.equal(post.httpMethod, 'POST');
    });

    it('1.0: path parameters stay percent-encoded; a greedy parameter keeps its slashes', async () => {
      const ev = (await send(port, 'GET', '/dev/files/report%7C2024%2Fq1?who=a%40b.c')).json();
      assert.deepEqual(ev.pathParameters, { key: 'report%7C2024%2Fq1' });
      assert.equal(ev.resource, '/files/{key}');
      assert.deepEqual(ev.queryStringParameters, { who: 'a@b.c' });
      const g = (await send(port, 'DELETE', '/dev/api/users/42/orders')).json();
      assert.deepEqual(g.pathParameters, { proxy: 'users/42/orders' });
      assert.equal(g.httpMethod, 'DELETE');
      assert.equal(g.requestContext.resourcePath, '/api/{proxy+}');
    });

    it('2.0: header names lower-cased and repeats comma-joined, cookies in their own field, query joined', async () => {
      const ev = (await send(port, 'POST', '/echo?a=1&a=2', [['Content-Type', 'text/plain'], ['X-Tag', 'alpha'], ['X-Tag', 'beta'], ['Cookie', 'session=abc123; theme=dark']], 'hi')).json();
      assert.equal(ev.version, '2.0');
      assert.equal(ev.routeKey, 'ANY /echo');
      assert.equal(ev.headers['x-tag'], 'alpha,beta');
      assert.equal(ev.headers['content-type'], 'text/plain');
      assert.equal(ev.headers['Content-Type'], undefined);
      assert.equal(ev.multiValueHeaders, undefined);
      assert.deepEqual(ev.cookies, ['session=abc123', 'theme=dark']);
      assert.deepEqual(ev.queryStringParameters, { a: '1,2' });
      assert.equal(ev.body, 'hi');
      assert.equal(ev.isBase64Encoded, false);
      assert.equal(ev.requestContext.http.method, 'POST');
      assert.equal(ev.requestContext.stage, '$default');
    });

    it('2.0: binary request bodies arrive base64-encoded', async () => {
      const ev = (await send(port, 'POST', '/echo', [['Content-Type', 'application/octet-stream']], Buffer.from([1, 2, 3, 4, 5]))).json();
      assert.equal(ev.isBase64Encoded, true);
      assert.equal(ev.body, 'AQIDBAU=');
    });

    it('2.0: the path arrives percent-decoded, path parameters too', async () => {
      const ev = (await send(port, 'GET', '/items/caf%C3%A9%20au%20lait')).json();
      assert.deepEqual(ev.pathParameters, { id: 'café au lait' });
      assert.equal(ev.rawPath, '/items/café au lait');
    });

    it('1.0: multiValueHeaders and headers are merged into repeated fields', async () => {
      const r = await send(port, 'GET', '/dev/cookies');
      assert.equal(r.status, 200);
      assert.deepEqual(values(r, 'set-cookie'), ['a=1; Path=/', 'b=2; Path=/']);
      assert.deepEqual(values(r, 'x-one'), ['single', 'm1', 'm2']);
      assert.deepEqual(values(r, 'content-type'), ['text/html']);
      assert.equal(r.text, '<p>ok</p>');
    });

    it('2.0: cookies become Set-Cookie fields; the default content type is text/plain', async () => {
      const r = await send(port, 'GET', '/cookies');
      assert.equal(r.status, 201);
      assert.deepEqual(values(r, 'set-cookie'), ['a=1', 'b=2']);
      const p = await send(port, 'GET', '/plain');
      assert.deepEqual(values(p, 'content-type'), ['text/plain; charset=utf-8']);
      assert.deepEqual(values(p, 'content-length'), ['9']);
      assert.equal(p.text, 'Test body');
    });

    it('decodes base64 responses: HTTP API always, REST when Accept matches binaryMediaTypes', async () => {
      assert.equal((await send(port, 'GET', '/png')).body.toString('base64'), 'iVBORw0KGgo=');
      assert.equal((await send(port, 'GET', '/dev/png', [['Accept', 'image/png']])).body.toString('base64'), 'iVBORw0KGgo=');
      assert.equal((await send(port, 'GET', '/dev/png', [['Accept', 'text/html']])).text, 'iVBORw0KGgo=');
    });

    it('2.0: a result without statusCode is the JSON body of a 200 (headers inside it are not honoured)', async () => {
      const r = await send(port, 'GET', '/infer');
      assert.equal(r.status, 200);
      assert.deepEqual(values(r, 'content-type'), ['application/json']);
      assert.deepEqual(r.json(), { message: 'hi', headers: { 'content-type': 'application/xml' } });
      assert.equal((await send(port, 'GET', '/infer-string')).text, 'Hello from Lambda!');
    });

    it('a function error: REST 502, HTTP API 500, without the error text; a malformed REST result is 502 too', async () => {
      const rest = await send(port, 'GET', '/dev/boom');
      assert.equal(rest.status, 502);
      assert.equal(rest.text, '{"message": "Internal server error"}');
      assert.deepEqual(values(rest, 'x-nimbus-error'), ['NIMBUS_ERR_GATEWAY_FUNCTION_ERROR']);
      const api = await send(port, 'GET', '/boom');
      assert.equal(api.status, 500);
      assert.equal(api.text, '{"message":"Internal Server Error"}');
      assert.ok(!api.text.includes('secret'));
      assert.equal((await send(port, 'GET', '/dev/malformed')).status, 502);
    });

    it('a function timeout fails like a function error; API Gateway\'s own integration timeout is a 504', async () => {
      const r = await send(port, 'GET', '/slow');
      assert.equal(r.status, 500);
      assert.equal(r.text, '{"message":"Internal Server Error"}');
      assert.deepEqual(values(r, 'x-nimbus-error'), ['NIMBUS_ERR_GATEWAY_FUNCTION_TIMEOUT']);
      const slowRest = await send(port, 'GET', '/dev/slow-integration');
      assert.equal(slowRest.status, 504);
      assert.equal(slowRest.text, '{"message": "Endpoint request timed out"}');
      assert.deepEqual(values(slowRest, 'x-nimbus-error'), ['NIMBUS_ERR_GATEWAY_TIMEOUT']);
    });

    it('CORS: the gateway answers a preflight itself, and adds the headers to real responses', async () => {
      const pre = await send(port, 'OPTIONS', '/any', [['Origin', 'https://app.example.com'], ['Access-Control-Request-Method', 'POST'], ['Access-Control-Request-Headers', 'content-type']]);
      assert.equal(pre.status, 204);
      assert.deepEqual(values(pre, 'access-control-allow-origin'), ['https://app.example.com']);
      assert.deepEqual(values(pre, 'access-control-allow-methods'), ['GET,POST']);
      assert.deepEqual(values(pre, 'access-control-max-age'), ['300']);
      assert.equal(pre.text, '');
      // An OPTIONS that is not a preflight reaches the ANY route.
      const plain = await send(port, 'OPTIONS', '/any');
      assert.equal(plain.json().requestContext.http.method, 'OPTIONS');
      const real = await send(port, 'GET', '/any', [['Origin', 'https://app.example.com']]);
      assert.deepEqual(values(real, 'access-control-allow-origin'), ['https://app.example.com']);
      const foreign = await send(port, 'GET', '/any', [['Origin', 'https://evil.example']]);
      assert.deepEqual(values(foreign, 'access-control-allow-origin'), []);
    });

    it('413 for a body over 6 MB, without invoking the function', async () => {
      const big = Buffer.alloc(6 * 1024 * 1024 + 1024, 'X');
      const api = await send(port, 'POST', '/echo', [['Content-Type', 'text/plain']], big);
      assert.equal(api.status, 413);
      assert.equal(api.text, '{"message":"Request Entity Too Large"}');
      const rest = await send(port, 'POST', '/dev/echo', [['Content-Type', 'text/plain']], big);
      assert.equal(rest.status, 413);
      assert.equal(rest.text, '{"message":"Request Too Long"}');
    });

    it('HEAD gets the headers and no body; unknown routes: HTTP API 404, REST 403 Missing Authentication Token', async () => {
      const head = await send(port, 'HEAD', '/plain');
      assert.equal(head.status, 200);
      assert.equal(head.body.length, 0);
      const nf = await send(port, 'GET', '/nothing');
      assert.equal(nf.status, 404);
      assert.equal(nf.text, '{"message":"Not Found"}');
      const rest = await send(port, 'GET', '/dev/nothing');
      assert.equal(rest.status, 403);
      assert.equal(rest.text, '{"message":"Missing Authentication Token"}');
      const wrongMethod = await send(port, 'POST', '/dev/cookies');
      assert.equal(wrongMethod.status, 403);
    });
  });
}
