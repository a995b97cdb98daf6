/**
 * Nimbus's own control endpoints (under `/_/` on the control port), used by
 * the CLI's deploy, info, remove, rollback, logs and metrics. Requests and
 * answers are JSON; errors use the AWS REST-JSON shape of the Lambda API
 * (`x-amzn-ErrorType` header, `{"Type": "User", "Message": …}` body) plus
 * the Nimbus code in `x-nimbus-error` and the body's `code`.
 *
 * | method and path | does |
 * |---|---|
 * | `HEAD /_/artifacts/{sha256}` | 200 when the server has the code package, else 404 |
 * | `PUT /_/artifacts` (body: zip) | stores a code package; 201 `{sha256, size}` |
 * | `POST /_/deploy` (DeployManifest) | publishes a version of every function, then switches routes and code together; 200 DeployResult |
 * | `GET /_/services` | every deployed service (ServiceInfo[]) |
 * | `GET /_/services/{service}/{stage}` | one service: endpoints, functions, versions, aliases, deployments |
 * | `DELETE /_/services/{service}/{stage}` | removes the service and its functions |
 * | `POST /_/services/{service}/{stage}/rollback` (`{deployment?}`) | serves an earlier deployment's versions again, as a new deployment |
 * | `GET /_/logs?function=NAME&since=MS&limit=N` | log events of a function, oldest first |
 * | `GET /_/metrics?function=NAME&since=MS` | metrics and cost (JSON) |
 * | `GET /metrics` | the Prometheus text exposition (docs/metrics.md) |
 * | `GET /_/schedules` | schedule rules and their next fire times |
 * | `POST /_/schedules/run` (`{function}`) | fires the function's schedule rules now |
 * | `GET /_/dead-letters?function=NAME` | asynchronous events that exhausted their retries |
 * | `POST /_/dead-letters/{id}/redrive` | puts one back on the queue, same request id |
 * | `GET /_/queues`, `GET /_/topics` | queues with their message counts; topics with their subscribers |
 * | `POST /_/queues/{name}/messages` (`{body, attributes?, delaySeconds?}`) | sends a message (SQS's limits) |
 * | `POST /_/topics/{name}/messages` (`{message, subject?, attributes?}`) | publishes a message to every subscriber |
 * | `POST /_/queues/{name}/receive` (`{max?, delete?}`) | receives messages (a dead-letter queue's, say), deleting them with `delete` |
 */
import type http from 'node:http';
import { isNimbusError, NimbusError, type RouteSpec, type ServiceSpec } from '../core/index.js';

/** The configuration of one function as deployed: a FunctionSpec without `codeDir` (the package gives it). */
export type DeployFunctionConfig = Readonly<Record<string, unknown>> & { readonly key: string; readonly name: string };

/** What `nimbus deploy` sends once the package is uploaded; the event sources are ServiceSpec's fields of the same names. */
export interface DeployManifest extends Partial<Pick<ServiceSpec, 'schedules' | 'queues' | 'queueEvents' | 'topics' | 'topicEvents' | 'httpApiCors'>> {
  readonly service: string;
  readonly stage: string;
  readonly region: string;
  /** SHA-256 (hex) of the service's code package, uploaded before. */
  readonly codeSha256: string;
  /** Every function of the service (FunctionSpec without codeDir). */
  readonly functions: readonly DeployFunctionConfig[];
  readonly routes: readonly RouteSpec[];
  readonly binaryMediaTypes: readonly string[];
  /** `nimbus deploy function -f KEY`: only these functions get a new version; routes stay as deployed. */
  readonly only?: readonly string[];
}

/** What a deploy or a rollback did. */
export interface DeployResult {
  readonly service: string;
  readonly stage: string;
  readonly deployment: number;
  /** Per function key: its name and the version now serving. */
  readonly functions: Readonly<Record<string, { readonly name: string; readonly version: string }>>;
  /** Route URLs, e.g. `GET http://127.0.0.1:3000/hello`. */
  readonly endpoints: readonly string[];
  /** False when nothing changed since the last deployment (same code and configuration). */
  readonly changed: boolean;
}

/** One deployed service, as `nimbus info` shows it. */
export interface ServiceInfo {
  readonly service: string;
  readonly stage: string;
  readonly deployment: number;
  readonly deployedAt: string;
  readonly endpoints: readonly string[];
  readonly functions: ReadonlyArray<{
    readonly key: string; readonly name: string; readonly version: string; readonly runtime: string;
    readonly memorySize: number; readonly timeout: number;
    readonly versions: readonly string[];
    readonly aliases: ReadonlyArray<{ readonly name: string; readonly functionVersion: string; readonly additionalVersionWeights: Readonly<Record<string, number>> }>;
  }>;
  readonly deployments: ReadonlyArray<{ readonly deployment: number; readonly deployedAt: string; readonly versions: Readonly<Record<string, string>> }>;
}

