/**
 * End-to-end: the shipped examples, served by the real `nimbus` binary as a
 * user runs it (`nimbus dev`, `nimbus invoke`), answered over real HTTP.
 *
 * - examples/seed-api: Python, REST API (`http` event, payload 1.0) at /dev/process.
 * - examples/typescript-api: TypeScript bundled by esbuild, HTTP API (`httpApi`, payload 2.0), CORS on.
 *
 * Every wait is bounded; servers are stopped with SIGTERM (then SIGKILL after a
 * deadline) in `after`; `.nimbus/` folders the runs create are removed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inflateSync } from 'node:zlib';

/** The repository root: this file runs as dist/test/examples.test.js. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'bin', 'nimbus');
const SEED_API = join(ROOT, 'examples', 'seed-api', 'serverless.yml');
const TS_API = join(ROOT, 'examples', 'typescript-api', 'serverless.yml');

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 15_000;

/** `.nimbus/` folders that did not exist before this file ran: removed at the end. */
const createdDataDirs = [SEED_API, TS_API]
  .map((config) => join(dirname(config), '.nimbus'))
  .filter((dir) => !existsSync(dir));
after(() => {
  for (const dir of createdDataDirs) rmSync(dir, { recursive: true, force: true });
});

/** A port nobody listens on right now (the OS's pick for port 0). */
function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolvePort(port));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolves with the exit code (or signal) when `child` exits, or null after `ms`. */
function waitForExit(child: ChildProcess, ms: number): Promise<number | string | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode ?? child.signalCode);
  return new Promise((r) => {
    const timer = setTimeout(() => { child.off('exit', onExit); r(null); }, ms);
    const onExit = (code: number | null, signal: string | null) => { clearTimeout(timer); r(code ?? signal); };
    child.once('exit', onExit);
  });
}

/** A running `nimbus dev`. */
interface DevServer {
  readonly base: string;
  readonly child: ChildProcess;
  /** Everything it wrote so far (stdout and stderr). */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts `nimbus dev` on two free ports and waits for GET /_/health = 200.
 * Tries again (new ports) when the process exits early, e.g. because another
 * process took a port between the pick and the listen.
 */
async function startDev(config: string): Promise<DevServer> {
  let lastFailure = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const controlPort = await freePort();
    const child = spawn(process.execPath, [
      BIN, 'dev', '--config', config, '--port', String(port), '--control-port', String(controlPort), '--no-watch',
    ], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => { out += s; });
    child.stderr!.setEncoding('utf8').on('data', (s: string) => { out += s; });
    const stop = async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      if (await waitForExit(child, STOP_TIMEOUT_MS) === null) {
        child.kill('SIGKILL');
        await waitForExit(child, STOP_TIMEOUT_MS);
      }
    };
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline && child.exitCode === null && child.signalCode === null) {
      try {
        const res = await fetch(`http://127.0.0.1:${controlPort}/_/health`, { signal: AbortSignal.timeout(2_000) });
        await res.arrayBuffer();
        if (res.status === 200) return { base: `http://127.0.0.1:${port}`, child, output: () => out, stop };
      } catch { /* not listening yet */ }
      await sleep(100);
    }
    await stop();
    lastFailure = `nimbus dev --config ${config} did not become healthy (exit ${child.exitCode ?? child.signalCode ?? 'none, timed out'}):\n${out}`;
  }
  throw new Error(lastFailure);
}

interface Reply {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly bytes: Buffer;
}

/** One request, bounded by REQUEST_TIMEOUT_MS, with the whole body read. */
async function request(url: string, init: RequestInit = {}): Promise<Reply> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  const bytes = Buffer.from(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, text: bytes.toString('utf8'), bytes };
}

/** POST `body` as JSON text (content-type application/json). */
function postJson(url: string, body: string): Promise<Reply> {
  return request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
}

