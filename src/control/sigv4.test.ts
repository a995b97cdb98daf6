// SigV4 verification against requests signed by the AWS SDK for JavaScript
// v3's own signer (@smithy/signature-v4), and against AWS's documented example.
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { SignatureV4 } from '@smithy/signature-v4';
import {
  canonicalQuery, canonicalUri, MAX_CLOCK_SKEW_MS, parseAuthorization, uriEncode, verifySigV4, type HeaderValues, type SigV4Result,
} from './sigv4.js';

const AKID = 'AKIDNIMBUSTEST';
const SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
const keys = new Map([[AKID, SECRET]]);
const secretOf = (id: string) => keys.get(id);

/** The SHA-256 the signer needs (the SDK uses @aws-crypto; node:crypto gives the same bytes). */
class Sha256 {
  private readonly h;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.h = secret === undefined ? createHash('sha256') : createHmac('sha256', toBytes(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void { this.h.update(toBytes(data)); }
  digest(): Promise<Uint8Array> { return Promise.resolve(new Uint8Array(this.h.digest())); }
}

function toBytes(d: string | ArrayBuffer | ArrayBufferView): string | Uint8Array {
  if (typeof d === 'string') return d;
  return ArrayBuffer.isView(d) ? new Uint8Array(d.buffer, d.byteOffset, d.byteLength) : new Uint8Array(d);
}

interface Wire { method: string; url: string; headers: HeaderValues; body: Buffer }

/**
 * Signs a request as the Lambda client does, and returns what the server
 * receives: the URL the client's HTTP handler writes (path as given, query
 * encoded with the SDK's escaping) and lower-cased headers.
 */
async function signWithSdk(opts: {
  method: string; path: string; query?: Record<string, string>; headers?: Record<string, string>; body?: string;
  date: Date; secret?: string; applyChecksum?: boolean; service?: string;
}): Promise<Wire> {
  const signer = new SignatureV4({
    credentials: { accessKeyId: AKID, secretAccessKey: opts.secret ?? SECRET },
    region: 'eu-west-1', service: opts.service ?? 'lambda', sha256: Sha256, applyChecksum: opts.applyChecksum,
  });
  const request = {
    method: opts.method, protocol: 'http:', hostname: '127.0.0.1', port: 3001, path: opts.path,
    query: opts.query ?? {},
    headers: { host: '127.0.0.1:3001', 'content-type': 'application/json', ...(opts.headers ?? {}) } as Record<string, string>,
    body: opts.body,
  };
  const signed = await signer.sign(request as never, { signingDate: opts.date }) as unknown as { headers: Record<string, string> };
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(signed.headers)) headers[k.toLowerCase()] = v;
  const q = Object.entries(opts.query ?? {}).map(([k, v]) => `${uriEncode(k)}=${uriEncode(v)}`).join('&');
  return { method: opts.method, url: q ? `${opts.path}?${q}` : opts.path, headers, body: Buffer.from(opts.body ?? '') };
}

function verify(w: Wire, nowMs: number): SigV4Result {
  return verifySigV4(w, secretOf, nowMs);
}

const DATE = new Date('2024-03-01T12:00:00Z');
const NOW = DATE.getTime() + 30_000;

describe('SigV4 verification', () => {
  it('accepts a POST signed by the SDK: encoded path, query, JSON body, x-amz-content-sha256', async () => {
    const w = await signWithSdk({
      method: 'POST', path: '/2015-03-31/functions/arn%3Aaws%3Alambda%3Aeu-west-1%3A000000000000%3Afunction%3Amy-fn/invocations',
      query: { Qualifier: 'prod', 'odd key': "a b/c~*'!" }, headers: { 'x-amz-invocation-type': 'RequestResponse', 'x-custom': '  two   spaces  ' },
      body: '{"hello":"world","n":[1,2,3]}', date: DATE,
    });
    assert.ok(w.headers['x-amz-content-sha256'], 'the SDK signer sends the body hash');
    assert.deepEqual(verify(w, NOW), { ok: true, accessKeyId: AKID });
  });

  it('accepts a GET with no body and no x-amz-content-sha256 header', async () => {
    const w = await signWithSdk({ method: 'GET', path: '/2015-03-31/functions', query: { MaxItems: '10', Marker: 'bXktZm4=' }, date: DATE, applyChecksum: false });
    assert.equal(w.headers['x-amz-content-sha256'], undefined);
    assert.deepEqual(verify(w, NOW), { ok: true, accessKeyId: AKID });
  });

  it('accepts a DELETE with a query and a path that needs normalising', async () => {
    const w = await signWithSdk({ method: 'DELETE', path: '/2015-03-31/functions/f%241/', query: { Qualifier: '$LATEST' }, date: DATE });
    assert.deepEqual(verify(w, NOW), { ok: true, accessKeyId: AKID });
  });

  it('refuses a signature made with the wrong secret', async () => {
    const w = await signWithSdk({ method: 'GET', path: '/2015-03-31/functions/f', date: DATE, secret: 'not-the-secret' });
    const r = verify(w, NOW);
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.reason, 'signature');
    assert.equal(!r.ok && r.message, 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.');
  });

  it('refuses a body changed after signing, with or without x-amz-content-sha256', async () => {
    const w = await signWithSdk({ method: 'POST', path: '/2015-03-31/functions', body: '{"FunctionName":"a"}', date: DATE });
    const tampered = { ...w, body: Buffer.from('{"FunctionName":"b"}') };
    const r = verify(tampered, NOW);
    assert.equal(!r.ok && r.reason, 'signature');
    assert.match(!r.ok ? r.message : '', /x-amz-content-sha256/);

    const bare = await signWithSdk({ method: 'POST', path: '/2015-03-31/functions', body: '{"FunctionName":"a"}', date: DATE, applyChecksum: false });
    const r2 = verify({ ...bare, body: Buffer.from('{"FunctionName":"b"}') }, NOW);
    assert.equal(!r2.ok && r2.reason, 'signature');
    assert.match(!r2.ok ? r2.message : '', /does not match the signature you provided/);
  });

  it('refuses a changed path, query or signed header', async () => {
    const w = await signWithSdk({ method: 'GET', path: '/2015-03-31/functions/f', query: { Qualifier: '1' }, headers: { 'x-extra': 'a' }, date: DATE });
    assert.equal(verify({ ...w, url: '/2015-03-31/functions/g?Qualifier=1' }, NOW).ok, false);
    assert.equal(verify({ ...w, url: '/2015-03-31/functions/f?Qualifier=2' }, NOW).ok, false);
    assert.equal(verify({ ...w, method: 'DELETE' }, NOW).ok, false);
    assert.equal(verify({ ...w, headers: { ...w.headers, 'x-extra': 'b' } }, NOW).ok, false);
    // An unsigned header may change: it is not part of the signature.
    assert.equal(verify({ ...w, headers: { ...w.headers, 'x-unsigned': 'anything' } }, NOW).ok, true);
  });

  it('refuses a date more than 15 minutes off either way, with AWS\'s messages', async () => {
    const w = await signWithSdk({ method: 'GET', path: '/2015-03-31/functions', date: DATE });
    const signedAt = DATE.getTime();
    assert.equal(verify(w, signedAt + MAX_CLOCK_SKEW_MS - 1000).ok, true);
    assert.equal(verify(w, signedAt - MAX_CLOCK_SKEW_MS + 1000).ok, true);
    assert.deepEqual(verify(w, signedAt + MAX_CLOCK_SKEW_MS + 60_000), {
      ok: false, reason: 'expired',
      message: 'Signature expired: 20240301T120000Z is now earlier than 20240301T120100Z (20240301T121600Z - 15 min.)',
    });
    assert.deepEqual(verify(w, signedAt - MAX_CLOCK_SKEW_MS - 60_000), {
      ok: false, reason: 'expired',
      message: 'Signature not yet current: 20240301T120000Z is still later than 20240301T115900Z (20240301T114400Z + 15 min.)',
    });
  });

  it('refuses an unknown access key before looking at the signature', async () => {
    const w = await signWithSdk({ method: 'GET', path: '/2015-03-31/functions', date: DATE });
    assert.deepEqual(verifySigV4(w, () => undefined, NOW), { ok: false, reason: 'unknown-key', message: 'The security token included in the request is invalid.' });
  });

  it('refuses malformed headers and a missing X-Amz-Date', async () => {
    const w = await signWithSdk({ method: 'GET', path: '/2015-03-31/functions', date: DATE });
    const { 'x-amz-date': _date, ...noDate } = w.headers;
    const r = verify({ ...w, headers: noDate }, NOW);
    assert.equal(!r.ok && r.reason, 'malformed');
    assert.match(!r.ok ? r.message : '', /X-Amz-Date/);
    for (const header of [
      'AWS4-HMAC-SHA256 Credential=AKIDNIMBUSTEST/20240301/eu-west-1/lambda/aws4_request',
      'AWS4-HMAC-SHA256 Credential=AKIDNIMBUSTEST/20240301/lambda/aws4_request, SignedHeaders=host, Signature=' + '0'.repeat(64),
      'AWS4-HMAC-SHA256 Credential=AKIDNIMBUSTEST/20240301/eu-west-1/lambda/aws4_request, SignedHeaders=x-amz-date, Signature=' + '0'.repeat(64),
      'AWS4-HMAC-SHA256 Credential=AKIDNIMBUSTEST/20240301/eu-west-1/lambda/aws4_request, SignedHeaders=host, Signature=zz',
    ]) {
      const m = verify({ ...w, headers: { ...w.headers, authorization: header } }, NOW);
      assert.equal(!m.ok && m.reason, 'malformed', header);
    }
  });

  it('matches AWS\'s documented get-vanilla example', () => {
    // The "get-vanilla" case of AWS's SigV4 test suite (example credentials, service "service").
    const r = verifySigV4({
      method: 'GET', url: '/', body: new Uint8Array(),
      headers: {
        host: 'example.amazonaws.com', 'x-amz-date': '20150830T123600Z',
        authorization: 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
      },
    }, (id) => (id === 'AKIDEXAMPLE' ? SECRET : undefined), Date.UTC(2015, 7, 30, 12, 36));
    assert.deepEqual(r, { ok: true, accessKeyId: 'AKIDEXAMPLE' });
  });
});

describe('SigV4 canonical forms', () => {
  it('canonical URI: normalised segments, encoded twice, slashes kept', () => {
    assert.equal(canonicalUri(''), '/');
    assert.equal(canonicalUri('/'), '/');
    assert.equal(canonicalUri('/a/./b/../c//d/'), '/a/c/d/');
    assert.equal(canonicalUri('/functions/my%3Afn'), '/functions/my%253Afn');
    assert.equal(canonicalUri("/x/a(b)*!'"), '/x/a%28b%29%2A%21%27');
  });

  it('canonical query: decoded, re-encoded, sorted by name then value', () => {
    assert.equal(canonicalQuery(''), '');
    assert.equal(canonicalQuery('b=2&a=1&a=0&c'), 'a=0&a=1&b=2&c=');
    assert.equal(canonicalQuery('k=a%20b&k2=a+b&q=%24LATEST'), 'k=a%20b&k2=a%2Bb&q=%24LATEST');
    assert.equal(canonicalQuery('bad=%E0%A4%A'), null);
  });

  it('parses the Authorization header', () => {
    assert.deepEqual(parseAuthorization(`AWS4-HMAC-SHA256 Credential=AK/20240301/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'a'.repeat(64)}`), {
      accessKeyId: 'AK', date: '20240301', region: 'us-east-1', service: 'lambda', scope: '20240301/us-east-1/lambda/aws4_request',
      signedHeaders: ['host', 'x-amz-date'], signature: 'a'.repeat(64),
    });
    assert.equal(typeof parseAuthorization('Bearer x'), 'string');
  });
});
