/**
 * The public HTTP server: routes requests of a REST API (served under
 * `/<stage>`) and an HTTP API (served at the root), builds the proxy event,
 * invokes the function and maps its result back.
 *
 * Hot path: routes are compiled once per config (`Router`), the event JSON
 * is built in one pass, and a request's body is read with a 6 MB cap.
 */
import http from 'node:http';
import { closeGracefully, listen, newRequestId, type ApiKind, type CorsConfig, type InvocationResult, type RouteSpec, type ServiceSpec } from '../core/index.js';
import { Router, type RouteMatch } from './router.js';
import { buildEventV1, buildEventV2, type IncomingRequest } from './events.js';
import { mapResult, MISSING_TOKEN, NOT_FOUND, platformResponse, TOO_LARGE, type GatewayResponse } from './responses.js';
import { isPreflight, preflightResponse, withCorsHeaders } from './cors.js';

/** Largest request payload of a synchronous invocation: 6 MB, as Lambda. https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html */
export const MAX_SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024;
/** How much of an oversized body is read (and dropped) before answering 413; more cuts the connection. */
const DISCARD_LIMIT_BYTES = 64 * 1024 * 1024;

/** Runs one invocation of the function with key `functionKey`. */
export type Invoker = (functionKey: string, event: string) => Promise<InvocationResult>;

/** Settings of the gateway. */
export interface GatewayOptions {
  /** Receives problems of a function's responses (e.g. a malformed proxy response), for the dev log. */
  readonly log?: (functionKey: string, text: string) => void;
  /** API Gateway's integration timeouts in ms: REST 29,000, HTTP API 30,000 (tests shorten them). */
  readonly integrationTimeoutMs?: { readonly REST: number; readonly HTTP: number };
}

/**
 * API Gateway stops waiting for an integration after 29 s (REST) or 30 s (HTTP API) and answers 504.
 * https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html
 */
export const INTEGRATION_TIMEOUT_MS = { REST: 29_000, HTTP: 30_000 } as const;

/** The routing state of one config; swapped whole on reload. */
interface RoutingTable {
  readonly stage: string;
  readonly stagePrefix: string;
  readonly rest: Router;
  readonly http: Router;
  readonly httpApiCors?: CorsConfig;
  readonly binaryMediaTypes: readonly string[];
}

/** What the gateway needs of a service: its stage, routes and API settings. */
export type GatewayService = Pick<ServiceSpec, 'stage' | 'routes' | 'httpApiCors' | 'binaryMediaTypes'>;

function compile(spec: GatewayService): RoutingTable {
  return {
    stage: spec.stage,
    stagePrefix: `/${spec.stage}`,
    rest: new Router(spec.routes.filter((r) => r.api === 'REST')),
    http: new Router(spec.routes.filter((r) => r.api === 'HTTP')),
    httpApiCors: spec.httpApiCors,
    binaryMediaTypes: spec.binaryMediaTypes,
  };
}

/**
 * The gateway: call `listen()`, `reload()` on a new config, `close()` to stop.
 *
 * It serves one service (`nimbus dev`) or several (`nimbus server`): their
 * routes share the port, a specific route of any service wins over a
 * `$default` one, and services are tried in the order given (deploys refuse
 * routes that would clash).
 */
export class Gateway {
  private tables: readonly RoutingTable[];
  private readonly server: http.Server;