describe('examples/seed-api (Python, REST API)', () => {
  let dev: DevServer;
  let url: string;
  before(async () => {
    dev = await startDev(SEED_API);
    url = `${dev.base}/dev/process`;
  });
  after(async () => { await dev?.stop(); });

  it('answers the statistics of a list of whole numbers', async () => {
    const r = await postJson(url, JSON.stringify({ numbers: [2, 4, 4, 4, 5, 5, 7, 9] }));
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'application/json');
    assert.equal(r.text, '{"count": 8, "sum": 40, "mean": 5.0, "median": 4.5, "min": 2, "max": 9, "stdev": 2.0}');
  });

  it('rounds floats to 6 places', async () => {
    const r = await postJson(url, '{"numbers": [1, 2, 3, 4]}');
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.text), { count: 4, sum: 10, mean: 2.5, median: 2.5, min: 1, max: 4, stdev: 1.118034 });
    const mixed = await postJson(url, '{"numbers": [1.5, 2.5, 10, -4]}');
    assert.equal(mixed.status, 200);
    assert.deepEqual(JSON.parse(mixed.text), { count: 4, sum: 10, mean: 2.5, median: 2, min: -4, max: 10, stdev: 4.987484 });
  });

  it('logs one line per request between START and REPORT', async () => {
    const r = await postJson(url, '{"numbers": [7]}');
    assert.equal(r.status, 200);
    const deadline = Date.now() + 5_000;
    while (!/status=200 count=1 mean=7\.0/.test(dev.output()) && Date.now() < deadline) await sleep(50);
    assert.match(dev.output(), /\[process\] process request=[0-9a-f-]{36} status=200 count=1 mean=7\.0\n/);
  });

  const badInputs: ReadonlyArray<readonly [string, string | undefined, RegExp | string]> = [
    ['a body that is not JSON', 'not json', /^request body is not valid JSON: Expecting value: line 1 column 1 \(char 0\)$/],
    ['no body', undefined, 'request body is missing; send JSON like {"numbers": [1, 2, 3]}'],
    ['a JSON array instead of an object', '[1, 2]', 'request body must be a JSON object like {"numbers": [1, 2, 3]}'],
    ['no "numbers"', '{"values": [1]}', '"numbers" is missing'],
    ['an empty "numbers"', '{"numbers": []}', '"numbers" is empty; give at least one number'],
    ['"numbers" not a list', '{"numbers": 5}', '"numbers" must be a list of numbers'],
    ['a boolean item', '{"numbers": [1, true]}', '"numbers"[1] is not a number: true'],
    ['a string item', '{"numbers": [1, 2, "3"]}', '"numbers"[2] is not a number: "3"'],
    ['a null item', '{"numbers": [null]}', '"numbers"[0] is not a number: null'],
    ['NaN', '{"numbers": [NaN]}', '"numbers"[0] is not a finite number'],
  ];
  for (const [what, body, expected] of badInputs) {
    it(`400 for ${what}`, async () => {
      const r = body === undefined ? await request(url, { method: 'POST' }) : await postJson(url, body);
      assert.equal(r.status, 400);
      assert.equal(r.headers.get('content-type'), 'application/json');
      assert.equal(r.headers.get('x-nimbus-error'), null, 'the 400 is the function\'s own, not the platform\'s');
      const error = (JSON.parse(r.text) as { error: string }).error;
      if (typeof expected === 'string') assert.equal(error, expected); else assert.match(error, expected);
    });
  }

  it('only POST /dev/process is routed: a REST API answers other methods 403 Missing Authentication Token', async () => {
    const r = await request(url);
    assert.equal(r.status, 403);
    assert.equal(r.text, '{"message":"Missing Authentication Token"}');
    assert.equal(r.headers.get('x-nimbus-error'), 'NIMBUS_ERR_GATEWAY_MISSING_TOKEN');
  });
});

