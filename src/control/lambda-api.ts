/**
 * The control port: Lambda's Invoke API, Lambda's management API (with
 * `nimbus server`), Nimbus's own `/_/` endpoints, and the health check.
 *
 * `POST /2015-03-31/functions/{FunctionName}/invocations`, as documented in
 * https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html :
 * - `X-Amz-Invocation-Type`: `RequestResponse` (default) answers 200 with the
 *   result; a function error still answers 200, with `X-Amz-Function-Error:
 *   Unhandled` and the error document as the body. `Event` answers 202 at once.
 *   `DryRun` answers 204.
 * - `X-Amz-Log-Type: Tail` adds the last 4 KB of the invocation's log, base64,
 *   in `X-Amz-Log-Result`.
 * - `X-Amz-Executed-Version` names the version that ran (an alias may route to two).
 * - Errors use Lambda's shape: the `x-amzn-ErrorType` header and a JSON body
 *   `{"Type": "User", "Message": …}` (404 ResourceNotFoundException, 413
 *   RequestTooLargeException, 400 InvalidRequestContentException, 429
 *   TooManyRequestsException).
 * - `FunctionName` may be a name, a `name:qualifier`, a partial ARN
 *   (`123456789012:function:name`) or a full ARN; `?Qualifier=` works too.
 *
 * The other `/2015-03-31/functions…` operations (create, update, publish,
 * aliases, …) are served by `backend.lambda` (lambda-rest.ts) when given.
 *
 * `GET /_/health` answers 200 once every function and route is loaded; it is
 * the one path that never needs credentials. Other `/_/` paths go to
 * `backend.routes`; `GET /_/metrics[?function=NAME]` falls back to
 * `backend.metrics` (counts, p50/p95/p99, throughput, GB-seconds, cost).
 *
 * With `backend.auth`, every other request is authenticated (auth.ts) after
 * its body is read, since an AWS signature covers the body.
 */
import http from 'node:http';
import { closeGracefully, listen, type InvocationResult } from '../core/index.js';
import type { Authenticator, Principal } from './auth.js';
import { handleMessagingApi, isMessagingRequest, type MessagingBackend } from './messaging-api.js';
import { functionNameOf, MAX_CODE_REQUEST_BYTES, type LambdaApiResponse } from './lambda-rest.js';

export { functionNameOf } from './lambda-rest.js';

/** Largest synchronous request payload: 6 MB (6291456 bytes). */
export const MAX_INVOKE_PAYLOAD_BYTES = 6 * 1024 * 1024;
/** Largest asynchronous (`Event`) payload: 1 MB since 2025 (256 KB before). */
export const MAX_ASYNC_PAYLOAD_BYTES = 1024 * 1024;
/** Largest body of a `/_/` request (they carry code packages): 70 MB. */
export const MAX_NIMBUS_API_BYTES = 70 * 1024 * 1024;
/** Largest body of the other management requests (JSON configuration). */
const MAX_JSON_BYTES = 6 * 1024 * 1024;
const LOG_TAIL_BYTES = 4096;
const LATEST = '$LATEST';

/**
 * The result of an invocation, plus the version that ran (sent as
 * `X-Amz-Executed-Version`; `$LATEST` when absent).
 */
export type ControlInvocationResult = InvocationResult & { readonly executedVersion?: string };

/** Lambda's management operations, as lambda-rest.ts's LambdaManagementApi serves them. */
export interface LambdaManagementHandler {
  /** Resolves null when `method path` is not a management operation. */
  handle(method: string, path: string, query: URLSearchParams, body: Buffer): Promise<LambdaApiResponse | null>;
}

/**
 * A handler of Nimbus's own `/_/…` endpoints (deploy, services, logs, …),
 * called after authentication with the whole body, the raw path and the
 * query. Resolves true when it answered, false to let the server answer 404
 * (or serve `/_/metrics` from `metrics`).
 */
export type ControlRoutes = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer, path: string, query: URLSearchParams) => Promise<boolean>;