/** What the endpoints need from the server. Methods throw NimbusError for what the caller got wrong. */
export interface NimbusApiBackend {
  hasArtifact(sha256: string): boolean;
  /** Stores a code package; throws NIMBUS_ERR_DEPLOY_INVALID when it is not a valid zip. */
  putArtifact(zip: Buffer): { sha256: string; size: number };
  deploy(manifest: DeployManifest): Promise<DeployResult>;
  services(): ServiceInfo[];
  service(name: string, stage: string): ServiceInfo;
  remove(name: string, stage: string): Promise<void>;
  rollback(name: string, stage: string, deployment?: number): Promise<DeployResult>;
  logs(functionName: string, sinceMs: number, limit: number): Array<{ timeMs: number; requestId: string; text: string }>;
  metrics(functionName: string | undefined, sinceMs: number): unknown;
  /** The Prometheus exposition. */
  prometheusText(): Promise<{ contentType: string; text: string }>;
  /** Fires the schedule rules of a function now; the rule names fired (none: NIMBUS_ERR_SCHEDULE_NOT_FOUND). */
  runSchedules(functionName: string): Promise<string[]>;
  /** Schedule rules with their next fire times. */
  schedules(): unknown[];
  /** Asynchronous events that exhausted their retries, oldest first. */
  deadLetters(functionName: string | undefined): unknown[];
  /** Puts a dead letter back on the queue (same request id); false when there is no such dead letter. */
  redrive(id: number): boolean;
  /** Sends a message to a queue; throws NIMBUS_ERR_QUEUE_NOT_FOUND / NIMBUS_ERR_MESSAGE_INVALID. */
  sendMessage(queue: string, body: string, options: { messageAttributes?: Record<string, { DataType: string; StringValue?: string }>; delaySeconds?: number }): { messageId: string };
  /** Publishes to a topic; throws NIMBUS_ERR_TOPIC_NOT_FOUND / NIMBUS_ERR_MESSAGE_INVALID. */
  publish(topic: string, message: string, options: { subject?: string; messageAttributes?: Record<string, { DataType: string; StringValue?: string }> }): { messageId: string };
  /** Receives up to `max` messages of a queue (hidden for its visibility timeout), deleting them when `remove`. */
  receiveMessages(queue: string, max: number, remove: boolean): unknown[];
  /** Queues with their counts, and topics with their subscriptions. */
  queueStats(): unknown[];
  topicStats(): unknown[];
}

const SERVICE_PATH = /^\/_\/services\/([^/]+)\/([^/]+)(\/rollback)?\/?$/;
const ARTIFACT_PATH = /^\/_\/artifacts\/([0-9a-f]{64})$/;

/** AWS error types for Nimbus's codes (the Lambda API's names). */
const AWS_TYPE: Partial<Record<string, string>> = {
  NIMBUS_ERR_SERVICE_NOT_FOUND: 'ResourceNotFoundException',
  NIMBUS_ERR_DEPLOY_CONFLICT: 'ResourceConflictException',
  NIMBUS_ERR_DEPLOY_INVALID: 'InvalidParameterValueException',
  NIMBUS_ERR_ROLLBACK_INVALID: 'InvalidParameterValueException',
  NIMBUS_ERR_SCHEDULE_NOT_FOUND: 'ResourceNotFoundException',
  NIMBUS_ERR_DEAD_LETTER_NOT_FOUND: 'ResourceNotFoundException',
  NIMBUS_ERR_QUEUE_NOT_FOUND: 'QueueDoesNotExist',
  NIMBUS_ERR_TOPIC_NOT_FOUND: 'NotFoundException',
  NIMBUS_ERR_MESSAGE_INVALID: 'InvalidParameterValueException',
  NIMBUS_ERR_REQUEST_INVALID: 'InvalidParameterValueException',
  NIMBUS_ERR_INVOKE_FUNCTION_NOT_FOUND: 'ResourceNotFoundException',
};

/**
 * Serves the `/_/` endpoints above; resolves false for a path it does not
 * know (the caller answers 404). Authentication is the caller's.
 */