/** The 8x8 RGBA PNG the image handler returns (a white cloud on blue), kept here independently. */
const CLOUD_PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAYAAADED76LAAAAIElEQVR42mPwmvDoPz7MQJICGMCqAB2gKMAFiFdAkS8Aa17FU+mAyh0AAAAASUVORK5CYII=',
  'base64',
);
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** CRC-32 (ISO 3309, as PNG chunks use it); zlib.crc32 needs Node 20.15+, the engines field says 20. */
function crc32(data: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** Checks PNG structure: signature, chunk CRCs, IHDR first and IEND last; returns IHDR and the inflated IDAT data. */
function readPng(png: Buffer): { width: number; height: number; bitDepth: number; colourType: number; pixels: Buffer } {
  assert.deepEqual(png.subarray(0, 8), PNG_SIGNATURE, 'PNG signature');
  const types: string[] = [];
  const idat: Buffer[] = [];
  let ihdr: Buffer | null = null;
  let at = 8;
  while (at < png.length) {
    const length = png.readUInt32BE(at);
    const type = png.subarray(at + 4, at + 8).toString('latin1');
    const data = png.subarray(at + 8, at + 8 + length);
    const crc = png.readUInt32BE(at + 8 + length);
    assert.equal(crc, crc32(png.subarray(at + 4, at + 8 + length)), `CRC of the ${type} chunk`);
    types.push(type);
    if (type === 'IHDR') ihdr = data;
    if (type === 'IDAT') idat.push(data);
    at += 12 + length;
  }
  assert.equal(at, png.length, 'chunks end exactly at the end of the file');
  assert.equal(types[0], 'IHDR');
  assert.equal(types[types.length - 1], 'IEND');
  assert.ok(ihdr);
  return {
    width: ihdr.readUInt32BE(0), height: ihdr.readUInt32BE(4), bitDepth: ihdr[8], colourType: ihdr[9],
    pixels: inflateSync(Buffer.concat(idat)),
  };
}

describe('examples/typescript-api (TypeScript, HTTP API)', () => {
  let dev: DevServer;
  before(async () => { dev = await startDev(TS_API); });
  after(async () => { await dev?.stop(); });

  it('GET /hello', async () => {
    const r = await request(`${dev.base}/hello`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'application/json');
    assert.equal(r.text, '{"message":"hello"}');
    assert.match(r.headers.get('apigw-requestid') ?? '', /^[0-9a-f-]{36}$/);
  });

  it('GET /users/{id}: a known user, and 404 for an unknown one', async () => {
    const r = await request(`${dev.base}/users/2`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'application/json');
    assert.deepEqual(JSON.parse(r.text), { id: '2', name: 'Alan Turing', email: 'alan@example.com' });
    const missing = await request(`${dev.base}/users/42`);
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get('content-type'), 'application/json');
    assert.equal(missing.headers.get('x-nimbus-error'), null, 'the 404 is the function\'s own');
    assert.deepEqual(JSON.parse(missing.text), { message: 'no user with id "42"' });
  });

  it('GET /search filters with q and limit', async () => {
    const r = await request(`${dev.base}/search?q=Berry&limit=2`);
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.text), { query: 'berry', limit: 2, total: 4, results: ['blackberry', 'blueberry'] });
    const all = await request(`${dev.base}/search?q=ap`);
    assert.equal(all.status, 200);
    assert.deepEqual(JSON.parse(all.text), {
      query: 'ap', limit: 10, total: 6, results: ['apple', 'apricot', 'grape', 'grapefruit', 'papaya', 'pineapple'],
    });
    const none = await request(`${dev.base}/search?q=zucchini`);
    assert.deepEqual(JSON.parse(none.text), { query: 'zucchini', limit: 10, total: 0, results: [] });
    const noQuery = await request(`${dev.base}/search?limit=3`);
    assert.deepEqual(JSON.parse(noQuery.text), { query: '', limit: 3, total: 22, results: ['apple', 'apricot', 'banana'] });
  });

  for (const limit of ['0', '51', 'abc', '2.5', '-1', '']) {
    it(`GET /search?limit=${limit} is a 400`, async () => {
      const r = await request(`${dev.base}/search?q=a&limit=${limit}`);
      assert.equal(r.status, 400);
      assert.equal(r.headers.get('content-type'), 'application/json');
      assert.deepEqual(JSON.parse(r.text), { message: `limit must be a whole number from 1 to 50, got ${JSON.stringify(limit)}` });
    });
  }

  it('POST /users creates a user: 201 with an id', async () => {
    const r = await postJson(`${dev.base}/users`, '{"name": "  Edsger Dijkstra ", "email": "ewd@example.com"}');
    assert.equal(r.status, 201);
    assert.equal(r.headers.get('content-type'), 'application/json');
    const user = JSON.parse(r.text) as { id: string; name: string; email: string };
    assert.match(user.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.deepEqual(user, { id: user.id, name: 'Edsger Dijkstra', email: 'ewd@example.com' });
    assert.equal(r.headers.get('location'), `/users/${user.id}`);
  });

  it('POST /users decodes a body the gateway sent base64 (no text content type)', async () => {
    // No content-type: the HTTP API passes the body base64 with isBase64Encoded: true.
    const body = new TextEncoder().encode('{"name": "Barbara Liskov", "email": "liskov@example.com"}');
    const r = await request(`${dev.base}/users`, { method: 'POST', body });
    assert.equal(r.status, 201);
    const user = JSON.parse(r.text) as { id: string };
    assert.deepEqual(user, { id: user.id, name: 'Barbara Liskov', email: 'liskov@example.com' });
  });

  it('POST /users: 400 on a body that is not JSON, or missing', async () => {
    const bad = await postJson(`${dev.base}/users`, '{"name": ');
    assert.equal(bad.status, 400);
    assert.equal(bad.headers.get('content-type'), 'application/json');
    assert.match((JSON.parse(bad.text) as { message: string }).message, /^the request body is not valid JSON: /);
    const empty = await request(`${dev.base}/users`, { method: 'POST' });
    assert.equal(empty.status, 400);
    assert.deepEqual(JSON.parse(empty.text), { message: 'the request has no body; send a JSON object' });
  });

  it('POST /users: 400 listing the invalid fields', async () => {
    const r = await postJson(`${dev.base}/users`, '{"name": "", "email": "nope"}');
    assert.equal(r.status, 400);
    assert.deepEqual(JSON.parse(r.text), {
      message: 'invalid user',
      errors: ['name: required, a non-empty string', 'email: not an email address (want local@domain)'],
    });
    const types = await postJson(`${dev.base}/users`, '{"name": 7}');
    assert.equal(types.status, 400);
    assert.deepEqual(JSON.parse(types.text), {
      message: 'invalid user', errors: ['name: required, a non-empty string', 'email: required, a string'],
    });
    const notObject = await postJson(`${dev.base}/users`, '["Ada", "ada@example.com"]');
    assert.equal(notObject.status, 400);
    assert.deepEqual(JSON.parse(notObject.text), {
      message: 'invalid user', errors: ['the body must be a JSON object like {"name": "...", "email": "..."}'],
    });
  });

  it('GET /error: the handler throws, the gateway answers 500 as an HTTP API does', async () => {
    const r = await request(`${dev.base}/error`);
    assert.equal(r.status, 500);
    assert.equal(r.text, '{"message":"Internal Server Error"}');
    assert.equal(r.headers.get('content-type'), 'application/json');
    assert.equal(r.headers.get('x-nimbus-error'), 'NIMBUS_ERR_GATEWAY_FUNCTION_ERROR');
  });

  it('GET /image.png: the PNG bytes, decoded from base64 by the gateway', async () => {
    const r = await request(`${dev.base}/image.png`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'image/png');
    assert.equal(r.headers.get('content-length'), String(CLOUD_PNG.length));
    assert.deepEqual(r.bytes.subarray(0, 8), PNG_SIGNATURE);
    assert.deepEqual(r.bytes, CLOUD_PNG);
    const png = readPng(r.bytes);
    assert.deepEqual({ width: png.width, height: png.height, bitDepth: png.bitDepth, colourType: png.colourType },
      { width: 8, height: 8, bitDepth: 8, colourType: 6 });
    // 8 rows of a filter byte + 8 RGBA pixels.
    assert.equal(png.pixels.length, 8 * (1 + 8 * 4));
  });

  it('answers a CORS preflight itself (204) and adds CORS headers to responses', async () => {
    const pre = await request(`${dev.base}/users`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.text, '');
    assert.equal(pre.headers.get('access-control-allow-origin'), '*');
    const methods = (pre.headers.get('access-control-allow-methods') ?? '').split(',');
    for (const m of ['GET', 'POST', 'OPTIONS']) assert.ok(methods.includes(m), `allow-methods ${methods.join(',')} has ${m}`);
    assert.match(pre.headers.get('access-control-allow-headers') ?? '', /(^|,)Content-Type(,|$)/i);

    const r = await request(`${dev.base}/hello`, { headers: { origin: 'https://app.example.com' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('access-control-allow-origin'), '*');
    assert.equal(r.text, '{"message":"hello"}');
  });

  it('404 for a route that does not exist', async () => {
    const r = await request(`${dev.base}/nope`);
    assert.equal(r.status, 404);
    assert.equal(r.text, '{"message":"Not Found"}');
    assert.equal(r.headers.get('x-nimbus-error'), 'NIMBUS_ERR_GATEWAY_NOT_FOUND');
  });
});

describe('nimbus invoke on examples/seed-api', () => {
  it('prints the result JSON on stdout and exits 0', async () => {
    const child = spawn(process.execPath, [
      BIN, 'invoke', '-f', 'process', '--data', '{"body": "{\\"numbers\\":[1,2,3]}"}', '--config', SEED_API,
    ], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
    child.stderr!.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
    let code = await waitForExit(child, START_TIMEOUT_MS);
    if (code === null) {
      child.kill('SIGKILL');
      code = await waitForExit(child, STOP_TIMEOUT_MS);
      assert.fail(`nimbus invoke did not finish in ${START_TIMEOUT_MS} ms:\n${stdout}\n${stderr}`);
    }
    assert.equal(code, 0, `exit code; stderr:\n${stderr}`);
    assert.deepEqual(JSON.parse(stdout), {
      statusCode: 200,
      headers: { 'Content-Type': 'application/json' },
      body: '{"count": 3, "sum": 6, "mean": 2.0, "median": 2, "min": 1, "max": 3, "stdev": 0.816497}',
    });
    assert.match(stderr, /^START RequestId: [0-9a-f-]{36} Version: \$LATEST$/m);
    assert.match(stderr, /^process request=[0-9a-f-]{36} status=200 count=3 mean=2\.0$/m);
    assert.match(stderr, /^REPORT RequestId: /m);
  });
});
