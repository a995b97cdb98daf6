/**
 * Maps a function's result to the HTTP response API Gateway would send.
 *
 * - Payload 1.0 (REST, and HTTP APIs set to 1.0): the result must be an object
 *   with `statusCode`; `headers` and `multiValueHeaders` are merged;
 *   `isBase64Encoded` bodies are decoded (REST: only when the request's Accept
 *   matches `binaryMediaTypes`). Default content type: REST
 *   `application/json`, HTTP API `text/plain; charset=utf-8`.
 *   https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html#api-gateway-simple-proxy-for-lambda-output-format
 * - Payload 2.0: with `statusCode` the object is read as above (plus `cookies`);
 *   without, any valid JSON is the body of a 200 `application/json` response.
 *   https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html#http-api-develop-integrations-lambda.response
 * - A failed invocation or a malformed result gets API Gateway's own answer:
 *   REST 502 `{"message": "Internal server error"}`, HTTP API 500
 *   `{"message":"Internal Server Error"}`, a timeout 504, marked with
 *   `x-nimbus-error`. A throttled invocation (the function at its concurrency
 *   limit) is a 500 as well, as API Gateway answers Lambda's 429; the header
 *   `x-nimbus-error: NIMBUS_ERR_GATEWAY_THROTTLED` tells it apart.
 */
import type { ApiKind, InvocationResult, PayloadFormatVersion } from '../core/index.js';
import { matchesMediaType } from './events.js';

/** A response ready to write: `headers` is a flat [name, value, …] list. */
export interface GatewayResponse {
  readonly status: number;
  readonly headers: string[];
  readonly body: Buffer;
  /** Why the function's result was not a valid proxy response (for the log), when it was not. */
  readonly malformed?: string;
}

/** The platform-made responses, by error code (DESIGN.md: marked with `x-nimbus-error`). */
export function platformResponse(code: string, status: number, body: string): GatewayResponse {
  const buf = Buffer.from(body);
  return {
    status,
    headers: ['content-type', 'application/json', 'x-nimbus-error', code],
    body: buf,
  };
}

/** An HTTP API's answer when no route matches. */
export const NOT_FOUND = (): GatewayResponse => platformResponse('NIMBUS_ERR_GATEWAY_NOT_FOUND', 404, '{"message":"Not Found"}');

/**
 * A REST API's answer when no resource or method matches.
 * https://repost.aws/knowledge-center/api-gateway-authentication-token-errors
 */
export const MISSING_TOKEN = (): GatewayResponse => platformResponse('NIMBUS_ERR_GATEWAY_MISSING_TOKEN', 403, '{"message":"Missing Authentication Token"}');

/** 413 as API Gateway words it: REST "Request Too Long", HTTP API "Request Entity Too Large". */
export const TOO_LARGE = (api: ApiKind): GatewayResponse => platformResponse(
  'NIMBUS_ERR_GATEWAY_PAYLOAD_TOO_LARGE', 413,
  api === 'REST' ? '{"message":"Request Too Long"}' : '{"message":"Request Entity Too Large"}',
);

function functionError(api: ApiKind, code = 'NIMBUS_ERR_GATEWAY_FUNCTION_ERROR'): GatewayResponse {
  return api === 'REST'
    ? platformResponse(code, 502, '{"message": "Internal server error"}')
    : platformResponse(code, 500, '{"message":"Internal Server Error"}');
}

/** API Gateway's answer to a result it cannot read; `reason` goes to the log. */
function malformed(api: ApiKind, reason: string): GatewayResponse {
  return { ...functionError(api, 'NIMBUS_ERR_GATEWAY_MALFORMED_RESPONSE'), malformed: reason };
}

interface MapOptions {
  readonly api: ApiKind;
  readonly version: PayloadFormatVersion;
  /** REST only: the API's binary media types. */
  readonly binaryMediaTypes: readonly string[];
  /** REST only: the request's Accept header. */
  readonly accept: string | undefined;
}

