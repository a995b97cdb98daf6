import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { createAuthenticator } from './auth.js';
import { canonicalRequest, signature, signingKey, stringToSign } from './sigv4.js';

const TOKEN = 'nimbus-admin-0123456789abcdef';
const auth = createAuthenticator(
  { adminToken: TOKEN, accessKeys: new Map([['AKID1', 'secret-1']]) },
  { tokenFile: '/var/lib/nimbus/admin-token', now: () => Date.UTC(2024, 2, 1, 12, 0, 30) },
);
const EMPTY = new Uint8Array();

/** Signs with this module's own primitives (sigv4.test.ts checks them against the SDK's signer). */
function signed(secret: string, body = ''): Record<string, string> {
  const headers: Record<string, string> = {
    host: '127.0.0.1:3001', 'x-amz-date': '20240301T120000Z',
    'x-amz-content-sha256': createHash('sha256').update(body).digest('hex'),
  };
  const names = ['host', 'x-amz-content-sha256', 'x-amz-date'];
  const canonical = canonicalRequest('POST', '/2015-03-31/functions', headers, names, headers['x-amz-content-sha256'])!;
  const sig = signature(signingKey(secret, '20240301', 'us-east-1', 'lambda'), stringToSign('20240301T120000Z', '20240301/us-east-1/lambda/aws4_request', canonical));
  headers.authorization = `AWS4-HMAC-SHA256 Credential=AKID1/20240301/us-east-1/lambda/aws4_request, SignedHeaders=${names.join(';')}, Signature=${sig}`;
  return headers;
}

describe('control API authenticator', () => {
  it('accepts the admin token as a bearer token (scheme in any case)', () => {
    assert.deepEqual(auth.authenticate('GET', '/_/services', { authorization: `Bearer ${TOKEN}` }, EMPTY), { ok: true, principal: { kind: 'admin' } });
    assert.deepEqual(auth.authenticate('GET', '/_/services', { authorization: `bearer   ${TOKEN} ` }, EMPTY), { ok: true, principal: { kind: 'admin' } });
  });

  it('refuses a missing header with 401 and says where the token is', () => {
    const r = auth.authenticate('GET', '/_/services', {}, EMPTY);
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.status, 401);
    assert.equal(!r.ok && r.errorType, 'MissingAuthenticationTokenException');
    assert.match(!r.ok ? r.message : '', /\/var\/lib\/nimbus\/admin-token/);
  });

  it('refuses a wrong, empty or prefixed bearer token with 403', () => {
    for (const value of ['Bearer nope', 'Bearer ', `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(1)}`]) {
      const r = auth.authenticate('GET', '/_/services', { authorization: value }, EMPTY);
      assert.equal(!r.ok && r.status, 403, value);
      assert.equal(!r.ok && r.errorType, 'AccessDeniedException');
      assert.match(!r.ok ? r.message : '', /admin-token/);
    }
  });

  it('refuses every bearer token when the admin token is empty', () => {
    const none = createAuthenticator({ adminToken: '', accessKeys: new Map() });
    const r = none.authenticate('GET', '/', { authorization: 'Bearer ' }, EMPTY);
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.message : '', /<data dir>\/admin-token/);
  });

  it('refuses an unknown scheme with 401', () => {
    const r = auth.authenticate('GET', '/', { authorization: 'Basic dXNlcjpwYXNz' }, EMPTY);
    assert.equal(!r.ok && r.status, 401);
    assert.equal(!r.ok && r.errorType, 'MissingAuthenticationTokenException');
  });

  it('accepts SigV4 with a known key and maps its refusals to Lambda\'s error types', () => {
    const body = Buffer.from('{"a":1}');
    assert.deepEqual(auth.authenticate('POST', '/2015-03-31/functions', signed('secret-1', '{"a":1}'), body), { ok: true, principal: { kind: 'access-key', accessKeyId: 'AKID1' } });

    const wrong = auth.authenticate('POST', '/2015-03-31/functions', signed('secret-2', '{"a":1}'), body);
    assert.deepEqual(wrong, {
      ok: false, status: 403, errorType: 'InvalidSignatureException',
      message: 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
    });

    const unknown = signed('secret-1', '{"a":1}');
    unknown.authorization = unknown.authorization.replace('AKID1', 'AKID9');
    assert.deepEqual(auth.authenticate('POST', '/2015-03-31/functions', unknown, body), {
      ok: false, status: 403, errorType: 'UnrecognizedClientException', message: 'The security token included in the request is invalid.',
    });

    const stale = createAuthenticator({ adminToken: TOKEN, accessKeys: new Map([['AKID1', 'secret-1']]) }, { now: () => Date.UTC(2024, 2, 1, 12, 20) });
    const r = stale.authenticate('POST', '/2015-03-31/functions', signed('secret-1', '{"a":1}'), body);
    assert.equal(!r.ok && r.errorType, 'InvalidSignatureException');
    assert.match(!r.ok ? r.message : '', /^Signature expired/);

    const malformed = auth.authenticate('POST', '/', { authorization: 'AWS4-HMAC-SHA256 Credential=AKID1' }, body);
    assert.equal(!malformed.ok && malformed.errorType, 'IncompleteSignatureException');
  });

  it('hashes before comparing, so tokens of any length compare without throwing', () => {
    const long = 'x'.repeat(10_000);
    assert.equal(auth.authenticate('GET', '/', { authorization: `Bearer ${long}` }, EMPTY).ok, false);
  });
});
