/**
 * Verifying AWS Signature Version 4 (`AWS4-HMAC-SHA256`) on requests to the
 * control API, so the AWS SDKs and CLI can call Nimbus with an access key.
 *
 * The server recomputes what the client signed, as AWS documents it in
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html :
 *
 *   CanonicalRequest = Method \n CanonicalURI \n CanonicalQuery \n
 *                      CanonicalHeaders \n SignedHeaders \n HexSHA256(Payload)
 *   StringToSign     = "AWS4-HMAC-SHA256" \n X-Amz-Date \n Scope \n HexSHA256(CanonicalRequest)
 *   Scope            = yyyymmdd/region/service/aws4_request
 *   SigningKey       = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, yyyymmdd), region), service), "aws4_request")
 *   Signature        = Hex(HMAC(SigningKey, StringToSign))
 *
 * Details that must match the signers byte for byte (checked against
 * `@smithy/signature-v4`, the AWS SDK for JavaScript v3's signer, in
 * sigv4.test.ts):
 * - the canonical URI is the path as sent (already percent-encoded by the
 *   client), with `.`/`..`/empty segments normalised, percent-encoded once
 *   more: every service but S3 double-encodes (`my%3Afn` → `my%253Afn`);
 * - query names and values are decoded, re-encoded with RFC 3986's unreserved
 *   set (`A-Z a-z 0-9 - _ . ~`), and sorted by name, then value;
 * - header values are trimmed, inner runs of spaces become one space, and
 *   repeated headers are joined with `,`;
 * - the payload hash is `x-amz-content-sha256` when sent (it must then match
 *   the body), else the SHA-256 of the body.
 *
 * Only the `Authorization` header form is accepted (no presigned URLs, no
 * `UNSIGNED-PAYLOAD`, no SigV4a). Any region and service in the scope are
 * accepted: they are bound into the signature anyway.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** The only algorithm accepted. */
export const SIGV4_ALGORITHM = 'AWS4-HMAC-SHA256';
/** Requests whose `X-Amz-Date` is further than this from the server's clock are refused (ms). */
export const MAX_CLOCK_SKEW_MS = 15 * 60 * 1000;

/** Header values as Node gives them (`req.headersDistinct` keeps repeated headers apart, which is best). */
export type HeaderValues = Readonly<Record<string, string | readonly string[] | undefined>>;

/** The parts of an `Authorization: AWS4-HMAC-SHA256 …` header. */
export interface SigV4Authorization {
  readonly accessKeyId: string;
  /** `yyyymmdd` of the credential scope. */
  readonly date: string;
  readonly region: string;
  readonly service: string;
  /** `yyyymmdd/region/service/aws4_request`. */
  readonly scope: string;
  /** Lower-case header names, in the order given (they must be sorted). */
  readonly signedHeaders: readonly string[];
  /** 64 lower-case hex digits. */
  readonly signature: string;
}

/** What verification found. `reason` picks Lambda's error type (see auth.ts). */
export type SigV4Result =
  | { readonly ok: true; readonly accessKeyId: string }
  | { readonly ok: false; readonly reason: 'malformed' | 'unknown-key' | 'expired' | 'signature'; readonly message: string };