export async function handleNimbusApi(
  backend: NimbusApiBackend, req: http.IncomingMessage, res: http.ServerResponse, body: Buffer, path: string, query: URLSearchParams,
): Promise<boolean> {
  const method = req.method ?? 'GET';
  try {
    const artifact = ARTIFACT_PATH.exec(path);
    if (artifact && (method === 'HEAD' || method === 'GET')) {
      const has = backend.hasArtifact(artifact[1]);
      res.writeHead(has ? 200 : 404, { 'content-length': '0' });
      res.end();
      return true;
    }
    if (path === '/_/artifacts' && method === 'PUT') {
      if (body.length === 0) throw invalid('(upload)', 'the request has no body; send the zip of the code package');
      send(res, 201, backend.putArtifact(body));
      return true;
    }
    if (path === '/_/deploy' && method === 'POST') {
      send(res, 200, await backend.deploy(parseManifest(body)));
      return true;
    }
    if ((path === '/_/services' || path === '/_/services/') && method === 'GET') {
      send(res, 200, backend.services());
      return true;
    }
    const svc = SERVICE_PATH.exec(path);
    if (svc) {
      const [name, stage] = [decoded(svc[1]), decoded(svc[2])];
      if (svc[3] && method === 'POST') {
        const input = body.length ? parseJson(body, 'rollback') as { deployment?: unknown } : {};
        const n = input.deployment;
        if (n !== undefined && (typeof n !== 'number' || !Number.isInteger(n) || n < 1)) {
          throw new NimbusError('NIMBUS_ERR_ROLLBACK_INVALID', { service: name, reason: `deployment must be a whole number from 1, got ${JSON.stringify(n)}` });
        }
        send(res, 200, await backend.rollback(name, stage, n as number | undefined));
        return true;
      }
      if (!svc[3] && method === 'GET') { send(res, 200, backend.service(name, stage)); return true; }
      if (!svc[3] && method === 'DELETE') { await backend.remove(name, stage); send(res, 200, { removed: `${name}/${stage}` }); return true; }
      return false;
    }
    if (path === '/_/logs' && method === 'GET') {
      const fn = query.get('function');
      if (!fn) throw badRequest('give the function: /_/logs?function=NAME');
      const since = numberParam(query, 'since', 0);
      const limit = Math.min(10_000, Math.floor(numberParam(query, 'limit', 1000)));
      send(res, 200, { events: backend.logs(fn, since, limit) });
      return true;
    }
    if (path === '/_/schedules' && method === 'GET') {
      send(res, 200, backend.schedules());
      return true;
    }
    if (path === '/_/schedules/run' && method === 'POST') {
      const input = parseJson(body, 'schedule run') as { function?: unknown } | null;
      const fn = input?.function;
      if (typeof fn !== 'string' || fn === '') throw badRequest('give the function: {"function": "NAME"}');
      const fired = await backend.runSchedules(fn);
      if (!fired.length) throw new NimbusError('NIMBUS_ERR_SCHEDULE_NOT_FOUND', { function: fn });
      send(res, 200, { fired });
      return true;
    }
    if (path === '/_/queues' && method === 'GET') { send(res, 200, backend.queueStats()); return true; }
    if (path === '/_/topics' && method === 'GET') { send(res, 200, backend.topicStats()); return true; }
    const recv = /^\/_\/queues\/([^/]+)\/receive$/.exec(path);
    if (recv && method === 'POST') {
      const input = (body.length ? parseJson(body, 'receive') : {}) as { max?: unknown; delete?: unknown };
      const max = input.max === undefined ? 10 : Number(input.max);
      if (!Number.isInteger(max) || max < 1 || max > 10) throw badRequest(`max must be a whole number from 1 to 10, got ${JSON.stringify(input.max)}`);
      send(res, 200, backend.receiveMessages(decoded(recv[1]), max, input.delete === true));
      return true;
    }
    const msg = /^\/_\/(queues|topics)\/([^/]+)\/messages$/.exec(path);
    if (msg && method === 'POST') {
      const input = parseJson(body, 'message') as Record<string, unknown> | null;
      const text = msg[1] === 'queues' ? input?.body : input?.message;
      if (typeof text !== 'string') throw new NimbusError('NIMBUS_ERR_MESSAGE_INVALID', { reason: `give the message as a string: {"${msg[1] === 'queues' ? 'body' : 'message'}": "..."}` });
      const attributes = attributesOf(input?.attributes);
      const name = decoded(msg[2]);
      const sent = msg[1] === 'queues'
        ? backend.sendMessage(name, text, { ...(attributes ? { messageAttributes: attributes } : {}), ...(typeof input?.delaySeconds === 'number' ? { delaySeconds: input.delaySeconds } : {}) })
        : backend.publish(name, text, { ...(attributes ? { messageAttributes: attributes } : {}), ...(typeof input?.subject === 'string' ? { subject: input.subject } : {}) });
      send(res, 200, sent);
      return true;
    }
    if (path === '/_/dead-letters' && method === 'GET') {
      send(res, 200, backend.deadLetters(query.get('function') ?? undefined));
      return true;
    }
    const redrive = /^\/_\/dead-letters\/(\d+)\/redrive$/.exec(path);
    if (redrive && method === 'POST') {
      if (!backend.redrive(Number(redrive[1]))) throw new NimbusError('NIMBUS_ERR_DEAD_LETTER_NOT_FOUND', { id: redrive[1] });
      send(res, 200, { redriven: Number(redrive[1]) });
      return true;
    }
    if (path === '/metrics' && method === 'GET') {
      const { contentType, text } = await backend.prometheusText();
      res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
      res.end(text);
      return true;
    }
    if (path === '/_/metrics' && method === 'GET') {
      const m = backend.metrics(query.get('function') ?? undefined, numberParam(query, 'since', 0));
      if (m === null) throw new NimbusError('NIMBUS_ERR_SERVICE_NOT_FOUND', { service: query.get('function'), stage: '-' });
      send(res, 200, m);
      return true;
    }
    return false;
  } catch (e) {
    if (!isNimbusError(e)) throw e;
    const body = JSON.stringify({ Type: 'User', Message: e.message, code: e.code, ...(e.hint ? { hint: e.hint } : {}) });
    res.writeHead(e.status, {
      'content-type': 'application/json', 'content-length': Buffer.byteLength(body),
      'x-amzn-errortype': AWS_TYPE[e.code] ?? 'InvalidParameterValueException', 'x-nimbus-error': e.code,
    });
    res.end(body);
    return true;
  }
}