/**
 * What the control server needs from the platform. `nimbus dev` gives the
 * first six; `nimbus server` adds `auth`, `lambda` and `routes`.
 */
export interface ControlBackend {
  /** True once every function and route is loaded. */
  ready(): boolean;
  /**
   * The ARN of the function found by name (or key), at `qualifier` (`$LATEST`,
   * a version or an alias; undefined: unqualified); null when the function or
   * the qualifier does not exist. A `resolve` declared with one parameter
   * cannot see qualifiers: the server then serves `$LATEST` only, as
   * `nimbus dev` does, and any other qualifier is 404.
   */
  resolve(name: string, qualifier?: string): { arn: string } | null;
  /** Runs one synchronous invocation of the function found by `name`, at `qualifier` (an alias picks its version, weighted). */
  invoke(name: string, payload: string, qualifier?: string): Promise<ControlInvocationResult>;
  /** Queues one asynchronous invocation; resolves once it is accepted. */
  invokeAsync(name: string, payload: string, qualifier?: string): Promise<string | void>;
  /** The function ARN a missing function would have, for the error message. */
  arnFor(name: string): string;
  /** Metrics of one function (or all when name is undefined); null when the function is unknown. */
  metrics?(name: string | undefined): unknown | null;
  /** When set, every request but `/_/health` needs credentials (the admin token or an AWS signature). */
  auth?: Authenticator;
  /** When set, Lambda's management operations are served; else they answer 404 UnknownOperationException. */
  lambda?: LambdaManagementHandler;
  /** Nimbus's own `/_/` endpoints (see ControlRoutes). */
  routes?: ControlRoutes;
  /** The SQS and SNS APIs functions send messages with (messaging-api.ts). */
  messaging?: MessagingBackend;
  /** Access keys allowed to call the SQS and SNS APIs only (the key functions get). */
  messagingOnlyKeys?: ReadonlySet<string>;
}

const INVOKE_PATH = /^\/2015-03-31\/functions\/([^/]+)\/invocations\/?$/;
const CREATE_FUNCTION_PATH = /^\/2015-03-31\/functions\/?$/;
const UPDATE_CODE_PATH = /^\/2015-03-31\/functions\/[^/]+\/code\/?$/;
const EMPTY = Buffer.alloc(0);

/** The control server (binds to loopback by default). */
export class ControlServer {
  private readonly server: http.Server;
  /** False for a backend whose resolve cannot see qualifiers (see ControlBackend.resolve). */
  private readonly qualifiers: boolean;