/** Maps one invocation result to a response. Never throws. */
export function mapResult(result: InvocationResult, opts: MapOptions): GatewayResponse {
  switch (result.outcome) {
    case 'ok': break;
    // A function that times out has failed like any other (Lambda answers Unhandled);
    // 504 is for API Gateway's own integration timeout (see server.ts).
    case 'timeout': return functionError(opts.api, 'NIMBUS_ERR_GATEWAY_FUNCTION_TIMEOUT');
    // API Gateway answers a throttled Lambda (its 429) with a 500, keeping 429 for its own throttling.
    case 'throttled': return opts.api === 'REST'
      ? platformResponse('NIMBUS_ERR_GATEWAY_THROTTLED', 500, '{"message": "Internal server error"}')
      : platformResponse('NIMBUS_ERR_GATEWAY_THROTTLED', 500, '{"message":"Internal Server Error"}');
    default: return functionError(opts.api);
  }
  let value: unknown;
  try { value = JSON.parse(result.payload); } catch { return malformed(opts.api, 'the result is not JSON'); }

  const structured = value !== null && typeof value === 'object' && !Array.isArray(value)
    && (opts.version === '1.0' || 'statusCode' in value);
  if (!structured) {
    if (opts.version === '1.0') return malformed(opts.api, `the result must be an object with statusCode, got ${describe(value)}`);
    // Payload 2.0 inference: any JSON without statusCode is the body of a 200.
    const body = typeof value === 'string' ? value : result.payload;
    return { status: 200, headers: ['content-type', 'application/json'], body: Buffer.from(body) };
  }
  const r = value as Record<string, unknown>;
  const status = r.statusCode === undefined && opts.version === '1.0' ? NaN : Number(r.statusCode);
  if (!Number.isInteger(status) || status < 200 || status > 599) {
    return malformed(opts.api, r.statusCode === undefined ? 'statusCode is missing' : `statusCode must be a whole number from 200 to 599, got ${JSON.stringify(r.statusCode)}`);
  }

  const headers: string[] = [];
  let hasContentType = false;
  const add = (name: string, v: unknown) => {
    if (v === null || v === undefined) return;
    if (typeof v === 'object') return;
    headers.push(name, String(v));
    if (!hasContentType && name.toLowerCase() === 'content-type') hasContentType = true;
  };
  const single = r.headers;
  const multi = opts.version === '1.0' ? r.multiValueHeaders : undefined;
  if (single !== undefined && single !== null && typeof single !== 'object') return malformed(opts.api, `headers must be an object, got ${describe(single)}`);
  if (multi !== undefined && multi !== null && typeof multi !== 'object') return malformed(opts.api, `multiValueHeaders must be an object, got ${describe(multi)}`);
  // "If the same key-value pair is specified in both, only the values from
  // multiValueHeaders will appear in the merged list" (the 1.0 output format doc).
  let inMulti: Set<string> | null = null;
  if (multi) {
    inMulti = new Set();
    for (const [k, vs] of Object.entries(multi as Record<string, unknown>)) {
      for (const v of Array.isArray(vs) ? vs : [vs]) inMulti.add(`${k.toLowerCase()}\n${String(v)}`);
    }
  }
  if (single) {
    for (const [k, v] of Object.entries(single)) {
      if (!inMulti || !inMulti.has(`${k.toLowerCase()}\n${String(v)}`)) add(k, v);
    }
  }
  if (multi) {
    for (const [k, vs] of Object.entries(multi as Record<string, unknown>)) {
      if (Array.isArray(vs)) for (const v of vs) add(k, v); else add(k, vs);
    }
  }
  if (opts.version === '2.0' && Array.isArray(r.cookies)) for (const c of r.cookies) add('set-cookie', c);

  let body: Buffer;
  const raw = r.body;
  if (raw === undefined || raw === null) body = Buffer.alloc(0);
  else if (typeof raw !== 'string') {
    if (opts.api === 'REST') return malformed(opts.api, `body must be a string (use JSON.stringify), got ${describe(raw)}`);
    body = Buffer.from(JSON.stringify(raw));
  } else if (r.isBase64Encoded === true && decodesBase64(opts, headers)) body = Buffer.from(raw, 'base64');
  else body = Buffer.from(raw);

  if (!hasContentType) headers.push('content-type', opts.api === 'REST' ? 'application/json' : 'text/plain; charset=utf-8');
  return { status, headers, body };
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)?.slice(0, 40)}`;
}

/** HTTP APIs always decode; REST decodes when the Accept header matches a binary media type. */
function decodesBase64(opts: MapOptions, _headers: string[]): boolean {
  if (opts.api === 'HTTP') return true;
  if (opts.binaryMediaTypes.length === 0) return false;
  const accept = opts.accept ?? '*/*';
  const first = accept.split(',', 1)[0];
  return matchesMediaType(first, opts.binaryMediaTypes) || opts.binaryMediaTypes.includes('*/*');
}