  constructor(spec: GatewayService | readonly GatewayService[], private readonly invoke: Invoker, private readonly options: GatewayOptions = {}) {
    this.tables = (Array.isArray(spec) ? spec : [spec as GatewayService]).map(compile);
    this.server = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
      try {
        this.handle(req, res);
      } catch (e) {
        // A bug of ours (or a bad setting that slipped through) must cost one request, never the server.
        this.options.log?.('', `Nimbus gateway error (please report it): ${(e as Error)?.stack ?? String(e)}\n`);
        if (!res.headersSent) this.send(res, platformResponse('NIMBUS_ERR_GATEWAY_INTERNAL', 500, '{"message":"Internal Server Error"}'), req.method ?? 'GET');
        else res.destroy();
      }
    });
  }

  /** Starts listening; resolves with the bound port. Rejects on EADDRINUSE and the like. */
  listen(port: number, host = '127.0.0.1'): Promise<number> {
    return listen(this.server, port, host);
  }

  /** New routes take effect for the next request. */
  reload(spec: GatewayService | readonly GatewayService[]): void {
    this.tables = (Array.isArray(spec) ? spec : [spec as GatewayService]).map(compile);
  }

  /**
   * Stops accepting connections, closes idle ones, lets requests in flight
   * finish for up to `deadlineMs` (default 10 s), then cuts what is left.
   */
  close(deadlineMs = 10_000): Promise<void> {
    return closeGracefully(this.server, deadlineMs);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const timeEpoch = Date.now();
    const tables = this.tables;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const rawPath = q < 0 ? url : url.slice(0, q);
    const rawQuery = q < 0 ? '' : url.slice(q + 1);
    const method = req.method ?? 'GET';

    // REST API routes live under /<stage>; the HTTP API at the root.
    const origin = req.headers.origin;
    const requestMethod = req.headers['access-control-request-method'] as string | undefined;
    const preflight = isPreflight(method, origin, requestMethod);
    let match: RouteMatch | null = null;
    let table = tables[0];
    let pathWithoutStage = rawPath;
    let restResource = false;
    for (const t of tables) {
      if (!t.rest.routes.length || !(rawPath === t.stagePrefix || rawPath.startsWith(t.stagePrefix + '/'))) continue;
      const path = rawPath.slice(t.stagePrefix.length) || '/';
      // A REST route with `cors:` gets an OPTIONS answer of the gateway's own (Serverless Framework's mock integration).
      const cors = preflight ? t.rest.match(requestMethod!.toUpperCase(), path)?.route.cors : undefined;
      if (cors) {
        drain(req);
        this.send(res, preflightResponse(cors, origin, req.headers['access-control-request-headers'] as string | undefined), method);
        return;
      }
      const m = t.rest.match(method, path);
      // Across services, as within one API: the most specific route wins.
      if (m && (!match || moreSpecific(m.route.path, match.route.path))) { match = m; table = t; pathWithoutStage = path; }
      if (m && tables.length === 1) break;
      restResource ||= t.rest.hasPath(path);
    }
    // The path is a REST resource: the REST API answers, even without a route for this method
    // (the HTTP API is another API, its CORS settings do not apply here).
    if (!match && restResource) {
      drain(req);
      this.send(res, MISSING_TOKEN(), method);
      return;
    }
    if (!match) {
      // HTTP APIs hand the function the percent-decoded path (rawPath, and `path` in payload 1.0)
      // and route on it; REST APIs keep it encoded. Live captures: hotsock/voker vokerhttp/testdata/ingress-paths.json
      pathWithoutStage = decodePath(rawPath);
      if (preflight) {
        const t = tables.length === 1 ? tables[0] : tables.find((x) => x.httpApiCors && x.http.hasPath(pathWithoutStage));
        if (t?.httpApiCors) {
          drain(req);
          this.send(res, preflightResponse(t.httpApiCors, origin, req.headers['access-control-request-headers'] as string | undefined), method);
          return;
        }
      }
      for (const t of tables) {
        const m = t.http.match(method, pathWithoutStage);
        if (!m) continue;
        if (tables.length === 1) { match = m; table = t; break; }
        if (!match || moreSpecific(m.route.path, match.route.path)) { match = m; table = t; }
      }
    }
    if (!match) {
      drain(req);
      // A REST API answers an unknown resource or method with 403 "Missing Authentication Token".
      const underStage = tables.some((t) => t.rest.routes.length > 0 && (rawPath === t.stagePrefix || rawPath.startsWith(t.stagePrefix + '/')));
      this.send(res, underStage ? MISSING_TOKEN() : NOT_FOUND(), method);
      return;
    }
    const route = match.route;

    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_SYNC_PAYLOAD_BYTES) {
      this.reject(req, res, TOO_LARGE(route.api), method);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (c: Buffer) => {
      if (tooLarge) return;
      size += c.length;
      if (size > MAX_SYNC_PAYLOAD_BYTES) { tooLarge = true; this.reject(req, res, TOO_LARGE(route.api), method); return; }
      chunks.push(c);
    });
    req.on('end', () => {
      if (tooLarge) return;
      const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
      const incoming: IncomingRequest = {
        method, rawPath: match!.route.api === 'HTTP' ? pathWithoutStage : rawPath, rawQuery, rawHeaders: req.rawHeaders, body,
        sourceIp: normaliseIp(req.socket.remoteAddress), protocol: `HTTP/${req.httpVersion}`,
        requestId: newRequestId(), timeEpoch,
      };
      this.dispatch(incoming, match!, pathWithoutStage, table, req, res).catch((e: unknown) => {
        // A bug of ours must cost one request, never the server.
        this.options.log?.(match!.route.functionKey, `Nimbus gateway error (please report it): ${(e as Error)?.stack ?? String(e)}\n`);
        if (!res.headersSent) this.send(res, platformResponse('NIMBUS_ERR_GATEWAY_INTERNAL', 500, '{"message":"Internal Server Error"}'), method);
        else res.destroy();
      });
    });
  }

  private async dispatch(
    incoming: IncomingRequest, match: RouteMatch, pathWithoutStage: string, table: RoutingTable,
    req: http.IncomingMessage, res: http.ServerResponse,
  ): Promise<void> {
    const route: RouteSpec = match.route;
    const event = route.payloadFormatVersion === '2.0'
      ? buildEventV2(incoming, route, match.pathParameters)
      : buildEventV1(incoming, route, match.pathParameters, { stage: route.api === 'REST' ? table.stage : '$default', pathWithoutStage, binaryMediaTypes: table.binaryMediaTypes });
    if (Buffer.byteLength(event) > MAX_SYNC_PAYLOAD_BYTES) {
      this.send(res, TOO_LARGE(route.api), incoming.method);
      return;
    }
    const limitMs = (this.options.integrationTimeoutMs ?? INTEGRATION_TIMEOUT_MS)[route.api];
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([
      this.invoke(route.functionKey, event),
      new Promise<null>((resolve) => { timer = setTimeout(() => resolve(null), limitMs); }),
    ]);
    clearTimeout(timer);
    if (result === null) {
      this.options.log?.(route.functionKey, `API Gateway integration timeout: no answer within ${limitMs / 1000} s; the client got 504 (the invocation goes on)\n`);
      this.send(res, platformResponse('NIMBUS_ERR_GATEWAY_TIMEOUT', 504, '{"message": "Endpoint request timed out"}'), incoming.method);
      return;
    }
    let response = mapResult(result, {
      api: route.api, version: route.payloadFormatVersion, binaryMediaTypes: table.binaryMediaTypes, accept: req.headers.accept,
    });
    if (response.malformed) {
      this.options.log?.(route.functionKey, `Execution failed due to configuration error: Malformed Lambda proxy response: ${response.malformed}\n`);
    }
    if (route.api === 'HTTP' && table.httpApiCors) response = withCorsHeaders(table.httpApiCors, req.headers.origin, response);
    response.headers.push(route.api === 'REST' ? 'x-amzn-requestid' : 'apigw-requestid', incoming.requestId);
    this.send(res, response, incoming.method, route.api);
  }

  /**
   * Answers a request whose body is over the limit. The rest of the body is
   * read and thrown away first (up to DISCARD_LIMIT_BYTES), because most
   * clients only read the answer once they have sent everything; past that
   * the connection is cut.
   */
  private reject(req: http.IncomingMessage, res: http.ServerResponse, response: GatewayResponse, method: string): void {
    response.headers.push('connection', 'close');
    let discarded = 0;
    const answer = () => this.send(res, response, method);
    req.removeAllListeners('data');
    req.on('data', (c: Buffer) => {
      discarded += c.length;
      if (discarded > DISCARD_LIMIT_BYTES) { answer(); res.on('finish', () => req.socket.destroy()); }
    });
    req.on('end', answer);
    req.resume();
  }

  private send(res: http.ServerResponse, r: GatewayResponse, method: string, api: ApiKind = 'REST'): void {
    if (res.headersSent) return;
    const headers: string[] = [];
    for (let i = 0; i < r.headers.length; i += 2) {
      const lower = r.headers[i].toLowerCase();
      if (lower === 'content-length' || lower === 'transfer-encoding') continue;
      headers.push(r.headers[i], r.headers[i + 1]);
    }
    // 1xx are refused as malformed before this; 204 and 304 carry no body and no Content-Length (RFC 9110 §8.6).
    const bodiless = r.status === 204 || r.status === 304;
    if (!bodiless) headers.push('content-length', String(r.body.length));
    try {
      res.writeHead(r.status, headers);
    } catch (e) {
      // A header name or value Node refuses (a control character, a character over U+00FF): malformed, as API Gateway says.
      const reason = `a header is not valid HTTP: ${(e as Error).message}`;
      this.options.log?.('', `Execution failed due to configuration error: Malformed Lambda proxy response: ${reason}\n`);
      const fallback = api === 'REST'
        ? platformResponse('NIMBUS_ERR_GATEWAY_MALFORMED_RESPONSE', 502, '{"message": "Internal server error"}')
        : platformResponse('NIMBUS_ERR_GATEWAY_MALFORMED_RESPONSE', 500, '{"message":"Internal Server Error"}');
      res.writeHead(fallback.status, [...fallback.headers, 'content-length', String(fallback.body.length)]);
      res.end(method === 'HEAD' ? undefined : fallback.body);
      return;
    }
    if (method === 'HEAD' || bodiless) res.end(); else res.end(r.body);
  }
}

/**
 * True when route path `a` is more specific than `b`, segment by segment as
 * API Gateway ranks them: a literal over a `{param}` over a greedy `{proxy+}`;
 * `$default` last.
 */
export function moreSpecific(a: string, b: string): boolean {
  if (a === b) return false;
  if (b === '$default') return a !== '$default';
  if (a === '$default') return false;
  const rank = (seg: string) => (seg.endsWith('+}') ? 1 : seg.startsWith('{') ? 2 : 3);
  const sa = a.split('/');
  const sb = b.split('/');
  for (let i = 0; i < Math.min(sa.length, sb.length); i++) {
    const d = rank(sa[i]) - rank(sb[i]);
    if (d !== 0) return d > 0;
  }
  return sa.length > sb.length;
}

function drain(req: http.IncomingMessage): void {
  req.resume();
}

function decodePath(path: string): string {
  if (path.indexOf('%') < 0) return path;
  try { return decodeURIComponent(path); } catch { return path; }
}

function normaliseIp(ip: string | undefined): string {
  if (!ip) return '127.0.0.1';
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}
