/**
 * Route paths, methods and CORS settings of `http` (REST API) and `httpApi`
 * (HTTP API) events, normalised the way the Serverless Framework compiles
 * them to API Gateway.
 */
import type { CorsConfig } from '../core/index.js';

/** Methods API Gateway routes on; `ANY` matches them all. */
export const ROUTE_METHODS: readonly string[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'ANY'];

/** The Serverless Framework's default CORS request headers (REST and HTTP API alike). */
export const DEFAULT_CORS_HEADERS: readonly string[] = [
  'Content-Type',
  'X-Amz-Date',
  'Authorization',
  'X-Api-Key',
  'X-Amz-Security-Token',
  'X-Amz-User-Agent',
  'X-Amzn-Trace-Id',
];

/** What `ANY` stands for in a REST preflight's Access-Control-Allow-Methods (Serverless Framework's expansion). */
export const REST_ANY_METHODS: readonly string[] = ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT'];

/** What `ANY` adds to an HTTP API's filled-in allowMethods, in the Serverless Framework's order. */
export const HTTP_ANY_METHODS: readonly string[] = ['GET', 'POST', 'PUT', 'PATCH', 'OPTIONS', 'HEAD', 'DELETE'];

/** `get`, `Get`, `*`, `any` → `GET`, `GET`, `ANY`, `ANY`; undefined when not a method API Gateway routes on. */
export function normaliseMethod(method: string): string | undefined {
  const upper = method.trim().toUpperCase();
  if (upper === '*') return 'ANY';
  return ROUTE_METHODS.includes(upper) ? upper : undefined;
}

const PARAM_RE = /^\{([A-Za-z0-9_.-]+)(\+)?\}$/;
/** RFC 3986 path characters, without percent-encoding. */
const LITERAL_RE = /^[A-Za-z0-9._~!$&'()*+,;=:@-]+$/;

export type PathResult = { readonly ok: true; readonly path: string } | { readonly ok: false; readonly reason: string };

/**
 * `hello/{name}/` → `/hello/{name}`: adds the leading `/`, strips trailing
 * ones (the root stays `/`), and checks every segment is a literal, a
 * `{param}` or, as the last segment only, a greedy `{param+}`.
 */
export function normaliseRoutePath(input: string): PathResult {
  let path = input.trim();
  if (!path.startsWith('/')) path = `/${path}`;
  while (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  if (path === '/') return { ok: true, path };
  const segments = path.slice(1).split('/');
  const names = new Set<string>();
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i];
    if (seg === '') return { ok: false, reason: 'the path has an empty segment (//)' };
    if (seg.includes('{') || seg.includes('}')) {
      const m = PARAM_RE.exec(seg);
      if (!m) return { ok: false, reason: `segment ${JSON.stringify(seg)}: a path parameter fills a whole segment, {name} or {name+}` };
      if (m[2] && i !== segments.length - 1) return { ok: false, reason: `segment ${JSON.stringify(seg)}: a greedy parameter {name+} must be the last segment` };
      if (names.has(m[1])) return { ok: false, reason: `path parameter {${m[1]}} appears twice` };
      names.add(m[1]);
    } else if (!LITERAL_RE.test(seg)) {
      return { ok: false, reason: `segment ${JSON.stringify(seg)} has a character not allowed in a path (space, ?, #, %, ...)` };
    }
  }
  return { ok: true, path };
}

/** The shape two routes conflict on: parameter names do not matter (`/a/{x}` = `/a/{y}`). */
export function routeShape(path: string): string {
  return path.replace(/\{[^}]*?\+\}/g, '{+}').replace(/\{[^}+]*\}/g, '{}');
}

/** Appends the items of `more` not yet in `into`, keeping order. */
export function union(into: readonly string[], more: readonly string[]): string[] {
  const out = [...into];
  for (const m of more) if (!out.includes(m)) out.push(m);
  return out;
}

/**
 * Merges the CORS settings of REST routes that share a path, as the
 * Serverless Framework does for the path's OPTIONS preflight: methods,
 * headers and origins are united, allowCredentials is on if any route has it,
 * the last maxAge set wins; `ANY` becomes the methods it stands for.
 */
export function mergeRestCors(configs: readonly CorsConfig[]): CorsConfig {
  let allowOrigins: string[] = [];
  let allowMethods: string[] = [];
  let allowHeaders: string[] = [];
  let allowCredentials = false;
  let maxAge: number | undefined;
  for (const c of configs) {
    allowOrigins = union(allowOrigins, c.allowOrigins);
    allowMethods = union(allowMethods, c.allowMethods);
    allowHeaders = union(allowHeaders, c.allowHeaders);
    allowCredentials = allowCredentials || c.allowCredentials;
    if (c.maxAge !== undefined) maxAge = c.maxAge;
  }
  const anyAt = allowMethods.indexOf('ANY');
  if (anyAt >= 0) {
    const before = allowMethods.slice(0, anyAt);
    const after = allowMethods.slice(anyAt + 1);
    allowMethods = union(union(before, REST_ANY_METHODS), after);
  }
  return {
    allowOrigins,
    allowMethods,
    allowHeaders,
    exposeHeaders: [],
    allowCredentials,
    ...(maxAge !== undefined ? { maxAge } : {}),
  };
}
