/**
 * API Gateway proxy events, built as AWS documents them:
 * - payload format 1.0 (REST APIs, and HTTP APIs set to 1.0):
 *   https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html#api-gateway-simple-proxy-for-lambda-input-format
 * - payload format 2.0 (HTTP APIs):
 *   https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
 *
 * The builders write the event's JSON text directly: the event is built once
 * per request and only ever serialised.
 */
import type { RouteSpec } from '../core/index.js';

/** What the gateway knows of one request before it builds the event. */
export interface IncomingRequest {
  readonly method: string;
  /** Raw path as sent, without the query string (and, for REST, with the stage). */
  readonly rawPath: string;
  /** Raw query string without `?` (may be ''). */
  readonly rawQuery: string;
  /** `req.rawHeaders`: [name, value, name, value, …] in arrival order. */
  readonly rawHeaders: readonly string[];
  readonly body: Buffer;
  readonly sourceIp: string;
  readonly protocol: string;
  readonly requestId: string;
  /** Epoch ms when the request arrived. */
  readonly timeEpoch: number;
}

import { ACCOUNT_ID } from '../core/index.js';
export { ACCOUNT_ID };
/** `requestContext.apiId` of every event. */
export const API_ID = 'nimbus';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Common Log Format time, as in `requestContext.requestTime`: `04/Mar/2020:19:15:17 +0000`. */
export function clfTime(epochMs: number): string {
  const d = new Date(epochMs);
  const p2 = (n: number) => (n < 10 ? '0' + n : String(n));
  return `${p2(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} +0000`;
}

function decode(s: string): string {
  if (s.indexOf('%') < 0) return s;
  try { return decodeURIComponent(s); } catch { return s; }
}

/** Parses a raw query string into ordered [key, value] pairs, percent-decoded. `+` stays `+`, as API Gateway does. */
export function parseQuery(raw: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (raw === '') return out;
  for (const part of raw.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    out.push(eq < 0 ? [decode(part), ''] : [decode(part.slice(0, eq)), decode(part.slice(eq + 1))]);
  }
  return out;
}

/**
 * Whether a body of this content type reaches the function as text in an
 * HTTP API (else it is base64 with `isBase64Encoded: true`). AWS keeps text/*,
 * JSON, XML and JavaScript as text; everything else, a missing Content-Type
 * included, is base64.
 */
export function isTextContentType(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const ct = contentType.split(';', 1)[0].trim().toLowerCase();
  return ct.startsWith('text/') || ct === 'application/json' || ct.endsWith('+json') || ct === 'application/xml'
    || ct.endsWith('+xml') || ct === 'application/javascript';
}

/** Whether `contentType` matches one of `types` (`*\/*`, `image/*`, `image/png`). */
export function matchesMediaType(contentType: string | undefined, types: readonly string[]): boolean {
  if (types.length === 0) return false;
  const ct = (contentType ?? '').split(';', 1)[0].trim().toLowerCase();
  for (const t of types) {
    const want = t.toLowerCase();
    if (want === '*/*') return true;
    if (want.endsWith('/*') ? ct.startsWith(want.slice(0, -1)) : ct === want) return true;
  }
  return false;
}

function headerValue(raw: readonly string[], lowerName: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) if (raw[i].toLowerCase() === lowerName) return raw[i + 1];
  return undefined;
}

/**
 * Payload format 1.0: `headers` keeps the client's casing and the last value of
 * a repeated header, `multiValueHeaders` all of them; the same for the query
 * string. Absent maps and bodies are `null`.
 */