/** A request as received: method, the raw URL (path and query as sent), headers and the whole body. */
export interface SignedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: HeaderValues;
  readonly body: Uint8Array;
}

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const HEX64 = /^[0-9a-f]{64}$/;
const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const RESERVED_IN_URI = /[!'()*]/g;

/**
 * Parses `AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/lambda/aws4_request,
 * SignedHeaders=host;x-amz-date, Signature=<hex>`. Returns a message naming
 * what is wrong when the header is malformed (AWS's IncompleteSignature).
 */
export function parseAuthorization(header: string): SigV4Authorization | string {
  if (!header.startsWith(`${SIGV4_ALGORITHM} `)) return `Unsupported authorization algorithm: use ${SIGV4_ALGORITHM}`;
  const fields = new Map<string, string>();
  for (const part of header.slice(SIGV4_ALGORITHM.length + 1).split(',')) {
    const p = part.trim();
    const eq = p.indexOf('=');
    if (eq > 0) fields.set(p.slice(0, eq), p.slice(eq + 1));
  }
  const missing = ['Credential', 'SignedHeaders', 'Signature'].filter((k) => !fields.get(k));
  if (missing.length > 0) {
    return missing.map((k) => `Authorization header requires '${k}' parameter.`).join(' ') + ` Authorization=${header}`;
  }
  const credential = fields.get('Credential')!.split('/');
  if (credential.length !== 5 || credential[4] !== 'aws4_request' || credential.some((c) => c === '')) {
    return `Credential should be of the form 'ACCESS_KEY_ID/yyyymmdd/region/service/aws4_request': ${fields.get('Credential')}`;
  }
  const [accessKeyId, date, region, service] = credential;
  if (!/^\d{8}$/.test(date)) return `Invalid date in the credential scope: ${date}; expected yyyymmdd`;
  const signature = fields.get('Signature')!;
  if (!HEX64.test(signature)) return 'Signature should be 64 lower-case hexadecimal digits';
  const signedHeaders = fields.get('SignedHeaders')!.split(';');
  if (!signedHeaders.includes('host')) return "'Host' must be a 'SignedHeader' in the AWS Authorization.";
  return { accessKeyId, date, region, service, scope: `${date}/${region}/${service}/aws4_request`, signedHeaders, signature };
}

/** Percent-encodes everything but RFC 3986's unreserved characters, as the AWS signers do. */
export function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(RESERVED_IN_URI, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The canonical URI of a raw (as sent, percent-encoded) path: normalised, then encoded again; `/` stays. */
export function canonicalUri(rawPath: string): string {
  const segments: string[] = [];
  for (const s of rawPath.split('/')) {
    if (s === '' || s === '.') continue;
    if (s === '..') segments.pop();
    else segments.push(s);
  }
  const trailing = segments.length > 0 && rawPath.endsWith('/') ? '/' : '';
  return uriEncode(`/${segments.join('/')}${trailing}`).replace(/%2F/g, '/');
}

/**
 * The canonical query string of a raw query (without `?`): names and values
 * decoded, re-encoded, sorted by name then value, joined with `&`. Returns
 * null when the query is not valid percent-encoding.
 */
export function canonicalQuery(rawQuery: string): string | null {
  if (rawQuery === '') return '';
  const pairs: [string, string][] = [];
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const rawName = eq < 0 ? part : part.slice(0, eq);
    const rawValue = eq < 0 ? '' : part.slice(eq + 1);
    let name: string;
    let value: string;
    try {
      name = uriEncode(decodeURIComponent(rawName));
      value = uriEncode(decodeURIComponent(rawValue));
    } catch {
      return null;
    }
    pairs.push([name, value]);
  }
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([n, v]) => `${n}=${v}`).join('&');
}

/** The canonical value of one header: repeated values joined with `,`, each trimmed, inner space runs collapsed. */
function canonicalHeaderValue(value: string | readonly string[] | undefined): string {
  const values = value === undefined ? [] : typeof value === 'string' ? [value] : value;
  return values.map((v) => v.replace(/[\r\n]/g, ' ').replace(/[ \t]+/g, ' ').trim()).join(',');
}

/** The canonical request (step 1 of the AWS document). Returns null when the query is not valid percent-encoding. */
export function canonicalRequest(method: string, url: string, headers: HeaderValues, signedHeaders: readonly string[], payloadHash: string): string | null {
  const q = url.indexOf('?');
  const query = canonicalQuery(q < 0 ? '' : url.slice(q + 1));
  if (query === null) return null;
  const lines = signedHeaders.map((h) => `${h}:${canonicalHeaderValue(headers[h])}`);
  return `${method}\n${canonicalUri(q < 0 ? url : url.slice(0, q))}\n${query}\n${lines.join('\n')}\n\n${signedHeaders.join(';')}\n${payloadHash}`;
}

/** The string to sign (step 2). */
export function stringToSign(amzDate: string, scope: string, canonical: string): string {
  return `${SIGV4_ALGORITHM}\n${amzDate}\n${scope}\n${sha256Hex(canonical)}`;
}

/** The signing key (step 3): four chained HMAC-SHA256s. */
export function signingKey(secretAccessKey: string, date: string, region: string, service: string): Buffer {
  let key = hmac(`AWS4${secretAccessKey}`, date);
  key = hmac(key, region);
  key = hmac(key, service);
  return hmac(key, 'aws4_request');
}

/** The signature (step 4): lower-case hex. */
export function signature(key: Buffer, toSign: string): string {
  return createHmac('sha256', key).update(toSign, 'utf8').digest('hex');
}

