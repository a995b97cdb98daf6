/**
 * The control port: Lambda's Invoke API and the health check.
 *
 * `POST /2015-03-31/functions/{FunctionName}/invocations`, as documented in
 * https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html :
 * - `X-Amz-Invocation-Type`: `RequestResponse` (default) answers 200 with the
 *   result; a function error still answers 200, with `X-Amz-Function-Error:
 *   Unhandled` and the error document as the body. `Event` answers 202 at once.
 *   `DryRun` answers 204.
 * - `X-Amz-Log-Type: Tail` adds the last 4 KB of the invocation's log, base64,
 *   in `X-Amz-Log-Result`.
 * - Errors use Lambda's shape: the `x-amzn-ErrorType` header and a JSON body
 *   `{"Type": "User", "Message": …}` (404 ResourceNotFoundException, 413
 *   RequestTooLargeException, 400 InvalidRequestContentException, 429
 *   TooManyRequestsException).
 * - `FunctionName` may be a name, a `name:qualifier`, a partial ARN
 *   (`123456789012:function:name`) or a full ARN.
 *
 * `GET /_/health` answers 200 once every function and route is loaded.
 * `GET /_/metrics[?function=NAME]` answers the metrics of the recent
 * invocations (counts, p50/p95/p99, throughput, GB-seconds, cost).
 */
import http from 'node:http';
import { closeGracefully, listen, type InvocationResult } from '../core/index.js';

/** Largest synchronous request payload: 6 MB (6291456 bytes). */
export const MAX_INVOKE_PAYLOAD_BYTES = 6 * 1024 * 1024;
/** Largest asynchronous (`Event`) payload: 1 MB since 2025 (256 KB before). */
export const MAX_ASYNC_PAYLOAD_BYTES = 1024 * 1024;
const LOG_TAIL_BYTES = 4096;

/** What the control server needs from the platform. */
export interface ControlBackend {
  /** True once every function and route is loaded. */
  ready(): boolean;
  /** The ARN of a function found by name or key, or null when there is none. */
  resolve(name: string): { arn: string } | null;
  /** Runs one synchronous invocation of the function found by `name`. */
  invoke(name: string, payload: string): Promise<InvocationResult>;
  /** Queues one asynchronous invocation; resolves once it is accepted. */
  invokeAsync(name: string, payload: string): Promise<void>;
  /** The function ARN a missing function would have, for the error message. */
  arnFor(name: string): string;
  /** Metrics of one function (or all when name is undefined); null when the function is unknown. */
  metrics?(name: string | undefined): unknown | null;
}

const INVOKE_PATH = /^\/2015-03-31\/functions\/([^/]+)\/invocations\/?$/;

/**
 * Splits a FunctionName path parameter (a name, `name:qualifier`, partial ARN
 * `123456789012:function:name[:qualifier]` or full ARN) into the name and
 * the qualifier. Returns null when it is not valid percent-encoding.
 */
export function functionNameOf(raw: string): { name: string; qualifier?: string } | null {
  let s: string;
  try { s = decodeURIComponent(raw); } catch { return null; }
  const parts = s.split(':');
  let at = 0;
  if (s.startsWith('arn:')) at = 6;
  else if (parts.indexOf('function') >= 0) at = parts.indexOf('function') + 1;
  const name = parts[at] ?? '';
  const qualifier = parts[at + 1];
  return qualifier !== undefined && qualifier !== '' ? { name, qualifier } : { name };
}

/** The control server (binds to loopback by default). */
export class ControlServer {
  private readonly server: http.Server;

  constructor(private readonly backend: ControlBackend) {
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
    const path = url.split('?', 1)[0];
    if (path === '/_/health') {
      const ok = this.backend.ready();
      json(res, ok ? 200 : 503, { status: ok ? 'ok' : 'starting' });
      req.resume();
      return;
    }
    if (path === '/_/metrics' && this.backend.metrics) {
      req.resume();
      const fn = new URLSearchParams(url.slice(path.length + 1)).get('function') ?? undefined;
      const m = this.backend.metrics(fn);
      if (m === null) awsError(res, 404, 'ResourceNotFoundException', `Function not found: ${this.backend.arnFor(fn ?? '')}`);
      else json(res, 200, m);
      return;
    }
    const m = INVOKE_PATH.exec(path);
    if (!m) {
      req.resume();
      awsError(res, 404, 'UnknownOperationException', 'Unknown operation');
      return;
    }
    if (req.method !== 'POST') {
      req.resume();
      awsError(res, 405, 'MethodNotAllowedException', `Method ${req.method} is not allowed on the Invoke API; use POST`);
      return;
    }
    const parsed = functionNameOf(m[1]);
    if (!parsed || parsed.name === '') {
      req.resume();
      awsError(res, 400, 'InvalidParameterValueException', `Invalid FunctionName: ${m[1]}`);
      return;
    }
    const name = parsed.name;
    const qualifier = parsed.qualifier ?? new URLSearchParams(url.slice(path.length + 1)).get('Qualifier') ?? undefined;
    const type = String(req.headers['x-amz-invocation-type'] ?? 'RequestResponse');
    if (type !== 'RequestResponse' && type !== 'Event' && type !== 'DryRun') {
      req.resume();
      awsError(res, 400, 'InvalidParameterValueException', `Invalid X-Amz-Invocation-Type: ${type}; use RequestResponse, Event or DryRun`);
      return;
    }
    const limit = type === 'Event' ? MAX_ASYNC_PAYLOAD_BYTES : MAX_INVOKE_PAYLOAD_BYTES;
    const body = await readBody(req, limit);
    if (body === null) {
      awsError(res, 413, 'RequestTooLargeException', `Request must be smaller than ${limit} bytes for the InvokeFunction operation`);
      return;
    }
    const found = this.backend.resolve(name);
    // `nimbus dev` serves $LATEST only: a version or alias that does not exist is not found, as on Lambda.
    if (!found || (qualifier !== undefined && qualifier !== '$LATEST')) {
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
      await this.backend.invokeAsync(name, payload);
      res.writeHead(202, { 'content-length': '0', 'x-amzn-requestid': cryptoId() });
      res.end();
      return;
    }
    const result = await this.backend.invoke(name, payload);
    if (result.outcome === 'throttled') {
      awsError(res, 429, 'TooManyRequestsException', 'Rate Exceeded.', { Reason: 'ReservedFunctionConcurrentInvocationLimitExceeded' });
      return;
    }
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'x-amz-executed-version': '$LATEST',
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

function cryptoId(): string {
  return globalThis.crypto.randomUUID();
}

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
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
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