export function buildEventV1(
  req: IncomingRequest,
  route: RouteSpec,
  pathParameters: Record<string, string> | null,
  opts: { stage: string; pathWithoutStage: string; binaryMediaTypes: readonly string[] },
): string {
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  const caseOf = new Map<string, string>();
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i].toLowerCase();
    let name = caseOf.get(lower);
    if (name === undefined) { name = raw[i]; caseOf.set(lower, name); multiValueHeaders[name] = []; }
    headers[name] = raw[i + 1];
    multiValueHeaders[name].push(raw[i + 1]);
  }
  const host = headerValue(raw, 'host') ?? 'localhost';
  const pairs = parseQuery(req.rawQuery);
  let query: Record<string, string> | null = null;
  let multiQuery: Record<string, string[]> | null = null;
  if (pairs.length) {
    query = {};
    multiQuery = {};
    for (const [k, v] of pairs) {
      query[k] = v;
      (multiQuery[k] ??= []).push(v);
    }
  }
  const contentType = headerValue(raw, 'content-type');
  let body: string | null = null;
  let isBase64Encoded = false;
  if (req.body.length > 0) {
    const binary = route.api === 'REST'
      ? matchesMediaType(contentType, opts.binaryMediaTypes)
      : !isTextContentType(contentType);
    isBase64Encoded = binary;
    body = binary ? req.body.toString('base64') : req.body.toString('utf8');
  }
  const userAgent = headerValue(raw, 'user-agent') ?? null;
  const requestContext: Record<string, unknown> = {
    accountId: ACCOUNT_ID,
    apiId: API_ID,
    domainName: host,
    domainPrefix: host.split(/[.:]/)[0],
    extendedRequestId: req.requestId,
    httpMethod: req.method,
    identity: {
      accessKey: null, accountId: null, caller: null, cognitoAuthenticationProvider: null,
      cognitoAuthenticationType: null, cognitoIdentityId: null, cognitoIdentityPoolId: null,
      principalOrgId: null, sourceIp: req.sourceIp, user: null, userAgent, userArn: null,
    },
    path: req.rawPath,
    protocol: req.protocol,
    requestId: req.requestId,
    requestTime: clfTime(req.timeEpoch),
    requestTimeEpoch: req.timeEpoch,
    resourceId: 'nimbus',
    resourcePath: route.path,
    stage: opts.stage,
  };
  const event: Record<string, unknown> = {};
  if (route.api === 'HTTP') {
    event.version = '1.0';
    requestContext.routeKey = routeKey(route);
  }
  Object.assign(event, {
    resource: route.path,
    path: opts.pathWithoutStage,
    httpMethod: req.method,
    headers,
    multiValueHeaders,
    queryStringParameters: query,
    multiValueQueryStringParameters: multiQuery,
    requestContext,
    pathParameters,
    stageVariables: null,
    body,
    isBase64Encoded,
  });
  return JSON.stringify(event);
}

/** `GET /users/{id}`, `ANY /data` or `$default`. */
export function routeKey(route: RouteSpec): string {
  return route.path === '$default' ? '$default' : `${route.method} ${route.path}`;
}

/**
 * Payload format 2.0: header names lower-cased, repeated headers and query
 * keys joined with commas, cookies moved to `cookies`; absent fields omitted.
 */
export function buildEventV2(req: IncomingRequest, route: RouteSpec, pathParameters: Record<string, string> | null): string {
  const headers: Record<string, string> = {};
  let cookies: string[] | undefined;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    const value = raw[i + 1];
    if (name === 'cookie') {
      cookies ??= [];
      for (const c of value.split(';')) { const t = c.trim(); if (t) cookies.push(t); }
      continue;
    }
    const prev = headers[name];
    headers[name] = prev === undefined ? value : `${prev},${value}`;
  }
  const host = headers.host ?? 'localhost';
  const pairs = parseQuery(req.rawQuery);
  let query: Record<string, string> | undefined;
  if (pairs.length) {
    query = {};
    for (const [k, v] of pairs) query[k] = query[k] === undefined ? v : `${query[k]},${v}`;
  }
  const key = routeKey(route);
  const event: Record<string, unknown> = {
    version: '2.0',
    routeKey: key,
    rawPath: req.rawPath,
    rawQueryString: req.rawQuery,
  };
  if (cookies) event.cookies = cookies;
  event.headers = headers;
  if (query) event.queryStringParameters = query;
  event.requestContext = {
    accountId: ACCOUNT_ID,
    apiId: API_ID,
    domainName: host,
    domainPrefix: host.split(/[.:]/)[0],
    http: {
      method: req.method,
      path: req.rawPath,
      protocol: req.protocol,
      sourceIp: req.sourceIp,
      userAgent: headers['user-agent'] ?? '',
    },
    requestId: req.requestId,
    routeKey: key,
    stage: '$default',
    time: clfTime(req.timeEpoch),
    timeEpoch: req.timeEpoch,
  };
  if (req.body.length > 0) {
    const text = isTextContentType(headers['content-type']);
    event.body = text ? req.body.toString('utf8') : req.body.toString('base64');
    event.isBase64Encoded = !text;
  } else {
    event.isBase64Encoded = false;
  }
  if (pathParameters) event.pathParameters = pathParameters;
  return JSON.stringify(event);
}