/**
 * Verifies a SigV4-signed request.
 *
 * @param secretOf the secret access key of an access key id, or undefined when unknown.
 * @param nowMs the server's clock (epoch ms).
 * @returns ok with the access key id; or why it failed: `malformed` (the
 *   header or `X-Amz-Date` is missing or wrong), `unknown-key`, `expired`
 *   (more than MAX_CLOCK_SKEW_MS off), `signature` (it does not match: wrong
 *   secret, or the request changed after signing). Never throws.
 */
export function verifySigV4(req: SignedRequest, secretOf: (accessKeyId: string) => string | undefined, nowMs: number, cache?: SigningKeyCache): SigV4Result {
  const header = canonicalHeaderValue(req.headers.authorization);
  const auth = parseAuthorization(header);
  if (typeof auth === 'string') return { ok: false, reason: 'malformed', message: auth };
  const secret = secretOf(auth.accessKeyId);
  if (secret === undefined) return { ok: false, reason: 'unknown-key', message: 'The security token included in the request is invalid.' };

  const amzDate = canonicalHeaderValue(req.headers['x-amz-date']);
  const m = AMZ_DATE.exec(amzDate);
  if (!m) {
    return { ok: false, reason: 'malformed', message: amzDate === ''
      ? "Authorization header requires existence of a 'X-Amz-Date' header."
      : `Invalid X-Amz-Date: ${amzDate}; expected yyyymmddThhmmssZ` };
  }
  if (amzDate.slice(0, 8) !== auth.date) {
    return { ok: false, reason: 'signature', message: `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${auth.date}' != '${amzDate.slice(0, 8)}', from 'X-Amz-Date'.` };
  }
  const signedAt = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
  if (signedAt < nowMs - MAX_CLOCK_SKEW_MS) {
    return { ok: false, reason: 'expired', message: `Signature expired: ${amzDate} is now earlier than ${basicIso(nowMs - MAX_CLOCK_SKEW_MS)} (${basicIso(nowMs)} - 15 min.)` };
  }
  if (signedAt > nowMs + MAX_CLOCK_SKEW_MS) {
    return { ok: false, reason: 'expired', message: `Signature not yet current: ${amzDate} is still later than ${basicIso(nowMs + MAX_CLOCK_SKEW_MS)} (${basicIso(nowMs)} + 15 min.)` };
  }

  const bodyHash = req.body.length === 0 ? EMPTY_SHA256 : createHash('sha256').update(req.body).digest('hex');
  const claimed = req.headers['x-amz-content-sha256'];
  if (claimed !== undefined && canonicalHeaderValue(claimed) !== bodyHash) {
    // Also refuses UNSIGNED-PAYLOAD and streaming signatures: Lambda's SDK signs the whole body.
    return { ok: false, reason: 'signature', message: "The provided 'x-amz-content-sha256' header does not match what was computed." };
  }
  const canonical = canonicalRequest(req.method, req.url, req.headers, auth.signedHeaders, bodyHash);
  if (canonical === null) return { ok: false, reason: 'malformed', message: 'The query string is not valid percent-encoding' };
  const key = cache ? cache.get(auth, secret) : signingKey(secret, auth.date, auth.region, auth.service);
  const expected = signature(key, stringToSign(amzDate, auth.scope, canonical));
  if (!timingSafeEqual(Buffer.from(expected, 'latin1'), Buffer.from(auth.signature, 'latin1'))) {
    return {
      ok: false, reason: 'signature',
      message: 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
    };
  }
  return { ok: true, accessKeyId: auth.accessKeyId };
}

/**
 * Signing keys by access key, date, region and service: a key is valid for a
 * whole day, so a client's requests cost one HMAC for the signature instead
 * of five. Bounded; the oldest entry leaves first.
 */
export class SigningKeyCache {
  private readonly keys = new Map<string, Buffer>();

  constructor(private readonly max = 64) {}

  get(auth: Pick<SigV4Authorization, 'accessKeyId' | 'scope' | 'date' | 'region' | 'service'>, secret: string): Buffer {
    // The secret is part of the identity: an access key whose secret changed must not reuse the old key.
    const id = `${auth.accessKeyId}\n${auth.scope}\n${secret}`;
    let key = this.keys.get(id);
    if (key === undefined) {
      key = signingKey(secret, auth.date, auth.region, auth.service);
      if (this.keys.size >= this.max) this.keys.delete(this.keys.keys().next().value!);
      this.keys.set(id, key);
    }
    return key;
  }
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

function sha256Hex(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}

/** `yyyymmddThhmmssZ`. */
function basicIso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
}