  constructor(private readonly backend: ControlBackend) {
    this.qualifiers = backend.resolve.length >= 2;
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        // A bug of ours must cost one request, never the server.
        process.stderr.write(`Nimbus control API error (please report it): ${(e as Error)?.stack ?? String(e)}\n`);
        if (!res.headersSent) awsError(res, 500, 'ServiceException', 'Nimbus failed while handling the request');
        else res.destroy();
      });
    });
  }

  listen(port: number, host = '127.0.0.1'): Promise<number> {
    return listen(this.server, port, host);
  }

  /** Stops accepting; invocations in flight get up to `deadlineMs` (default 10 s) to finish. */
  close(deadlineMs = 10_000): Promise<void> {
    return closeGracefully(this.server, deadlineMs);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const query = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
    const method = req.method ?? 'GET';
    if (path === '/_/health') {
      const ok = this.backend.ready();
      json(res, ok ? 200 : 503, { status: ok ? 'ok' : 'starting' });
      req.resume();
      return;
    }
    const auth = this.backend.auth;
    // Without any credentials there is nothing to check the body against: refuse before reading it.
    // Without credentials, or with a bearer token (which does not sign the body), decide before reading the body.
    if (auth && (req.headers.authorization === undefined || /^bearer /i.test(req.headers.authorization))) {
      const early = auth.authenticate(method, url, req.headersDistinct, EMPTY);
      if (!early.ok) {
        req.resume();
        refuse(res, early);
        return;
      }
    }

    const invoke = INVOKE_PATH.exec(path);
    const invocationType = String(req.headers['x-amz-invocation-type'] ?? 'RequestResponse');
    const limit = bodyLimit(method, path, invoke !== null, invocationType);
    const body = await readBody(req, limit.bytes);
    if (body === null) {
      awsError(res, 413, limit.errorType, `Request must be smaller than ${limit.bytes} bytes for the ${limit.operation} operation`);
      return;
    }
    let principal: Principal | undefined;
    if (auth) {
      const decision = auth.authenticate(method, url, req.headersDistinct, body);
      if (!decision.ok) { refuse(res, decision); return; }
      principal = decision.principal;
    }
    if (this.backend.messaging && isMessagingRequest(req, path)) {
      await handleMessagingApi(this.backend.messaging, req, res, body);
      return;
    }
    // The key functions sign with may send to queues and topics, nothing else.
    if (principal?.kind === 'access-key' && this.backend.messagingOnlyKeys?.has(principal.accessKeyId)) {
      awsError(res, 403, 'AccessDeniedException', `The access key ${principal.accessKeyId} is the one functions send messages with: it may call the SQS and SNS APIs only`);
      return;
    }

    if (path.startsWith('/_/') || path === '/metrics') {
      if (this.backend.routes && await this.backend.routes(req, res, body, path, query)) return;
      if (path === '/_/metrics' && this.backend.metrics) {
        const fn = query.get('function') ?? undefined;
        const m = this.backend.metrics(fn);
        if (m === null) awsError(res, 404, 'ResourceNotFoundException', `Function not found: ${this.backend.arnFor(fn ?? '')}`);
        else json(res, 200, m);
        return;
      }
      awsError(res, 404, 'UnknownOperationException', 'Unknown operation');
      return;
    }
    if (invoke) {
      await this.invoke(req, res, method, invoke[1], query, invocationType, body);
      return;
    }
    const answer = this.backend.lambda ? await this.backend.lambda.handle(method, path, query, body) : null;
    if (answer === null) {
      awsError(res, 404, 'UnknownOperationException', 'Unknown operation');
      return;
    }
    if (answer.error) awsError(res, answer.status, answer.error.type, answer.error.message);
    else if (answer.body === undefined) { res.writeHead(answer.status, { 'x-amzn-requestid': cryptoId() }); res.end(); }
    else json(res, answer.status, answer.body);
  }

  /** Lambda's Invoke. */
  private async invoke(req: http.IncomingMessage, res: http.ServerResponse, method: string, rawName: string, query: URLSearchParams, type: string, body: Buffer): Promise<void> {
    if (method !== 'POST') {
      awsError(res, 405, 'MethodNotAllowedException', `Method ${method} is not allowed on the Invoke API; use POST`);
      return;
    }
    const parsed = functionNameOf(rawName);
    if (!parsed || parsed.name === '') {
      awsError(res, 400, 'InvalidParameterValueException', `Invalid FunctionName: ${rawName}`);
      return;
    }
    const name = parsed.name;
    const fromQuery = query.get('Qualifier') ?? undefined;
    if (fromQuery !== undefined && parsed.qualifier !== undefined && fromQuery !== parsed.qualifier) {
      awsError(res, 400, 'InvalidParameterValueException', 'The derived qualifier from the function name does not match the specified qualifier.');
      return;
    }
    const qualifier = parsed.qualifier ?? fromQuery;
    if (type !== 'RequestResponse' && type !== 'Event' && type !== 'DryRun') {
      awsError(res, 400, 'InvalidParameterValueException', `Invalid X-Amz-Invocation-Type: ${type}; use RequestResponse, Event or DryRun`);
      return;
    }
    // A backend without versions (nimbus dev) serves $LATEST only: another version or alias is not found, as on Lambda.
    const found = this.qualifiers || qualifier === undefined || qualifier === LATEST ? this.backend.resolve(name, qualifier) : null;
    if (!found) {
      awsError(res, 404, 'ResourceNotFoundException', `Function not found: ${this.backend.arnFor(name)}${qualifier !== undefined ? `:${qualifier}` : ''}`);
      return;
    }
    const payload = body.length === 0 ? '{}' : body.toString('utf8');
    try {
      JSON.parse(payload);
    } catch (e) {
      awsError(res, 400, 'InvalidRequestContentException', `Could not parse request body into json: ${(e as Error).message}`);
      return;
    }
    if (type === 'DryRun') { res.writeHead(204, { 'x-amzn-requestid': cryptoId() }); res.end(); return; }
    if (type === 'Event') {
      // Accepted means stored (the server's queue); the request id is the one every attempt will carry.
      const requestId = await this.backend.invokeAsync(name, payload, qualifier);
      res.writeHead(202, { 'content-length': '0', 'x-amzn-requestid': requestId || cryptoId() });
      res.end();
      return;
    }
    const result = await this.backend.invoke(name, payload, qualifier);
    if (result.outcome === 'throttled') {
      awsError(res, 429, 'TooManyRequestsException', 'Rate Exceeded.', { Reason: 'ReservedFunctionConcurrentInvocationLimitExceeded' });
      return;
    }
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'x-amz-executed-version': result.executedVersion ?? LATEST,
      'x-amzn-requestid': result.requestId,
    };
    if (result.outcome !== 'ok') headers['x-amz-function-error'] = 'Unhandled';
    if (String(req.headers['x-amz-log-type'] ?? '').toLowerCase() === 'tail') {
      const logBytes = Buffer.from(result.logs);
      headers['x-amz-log-result'] = logBytes.subarray(Math.max(0, logBytes.length - LOG_TAIL_BYTES)).toString('base64');
    }
    const out = Buffer.from(result.payload);
    headers['content-length'] = String(out.length);
    res.writeHead(200, headers);
    res.end(out);
  }
}