function send(res: http.ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function invalid(service: string, reason: string): NimbusError {
  return new NimbusError('NIMBUS_ERR_DEPLOY_INVALID', { service, reason });
}

function badRequest(reason: string): NimbusError {
  return new NimbusError('NIMBUS_ERR_REQUEST_INVALID', { reason });
}

function decoded(part: string): string {
  try { return decodeURIComponent(part); } catch { throw badRequest(`${JSON.stringify(part)} is not valid percent-encoding`); }
}

function parseJson(body: Buffer, what: string): unknown {
  try { return JSON.parse(body.toString('utf8')); } catch (e) {
    throw invalid(`(${what})`, `the request body is not JSON: ${(e as Error).message}`);
  }
}

function numberParam(query: URLSearchParams, name: string, fallback: number): number {
  const raw = query.get(name);
  if (raw === null || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw badRequest(`${name} must be a number of at least 0, got ${JSON.stringify(raw)}`);
  return n;
}

/** `{ name: "text" }` (string attributes) or SQS's own `{ name: { DataType, StringValue } }`. */
function attributesOf(v: unknown): Record<string, { DataType: string; StringValue?: string }> | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw new NimbusError('NIMBUS_ERR_MESSAGE_INVALID', { reason: 'attributes must be a mapping of names to values' });
  const out: Record<string, { DataType: string; StringValue?: string }> = {};
  for (const [k, a] of Object.entries(v as Record<string, unknown>)) {
    out[k] = typeof a === 'object' && a !== null ? a as { DataType: string; StringValue?: string } : { DataType: typeof a === 'number' ? 'Number' : 'String', StringValue: String(a) };
  }
  return out;
}

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9-_]{0,127}$/;

/** Checks the shape of a deploy request; the server checks what it refers to. */
function parseManifest(body: Buffer): DeployManifest {
  const m = parseJson(body, 'deploy') as Partial<DeployManifest> | null;
  if (m === null || typeof m !== 'object') throw invalid('(deploy)', 'the request body is not a JSON object');
  const service = typeof m.service === 'string' ? m.service : '';
  if (!NAME.test(service)) throw invalid(JSON.stringify(m.service), 'service must be letters, digits, - and _ (up to 128), starting with a letter or digit');
  if (typeof m.stage !== 'string' || !NAME.test(m.stage)) throw invalid(service, `stage must be letters, digits, - and _, got ${JSON.stringify(m.stage)}`);
  if (typeof m.region !== 'string' || m.region === '') throw invalid(service, 'region is missing');
  if (typeof m.codeSha256 !== 'string' || !/^[0-9a-f]{64}$/.test(m.codeSha256)) throw invalid(service, 'codeSha256 must be the hex SHA-256 of an uploaded package');
  if (!Array.isArray(m.functions)) throw invalid(service, 'functions must be a list');
  for (const f of m.functions) {
    if (f === null || typeof f !== 'object' || typeof f.key !== 'string' || typeof f.name !== 'string') {
      throw invalid(service, 'every function needs a key and a name');
    }
  }
  if (!Array.isArray(m.routes)) throw invalid(service, 'routes must be a list');
  if (m.binaryMediaTypes !== undefined && !Array.isArray(m.binaryMediaTypes)) throw invalid(service, 'binaryMediaTypes must be a list');
  if (m.only !== undefined && (!Array.isArray(m.only) || m.only.some((k) => typeof k !== 'string'))) throw invalid(service, 'only must be a list of function keys');
  return { ...m, binaryMediaTypes: m.binaryMediaTypes ?? [] } as DeployManifest;
}
