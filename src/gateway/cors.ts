/**
 * CORS as an HTTP API configured with a CorsConfiguration does it: the
 * gateway answers preflight OPTIONS requests itself (the function is not
 * invoked, even for an ANY route) and adds the CORS headers to the function's
 * responses, overriding its own.
 * https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-cors.html
 */
import type { CorsConfig } from '../core/index.js';
import type { GatewayResponse } from './responses.js';

/** The origin to allow for `origin`, or null when it is not allowed. */
function allowedOrigin(cors: CorsConfig, origin: string | undefined): string | null {
  if (!origin) return null;
  if (cors.allowOrigins.includes('*')) return cors.allowCredentials ? origin : '*';
  for (const o of cors.allowOrigins) {
    if (o === origin) return origin;
    // API Gateway allows one wildcard subdomain form: https://*.example.com
    const star = o.indexOf('*');
    if (star >= 0 && origin.startsWith(o.slice(0, star)) && origin.endsWith(o.slice(star + 1))) return origin;
  }
  return null;
}

/** True for a preflight request: OPTIONS with both Origin and Access-Control-Request-Method. */
export function isPreflight(method: string, origin: string | undefined, requestMethod: string | undefined): boolean {
  return method === 'OPTIONS' && origin !== undefined && requestMethod !== undefined;
}

/** The gateway's own answer to a preflight (204, no body). */
export function preflightResponse(cors: CorsConfig, origin: string | undefined, requestHeaders: string | undefined): GatewayResponse {
  const headers: string[] = [];
  const allow = allowedOrigin(cors, origin);
  if (allow) {
    headers.push('access-control-allow-origin', allow);
    if (allow !== '*') headers.push('vary', 'Origin');
    const methods = cors.allowMethods.includes('*') ? 'GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS' : cors.allowMethods.join(',');
    headers.push('access-control-allow-methods', methods);
    const allowHeaders = cors.allowHeaders.includes('*') ? (requestHeaders ?? '*') : cors.allowHeaders.join(',');
    if (allowHeaders) headers.push('access-control-allow-headers', allowHeaders);
    if (cors.allowCredentials) headers.push('access-control-allow-credentials', 'true');
    if (cors.maxAge !== undefined) headers.push('access-control-max-age', String(cors.maxAge));
  }
  return { status: 204, headers, body: Buffer.alloc(0) };
}

/** Adds the CORS headers of an actual (non-preflight) request to a response, replacing the function's. */
export function withCorsHeaders(cors: CorsConfig, origin: string | undefined, res: GatewayResponse): GatewayResponse {
  const allow = allowedOrigin(cors, origin);
  if (!allow) return res;
  const headers: string[] = [];
  for (let i = 0; i < res.headers.length; i += 2) {
    if (!res.headers[i].toLowerCase().startsWith('access-control-')) headers.push(res.headers[i], res.headers[i + 1]);
  }
  headers.push('access-control-allow-origin', allow);
  if (allow !== '*') headers.push('vary', 'Origin');
  if (cors.allowCredentials) headers.push('access-control-allow-credentials', 'true');
  if (cors.exposeHeaders.length) headers.push('access-control-expose-headers', cors.exposeHeaders.join(','));
  return { ...res, headers };
}