/** How much body a request may have, decided from its method, path and headers alone. */
function bodyLimit(method: string, path: string, isInvoke: boolean, invocationType: string): { bytes: number; operation: string; errorType: string } {
  if (isInvoke) {
    return { bytes: invocationType === 'Event' ? MAX_ASYNC_PAYLOAD_BYTES : MAX_INVOKE_PAYLOAD_BYTES, operation: 'InvokeFunction', errorType: 'RequestTooLargeException' };
  }
  if (method === 'POST' && CREATE_FUNCTION_PATH.test(path)) return { bytes: MAX_CODE_REQUEST_BYTES, operation: 'CreateFunction', errorType: 'RequestEntityTooLargeException' };
  if (method === 'PUT' && UPDATE_CODE_PATH.test(path)) return { bytes: MAX_CODE_REQUEST_BYTES, operation: 'UpdateFunctionCode', errorType: 'RequestEntityTooLargeException' };
  if (path.startsWith('/_/')) return { bytes: MAX_NIMBUS_API_BYTES, operation: path, errorType: 'RequestEntityTooLargeException' };
  return { bytes: MAX_JSON_BYTES, operation: path, errorType: 'RequestEntityTooLargeException' };
}

function refuse(res: http.ServerResponse, decision: { ok: false; status: number; errorType: string; message: string } | { ok: true }): void {
  if (decision.ok) return;
  awsError(res, decision.status, decision.errorType, decision.message);
}

function cryptoId(): string {
  return globalThis.crypto.randomUUID();
}

/** Reads the whole body, or resolves null once it passes `limit` bytes (the rest is drained, not kept). */
function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) { over = true; chunks.length = 0; return; }
      if (!over) chunks.push(c);
    });
    req.on('end', () => resolve(over ? null : Buffer.concat(chunks)));
    req.on('error', () => resolve(null));
  });
}

function json(res: http.ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-requestid': cryptoId(), 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** An error in Lambda's REST-JSON shape. */
function awsError(res: http.ServerResponse, status: number, type: string, message: string, extra: Record<string, string> = {}): void {
  const body = JSON.stringify({ Type: 'User', Message: message, ...extra });
  res.writeHead(status, {
    'content-type': 'application/json',
    'x-amzn-errortype': type,
    'x-amzn-requestid': cryptoId(),
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}
