/**
 * Lambda's management API (REST, version `2015-03-31`) over the Store, so the
 * AWS SDKs, the AWS CLI and tools built on them can create, update, publish,
 * alias and delete functions on a Nimbus server.
 *
 * Paths, JSON field names, status codes and error types follow the AWS Lambda
 * API reference, https://docs.aws.amazon.com/lambda/latest/api/ :
 *
 * | operation | request | success |
 * |---|---|---|
 * | [CreateFunction](https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html) | `POST /2015-03-31/functions` | 201 FunctionConfiguration |
 * | [ListFunctions](https://docs.aws.amazon.com/lambda/latest/api/API_ListFunctions.html) | `GET /2015-03-31/functions/?FunctionVersion&Marker&MaxItems` | 200 `{Functions, NextMarker}` |
 * | [GetFunction](https://docs.aws.amazon.com/lambda/latest/api/API_GetFunction.html) | `GET …/functions/{FunctionName}?Qualifier` | 200 `{Configuration, Code, Concurrency}` |
 * | [GetFunctionConfiguration](https://docs.aws.amazon.com/lambda/latest/api/API_GetFunctionConfiguration.html) | `GET …/{FunctionName}/configuration?Qualifier` | 200 FunctionConfiguration |
 * | [DeleteFunction](https://docs.aws.amazon.com/lambda/latest/api/API_DeleteFunction.html) | `DELETE …/{FunctionName}?Qualifier` | 204 |
 * | [UpdateFunctionCode](https://docs.aws.amazon.com/lambda/latest/api/API_UpdateFunctionCode.html) | `PUT …/{FunctionName}/code` | 200 FunctionConfiguration |
 * | [UpdateFunctionConfiguration](https://docs.aws.amazon.com/lambda/latest/api/API_UpdateFunctionConfiguration.html) | `PUT …/{FunctionName}/configuration` | 200 FunctionConfiguration |
 * | [PublishVersion](https://docs.aws.amazon.com/lambda/latest/api/API_PublishVersion.html) | `POST …/{FunctionName}/versions` | 201 FunctionConfiguration |
 * | [ListVersionsByFunction](https://docs.aws.amazon.com/lambda/latest/api/API_ListVersionsByFunction.html) | `GET …/{FunctionName}/versions?Marker&MaxItems` | 200 `{Versions, NextMarker}` |
 * | [CreateAlias](https://docs.aws.amazon.com/lambda/latest/api/API_CreateAlias.html) | `POST …/{FunctionName}/aliases` | 201 AliasConfiguration |
 * | [ListAliases](https://docs.aws.amazon.com/lambda/latest/api/API_ListAliases.html) | `GET …/{FunctionName}/aliases?FunctionVersion&Marker&MaxItems` | 200 `{Aliases, NextMarker}` |
 * | [GetAlias](https://docs.aws.amazon.com/lambda/latest/api/API_GetAlias.html) | `GET …/{FunctionName}/aliases/{Name}` | 200 AliasConfiguration |
 * | [UpdateAlias](https://docs.aws.amazon.com/lambda/latest/api/API_UpdateAlias.html) | `PUT …/{FunctionName}/aliases/{Name}` | 200 AliasConfiguration |
 * | [DeleteAlias](https://docs.aws.amazon.com/lambda/latest/api/API_DeleteAlias.html) | `DELETE …/{FunctionName}/aliases/{Name}` | 204 |
 *
 * Errors (`x-amzn-ErrorType`): 400 ValidationException (a field breaks its
 * constraint: "1 validation error detected: Value '64' at 'memorySize' …"),
 * 400 InvalidParameterValueException (a value Nimbus cannot use: an
 * unsupported runtime, a zip that is not a zip, a reserved environment
 * variable), 400 InvalidRequestContentException (the body is not JSON),
 * 404 ResourceNotFoundException ("Function not found: arn:…"), 409
 * ResourceConflictException (the function or alias exists already; a version
 * an alias uses), 412 PreconditionFailedException (a stale RevisionId),
 * 413 RequestEntityTooLargeException (a zip over 50 MB).
 *
 * What Nimbus does not have is refused, never silently faked: code comes only
 * as `Code.ZipFile` (no S3, no container images); runtimes are `nodejsNN.x`
 * and `python3.NN`. Fields with no meaning here (VPC, layers, tracing, …) are
 * ignored.
 */
import { createHash } from 'node:crypto';
import { ACCOUNT_ID, LAMBDA_ALIAS_NAME, LAMBDA_FUNCTION_NAME, RESERVED_ENVIRONMENT, type Language } from '../core/index.js';
import type { AliasRecord, FunctionConfig, Store, VersionRecord } from '../store/index.js';

/** The account id in every ARN Nimbus makes (as `nimbus dev` uses). */
export const NIMBUS_ACCOUNT_ID = ACCOUNT_ID;
/** Lambda's limit on a zip uploaded in the request: 50 MB. https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html */
export const MAX_ZIP_BYTES = 50 * 1024 * 1024;
/**
 * Largest CreateFunction / UpdateFunctionCode request body: a 50 MB zip in
 * base64 (4/3 of it), the number Lambda's 413 names.
 */
export const MAX_CODE_REQUEST_BYTES = 69_905_067;
/** Lambda's limit on the environment variables of a function (their JSON): 4 KB. */
const MAX_ENVIRONMENT_BYTES = 4096;
/** ListFunctions and ListVersionsByFunction return at most 50 items per call, whatever MaxItems says. */
const PAGE_CAP = 50;

const LATEST = '$LATEST';
const API_PREFIX = '/2015-03-31/functions';
const FUNCTION_NAME = LAMBDA_FUNCTION_NAME;
/** The FunctionName pattern of the API reference, quoted in validation errors. */
const FUNCTION_NAME_PATTERN = '(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?';
const ALIAS_NAME = LAMBDA_ALIAS_NAME;
const VERSION = /^(\$LATEST|[0-9]{1,10})$/;
const PUBLISHED_VERSION = /^[0-9]{1,10}$/;
const HANDLER = /^[^\s]+$/;
const ENV_KEY = /^[a-zA-Z][a-zA-Z0-9_]+$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const NODE_RUNTIME = /^nodejs\d+\.x$/;
const PYTHON_RUNTIME = /^python3\.\d+$/;
/** Variables the Lambda runtime sets; a function's configuration cannot. */
const RESERVED_ENV = RESERVED_ENVIRONMENT;

/** What changed, for `changed`. */
export interface LambdaChange {
  /**
   * `created`: a new function ($LATEST, and version 1 with Publish);
   * `code` / `configuration`: $LATEST changed (and a version was published when `version` is set);
   * `published`: a new version; `alias`: an alias was created, updated or deleted;
   * `deleted`: the function (or, with `version`, one version) is gone.
   */
  readonly kind: 'created' | 'code' | 'configuration' | 'published' | 'alias' | 'deleted';
  /** The version published or deleted, when there is one. */
  readonly version?: string;
  /** The alias, for `alias`. */
  readonly alias?: string;
}

/** Settings of the management API. */
export interface LambdaApiOptions {
  readonly store: Store;
  /** The server's region: in ARNs, and the `region` of functions created here. */
  readonly region: string;
  /**
   * Called after every change to a function's code, configuration, versions
   * or aliases, once the store has it, before the answer is sent: the server
   * restarts or retires instances here, so the next Invoke sees the change.
   * A rejection answers 500 ServiceException (the change stays saved).
   */
  readonly changed: (functionName: string, change: LambdaChange) => void | Promise<void>;
  /** Default `000000000000`. */
  readonly accountId?: string;
  /** `Code.Location` of GetFunction (a URL the zip can be downloaded from); default ''. */
  readonly codeLocation?: (version: VersionRecord) => string;
  /** The Role reported for functions created without one (default `arn:aws:iam::<account>:role/nimbus-function`). */
  readonly defaultRole?: string;
}

/** One answer of the API: a JSON body (none for 204), or an error in Lambda's shape. */
export interface LambdaApiResponse {
  readonly status: number;
  readonly body?: unknown;
  readonly error?: { readonly type: string; readonly message: string };
}

/** The operations served, by Lambda's names. */
export type LambdaOperation =
  | 'CreateFunction' | 'ListFunctions' | 'GetFunction' | 'GetFunctionConfiguration' | 'DeleteFunction'
  | 'UpdateFunctionCode' | 'UpdateFunctionConfiguration' | 'PublishVersion' | 'ListVersionsByFunction'
  | 'CreateAlias' | 'ListAliases' | 'GetAlias' | 'UpdateAlias' | 'DeleteAlias';

interface Route {
  readonly op: LambdaOperation;
  /** The FunctionName path parameter, still percent-encoded. */
  readonly rawFunction?: string;
  readonly rawAlias?: string;
}

/**
 * Which management operation `method path` is, or undefined (Invoke and
 * anything unknown). `path` is the raw path, without the query.
 */
export function lambdaOperation(method: string, path: string): Route | undefined {
  if (!path.startsWith(API_PREFIX)) return undefined;
  const rest = path.slice(API_PREFIX.length);
  if (rest !== '' && rest[0] !== '/') return undefined;
  const trimmed = rest.endsWith('/') ? rest.slice(1, -1) : rest.slice(1);
  const segs = trimmed === '' ? [] : trimmed.split('/');
  if (segs.some((s) => s === '')) return undefined;
  const [fn, sub, alias] = segs;
  switch (segs.length) {
    case 0:
      return method === 'GET' ? { op: 'ListFunctions' } : method === 'POST' ? { op: 'CreateFunction' } : undefined;
    case 1:
      return method === 'GET' ? { op: 'GetFunction', rawFunction: fn } : method === 'DELETE' ? { op: 'DeleteFunction', rawFunction: fn } : undefined;
    case 2:
      if (sub === 'configuration') {
        return method === 'GET' ? { op: 'GetFunctionConfiguration', rawFunction: fn } : method === 'PUT' ? { op: 'UpdateFunctionConfiguration', rawFunction: fn } : undefined;
      }
      if (sub === 'code') return method === 'PUT' ? { op: 'UpdateFunctionCode', rawFunction: fn } : undefined;
      if (sub === 'versions') {
        return method === 'GET' ? { op: 'ListVersionsByFunction', rawFunction: fn } : method === 'POST' ? { op: 'PublishVersion', rawFunction: fn } : undefined;
      }
      if (sub === 'aliases') return method === 'GET' ? { op: 'ListAliases', rawFunction: fn } : method === 'POST' ? { op: 'CreateAlias', rawFunction: fn } : undefined;
      return undefined;
    case 3:
      if (sub !== 'aliases') return undefined;
      if (method === 'GET') return { op: 'GetAlias', rawFunction: fn, rawAlias: alias };
      if (method === 'PUT') return { op: 'UpdateAlias', rawFunction: fn, rawAlias: alias };
      if (method === 'DELETE') return { op: 'DeleteAlias', rawFunction: fn, rawAlias: alias };
      return undefined;
    default:
      return undefined;
  }
}

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

/** An error answered in Lambda's shape. */
class ApiError extends Error {
  constructor(readonly status: number, readonly type: string, message: string) {
    super(message);
  }
}

interface Outcome {
  readonly response: LambdaApiResponse;
  readonly change?: { readonly functionName: string; readonly change: LambdaChange };
}

type Json = Record<string, unknown>;

/**
 * Lambda's management operations over a Store. Create it once per server and
 * call `handle` for each request under `/2015-03-31/functions`.
 *
 * Functions created here get `key` = `name`, `service` = `stage` = '', the
 * server's `region`, and the language of their runtime. `Role` is kept as
 * given (Nimbus has no IAM; it is reported back, nothing more).
 */
export class LambdaManagementApi {
  private readonly store: Store;
  private readonly region: string;
  private readonly accountId: string;
  private readonly defaultRole: string;

  constructor(private readonly options: LambdaApiOptions) {
    this.store = options.store;
    this.region = options.region;
    this.accountId = options.accountId ?? NIMBUS_ACCOUNT_ID;
    this.defaultRole = options.defaultRole ?? `arn:aws:iam::${this.accountId}:role/nimbus-function`;
  }

  /** The ARN of a function, or of one of its versions or aliases. */
  arn(functionName: string, qualifier?: string): string {
    return `arn:aws:lambda:${this.region}:${this.accountId}:function:${functionName}${qualifier !== undefined ? `:${qualifier}` : ''}`;
  }

  /**
   * Serves one request. `path` is the raw path (percent-encoded, no query);
   * `body` the whole request body. Resolves null when the path and method are
   * not a management operation (the caller answers 404 UnknownOperationException).
   * Rejects only on a failure of the store itself (a bug or a broken disk).
   */
  async handle(method: string, path: string, query: URLSearchParams, body: Buffer): Promise<LambdaApiResponse | null> {
    const route = lambdaOperation(method, path);
    if (!route) return null;
    let outcome: Outcome;
    try {
      outcome = this.run(route, query, body);
    } catch (e) {
      if (e instanceof ApiError) return { status: e.status, error: { type: e.type, message: e.message } };
      throw e;
    }
    if (outcome.change) {
      try {
        await this.options.changed(outcome.change.functionName, outcome.change.change);
      } catch (e) {
        return { status: 500, error: { type: 'ServiceException', message: `The change to ${outcome.change.functionName} was saved, but Nimbus failed to apply it: ${(e as Error)?.message ?? String(e)}` } };
      }
    }
    return outcome.response;
  }

  private run(route: Route, query: URLSearchParams, body: Buffer): Outcome {
    switch (route.op) {
      case 'ListFunctions': return this.listFunctions(query);
      case 'CreateFunction': return this.createFunction(parseBody(body));
      case 'GetFunction': return this.getFunction(route, query, false);
      case 'GetFunctionConfiguration': return this.getFunction(route, query, true);
      case 'DeleteFunction': return this.deleteFunction(route, query);
      case 'UpdateFunctionCode': return this.updateFunctionCode(route, parseBody(body));
      case 'UpdateFunctionConfiguration': return this.updateFunctionConfiguration(route, parseBody(body));
      case 'PublishVersion': return this.publishVersion(route, parseBody(body));
      case 'ListVersionsByFunction': return this.listVersions(route, query);
      case 'CreateAlias': return this.createAlias(route, parseBody(body));
      case 'ListAliases': return this.listAliases(route, query);
      case 'GetAlias': return this.getAlias(route);
      case 'UpdateAlias': return this.updateAlias(route, parseBody(body));
      case 'DeleteAlias': return this.deleteAlias(route);
    }
  }

  // ── functions ─────────────────────────────────────────────────────────

  private listFunctions(query: URLSearchParams): Outcome {
    const v = new Validator();
    const all = query.get('FunctionVersion');
    if (all !== null && all !== 'ALL') v.fail('functionVersion', all, 'Member must satisfy enum value set: [ALL]');
    const maxItems = v.maxItems(query);
    v.done();
    const latest = this.store.listFunctions();
    const records = all === 'ALL' ? latest.flatMap((f) => this.store.listVersions(f.functionName)) : latest;
    const items = records.map((r) => ({ key: versionKey(r), r })).sort(byKey);
    const { page, next } = paginate(items, query.get('Marker'), maxItems, PAGE_CAP);
    const Functions = page.map(({ r }) => this.configuration(r, { qualified: all === 'ALL', listing: true }));
    return ok(200, next === undefined ? { Functions } : { Functions, NextMarker: next });
  }

  private createFunction(body: Json): Outcome {
    const v = new Validator();
    const rawName = v.string(body, 'FunctionName', { required: true, max: 140 });
    let name = '';
    if (rawName !== undefined) {
      const parsed = functionNameOf(encodeURIComponent(rawName));
      if (!parsed || !FUNCTION_NAME.test(parsed.name) || parsed.qualifier !== undefined) {
        v.fail('functionName', rawName, `Member must satisfy regular expression pattern: ${FUNCTION_NAME_PATTERN}`);
      } else name = parsed.name;
    }
    const fields = this.readConfigFields(v, body);
    const code = v.object(body, 'Code', { required: true });
    const publish = v.boolean(body, 'Publish');
    v.done();
    if (this.store.getVersion(name, LATEST)) throw new ApiError(409, 'ResourceConflictException', `Function already exist: ${name}`);
    if (body.PackageType !== undefined && body.PackageType !== 'Zip') {
      throw invalid('Nimbus runs functions from .zip archives only: PackageType must be Zip (container images are not supported)');
    }
    if (fields.runtime === undefined || fields.handler === undefined) {
      throw invalid('Runtime and Handler are mandatory parameters for functions created with deployment packages.');
    }
    const language = languageOf(fields.runtime);
    const artifact = this.storeZip(code ?? {});
    const config: FunctionConfig & { role?: string } = {
      key: name, name, handler: fields.handler, runtime: fields.runtime, language,
      memorySize: fields.memorySize ?? 128, timeout: fields.timeout ?? 3, environment: fields.environment ?? {},
      service: '', stage: '', region: this.region,
      ...(fields.role !== undefined ? { role: fields.role } : {}),
    };
    let record = this.store.putLatest(config, artifact.sha256, artifact.size, fields.description ?? '');
    if (publish) record = this.store.publishVersion(name);
    return ok(201, this.configuration(record), { functionName: name, change: { kind: 'created', ...(publish ? { version: record.version } : {}) } });
  }

  private getFunction(route: Route, query: URLSearchParams, configurationOnly: boolean): Outcome {
    const { name, qualifier } = this.target(route, query);
    const record = this.resolve(name, qualifier);
    const configuration = this.configuration(record, { qualifier });
    if (configurationOnly) return ok(200, configuration);
    const out: Json = {
      Configuration: configuration,
      Code: { RepositoryType: 'S3', Location: this.options.codeLocation?.(record) ?? '' },
    };
    if (record.config.reservedConcurrency !== undefined) out.Concurrency = { ReservedConcurrentExecutions: record.config.reservedConcurrency };
    return ok(200, out);
  }

  private deleteFunction(route: Route, query: URLSearchParams): Outcome {
    const { name, qualifier } = this.target(route, query);
    this.latest(name);
    if (qualifier === undefined) {
      this.store.deleteFunction(name);
      return ok(204, undefined, { functionName: name, change: { kind: 'deleted' } });
    }
    if (qualifier === LATEST) throw invalid('$LATEST version cannot be deleted without deleting the function.');
    if (!PUBLISHED_VERSION.test(qualifier)) {
      throw invalid(`Qualifier ${qualifier} is not a version number: delete an alias with DeleteAlias`);
    }
    if (!this.store.getVersion(name, qualifier)) throw notFound(this.arn(name, qualifier));
    const users = this.store.listAliases(name).filter((a) => a.functionVersion === qualifier || qualifier in a.additionalVersionWeights).map((a) => a.name);
    if (users.length > 0) {
      throw new ApiError(409, 'ResourceConflictException', `Unable to delete version because the following aliases reference it: [${users.join(', ')}]`);
    }
    this.store.deleteFunction(name, qualifier);
    return ok(204, undefined, { functionName: name, change: { kind: 'deleted', version: qualifier } });
  }

  private updateFunctionCode(route: Route, body: Json): Outcome {
    const name = this.unqualified(route);
    const v = new Validator();
    const publish = v.boolean(body, 'Publish');
    const dryRun = v.boolean(body, 'DryRun');
    const revisionId = v.string(body, 'RevisionId');
    v.done();
    const latest = this.latest(name);
    this.checkRevision(latest, revisionId, 'GetFunction');
    // A dry run still stores the zip (content-addressed, so harmless): that is how it is checked to be one.
    const artifact = this.storeZip(body);
    if (dryRun) {
      return ok(200, { ...this.configuration(latest), CodeSha256: base64Sha(artifact.sha256), CodeSize: artifact.size });
    }
    let record = this.store.putLatest(latest.config, artifact.sha256, artifact.size, latest.description);
    if (publish) record = this.store.publishVersion(name);
    return ok(200, this.configuration(record), { functionName: name, change: { kind: 'code', ...(publish ? { version: record.version } : {}) } });
  }

  private updateFunctionConfiguration(route: Route, body: Json): Outcome {
    const name = this.unqualified(route);
    const v = new Validator();
    const fields = this.readConfigFields(v, body);
    const revisionId = v.string(body, 'RevisionId');
    v.done();
    const latest = this.latest(name);
    this.checkRevision(latest, revisionId, 'GetFunction');
    const current = latest.config as FunctionConfig & { role?: string };
    const runtime = fields.runtime ?? current.runtime;
    const config: FunctionConfig & { role?: string } = {
      ...current,
      runtime,
      language: fields.runtime !== undefined ? languageOf(runtime) : current.language,
      handler: fields.handler ?? current.handler,
      memorySize: fields.memorySize ?? current.memorySize,
      timeout: fields.timeout ?? current.timeout,
      environment: fields.environment ?? current.environment,
      ...(fields.role !== undefined ? { role: fields.role } : {}),
    };
    const record = this.store.putLatest(config, latest.codeSha256, latest.codeSize, fields.description ?? latest.description);
    return ok(200, this.configuration(record), { functionName: name, change: { kind: 'configuration' } });
  }

  // ── versions ──────────────────────────────────────────────────────────

  private publishVersion(route: Route, body: Json): Outcome {
    const name = this.unqualified(route);
    const v = new Validator();
    const codeSha256 = v.string(body, 'CodeSha256');
    const description = v.string(body, 'Description', { max: 256 });
    const revisionId = v.string(body, 'RevisionId');
    v.done();
    const latest = this.latest(name);
    this.checkRevision(latest, revisionId, 'GetFunction');
    const current = base64Sha(latest.codeSha256);
    if (codeSha256 !== undefined && codeSha256 !== current) {
      throw invalid(`CodeSHA256 (${codeSha256}) is different from current CodeSHA256 in $LATEST (${current}). Please try again with the CodeSHA256 in $LATEST.`);
    }
    const before = this.store.listVersions(name).length;
    const record = this.store.publishVersion(name, description);
    const published = this.store.listVersions(name).length > before;
    return ok(201, this.configuration(record), published ? { functionName: name, change: { kind: 'published', version: record.version } } : undefined);
  }

  private listVersions(route: Route, query: URLSearchParams): Outcome {
    const name = this.unqualified(route);
    const v = new Validator();
    const maxItems = v.maxItems(query);
    v.done();
    this.latest(name);
    const items = this.store.listVersions(name).map((r) => ({ key: versionKey(r), r })).sort(byKey);
    const { page, next } = paginate(items, query.get('Marker'), maxItems, PAGE_CAP);
    const Versions = page.map(({ r }) => this.configuration(r, { qualified: true }));
    return ok(200, next === undefined ? { Versions } : { Versions, NextMarker: next });
  }

  // ── aliases ───────────────────────────────────────────────────────────

  private createAlias(route: Route, body: Json): Outcome {
    const name = this.unqualified(route);
    const v = new Validator();
    const alias = v.string(body, 'Name', { required: true, max: 128, pattern: ALIAS_NAME, patternText: '(?!^[0-9]+$)([a-zA-Z0-9-_]+)' });
    const version = v.string(body, 'FunctionVersion', { required: true, max: 1024, pattern: VERSION, patternText: '(\\$LATEST|[0-9]+)' });
    const description = v.string(body, 'Description', { max: 256 });
    const weights = v.routing(body);
    v.done();
    this.latest(name);
    if (this.store.getAlias(name, alias!)) throw new ApiError(409, 'ResourceConflictException', `Alias already exists: ${this.arn(name, alias)}`);
    const record = this.putAlias(name, alias!, version!, description ?? '', weights ?? {});
    return ok(201, this.aliasConfiguration(record), { functionName: name, change: { kind: 'alias', alias: alias! } });
  }

  private getAlias(route: Route): Outcome {
    const name = this.unqualified(route);
    return ok(200, this.aliasConfiguration(this.alias(name, route)));
  }

  private updateAlias(route: Route, body: Json): Outcome {
    const name = this.unqualified(route);
    const v = new Validator();
    const version = v.string(body, 'FunctionVersion', { max: 1024, pattern: VERSION, patternText: '(\\$LATEST|[0-9]+)' });
    const description = v.string(body, 'Description', { max: 256 });
    const weights = v.routing(body);
    const revisionId = v.string(body, 'RevisionId');
    v.done();
    const current = this.alias(name, route);
    if (revisionId !== undefined && revisionId !== current.revisionId) throw preconditionFailed('GetAlias');
    const record = this.putAlias(name, current.name, version ?? current.functionVersion, description ?? current.description,
      weights ?? current.additionalVersionWeights);
    return ok(200, this.aliasConfiguration(record), { functionName: name, change: { kind: 'alias', alias: current.name } });
  }

  private listAliases(route: Route, query: URLSearchParams): Outcome {
    const name = this.unqualified(route);
    const v = new Validator();
    const version = query.get('FunctionVersion');
    if (version !== null && !VERSION.test(version)) v.fail('functionVersion', version, 'Member must satisfy regular expression pattern: (\\$LATEST|[0-9]+)');
    const maxItems = v.maxItems(query);
    v.done();
    this.latest(name);
    const items = this.store.listAliases(name)
      .filter((a) => version === null || a.functionVersion === version || version in a.additionalVersionWeights)
      .map((a) => ({ key: a.name, a })).sort(byKey);
    const { page, next } = paginate(items, query.get('Marker'), maxItems, 10_000);
    const Aliases = page.map(({ a }) => this.aliasConfiguration(a));
    return ok(200, next === undefined ? { Aliases } : { Aliases, NextMarker: next });
  }

  private deleteAlias(route: Route): Outcome {
    const name = this.unqualified(route);
    const alias = this.alias(name, route);
    this.store.deleteAlias(name, alias.name);
    return ok(204, undefined, { functionName: name, change: { kind: 'alias', alias: alias.name } });
  }

  private putAlias(functionName: string, name: string, functionVersion: string, description: string, weights: Readonly<Record<string, number>>): AliasRecord {
    if (!this.store.getVersion(functionName, functionVersion)) throw notFound(this.arn(functionName, functionVersion));
    const extra = Object.keys(weights);
    if (extra.length > 0 && functionVersion === LATEST) throw invalid('$LATEST is not supported for an alias pointing to more than 1 version');
    if (extra.length > 1) throw invalid(`An alias can route to at most one additional version (got ${extra.length}: ${extra.join(', ')})`);
    for (const x of extra) {
      if (x === functionVersion) throw invalid(`The additional version ${x} is the alias's own FunctionVersion: route to a different version`);
      if (!this.store.getVersion(functionName, x)) throw notFound(this.arn(functionName, x));
    }
    try {
      return this.store.putAlias({ functionName, name, functionVersion, description, additionalVersionWeights: weights });
    } catch (e) {
      // The store checks again what is checked above; anything it still refuses is a bad request.
      throw invalid((e as Error).message);
    }
  }

  private alias(functionName: string, route: Route): AliasRecord {
    let alias: string;
    try { alias = decodeURIComponent(route.rawAlias ?? ''); } catch { alias = route.rawAlias ?? ''; }
    this.latest(functionName);
    const record = this.store.getAlias(functionName, alias);
    if (!record) throw new ApiError(404, 'ResourceNotFoundException', `Alias not found: ${this.arn(functionName, alias)}`);
    return record;
  }

  // ── shared ────────────────────────────────────────────────────────────

  /** The function and qualifier of a request (from `name:qualifier` or `?Qualifier=`); they must agree when both are given. */
  private target(route: Route, query: URLSearchParams): { name: string; qualifier?: string } {
    const parsed = functionNameOf(route.rawFunction ?? '');
    if (!parsed || !FUNCTION_NAME.test(parsed.name)) {
      throw validation([failure('functionName', parsed ? decodeSafe(route.rawFunction ?? '') : route.rawFunction, `Member must satisfy regular expression pattern: ${FUNCTION_NAME_PATTERN}`)]);
    }
    const q = query.get('Qualifier') ?? undefined;
    if (q !== undefined && parsed.qualifier !== undefined && q !== parsed.qualifier) {
      throw invalid('The derived qualifier from the function name does not match the specified qualifier.');
    }
    const qualifier = q ?? parsed.qualifier;
    if (qualifier !== undefined && !/^[a-zA-Z0-9$_-]{1,128}$/.test(qualifier)) {
      throw validation([failure('qualifier', qualifier, 'Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)')]);
    }
    return qualifier === undefined ? { name: parsed.name } : { name: parsed.name, qualifier };
  }

  /** The function name of an operation on $LATEST / the function itself (a qualifier other than $LATEST is refused). */
  private unqualified(route: Route): string {
    const { name, qualifier } = this.target(route, new URLSearchParams());
    if (qualifier !== undefined && qualifier !== LATEST) {
      throw invalid(`This operation applies to the function, not to version or alias ${qualifier}: use the unqualified name ${name}`);
    }
    return name;
  }

  private latest(name: string): VersionRecord {
    const r = this.store.getVersion(name, LATEST);
    if (!r) throw notFound(this.arn(name));
    return r;
  }

  /** $LATEST, a version or an alias's version. */
  private resolve(name: string, qualifier: string | undefined): VersionRecord {
    if (qualifier === undefined) return this.latest(name);
    let version = qualifier;
    if (!VERSION.test(qualifier)) {
      const alias = this.store.getAlias(name, qualifier);
      if (!alias) throw notFound(this.arn(name, qualifier));
      version = alias.functionVersion;
    }
    const r = this.store.getVersion(name, version);
    if (!r) throw notFound(this.arn(name, qualifier));
    return r;
  }

  private checkRevision(latest: VersionRecord, revisionId: string | undefined, getter: string): void {
    if (revisionId !== undefined && revisionId !== revisionOf(latest)) throw preconditionFailed(getter);
  }

  /** Decodes `Code.ZipFile` / `ZipFile` (base64) and stores it; refuses what Nimbus cannot run. */
  private storeZip(code: Json): { sha256: string; size: number } {
    if (code.S3Bucket !== undefined || code.S3Key !== undefined || code.ImageUri !== undefined) {
      throw invalid('Nimbus takes function code only as a base64 ZipFile: S3Bucket/S3Key and ImageUri are not supported');
    }
    const text = code.ZipFile;
    if (text === undefined || text === null || text === '') {
      throw invalid('Please provide the function code as a .zip file in ZipFile (base64)');
    }
    if (typeof text !== 'string' || !BASE64.test(text)) throw invalid('ZipFile must be the .zip file in base64');
    const zip = Buffer.from(text, 'base64');
    if (zip.length > MAX_ZIP_BYTES) {
      throw new ApiError(413, 'RequestEntityTooLargeException', `Zipped file size (${zip.length} bytes) exceeds the ${MAX_ZIP_BYTES}-byte limit of a direct upload`);
    }
    try {
      return this.store.putArtifact(zip);
    } catch {
      throw invalid('Could not unzip uploaded file. Please check your file, then try to upload again.');
    }
  }

  /** Handler, Runtime, Role, Description, Timeout, MemorySize, Environment of a create or update body. */
  private readConfigFields(v: Validator, body: Json) {
    const environment = v.object(body, 'Environment');
    let variables: Record<string, string> | undefined;
    if (environment !== undefined) {
      const vars = environment.Variables ?? {};
      if (vars === null || typeof vars !== 'object' || Array.isArray(vars)) {
        v.fail('environment.variables', vars, 'Member must be a map of strings');
      } else {
        variables = {};
        for (const [k, val] of Object.entries(vars as Json)) {
          if (!ENV_KEY.test(k)) v.fail('environment.variables', k, 'Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]');
          else if (typeof val !== 'string') v.fail('environment.variables', val, `Member ${k} must be a string`);
          else variables[k] = val;
        }
        const reserved = Object.keys(variables).filter((k) => RESERVED_ENV.has(k));
        if (reserved.length > 0) {
          throw invalid(`Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: ${reserved.join(',')}`);
        }
        const measured = JSON.stringify(variables);
        if (Buffer.byteLength(measured) > MAX_ENVIRONMENT_BYTES) {
          throw invalid(`Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: ${measured}`);
        }
      }
    }
    const runtime = v.string(body, 'Runtime');
    if (runtime !== undefined) languageOf(runtime);
    return {
      handler: v.string(body, 'Handler', { max: 128, pattern: HANDLER, patternText: '[^\\s]+' }),
      runtime,
      role: v.string(body, 'Role'),
      description: v.string(body, 'Description', { max: 256 }),
      timeout: v.integer(body, 'Timeout', 1, 900),
      memorySize: v.integer(body, 'MemorySize', 128, 10240),
      environment: variables,
    };
  }

  /**
   * A FunctionConfiguration
   * (https://docs.aws.amazon.com/lambda/latest/api/API_FunctionConfiguration.html).
   * FunctionArn is qualified for a published version, for an explicit
   * qualifier (GetFunction with Qualifier: the alias's ARN for an alias),
   * and in version listings. ListFunctions leaves out the state fields, as
   * Lambda does.
   */
  private configuration(r: VersionRecord, opts: { qualifier?: string; qualified?: boolean; listing?: boolean } = {}): Json {
    const c = r.config as FunctionConfig & { role?: string };
    const arnQualifier = opts.qualifier ?? (opts.qualified || r.version !== LATEST ? r.version : undefined);
    const out: Json = {
      FunctionName: r.functionName,
      FunctionArn: this.arn(r.functionName, arnQualifier),
      Runtime: c.runtime,
      Role: c.role ?? this.defaultRole,
      Handler: c.handler,
      CodeSize: r.codeSize,
      Description: r.description,
      Timeout: c.timeout,
      MemorySize: c.memorySize,
      LastModified: lambdaTime(r.lastModified),
      CodeSha256: base64Sha(r.codeSha256),
      Version: r.version,
    };
    if (Object.keys(c.environment).length > 0) out.Environment = { Variables: { ...c.environment } };
    out.TracingConfig = { Mode: 'PassThrough' };
    out.RevisionId = revisionOf(r);
    if (!opts.listing) {
      out.State = 'Active';
      out.LastUpdateStatus = 'Successful';
    }
    out.PackageType = 'Zip';
    out.Architectures = ['x86_64'];
    out.EphemeralStorage = { Size: 512 };
    out.LoggingConfig = { LogFormat: 'Text', LogGroup: `/aws/lambda/${r.functionName}` };
    return out;
  }

  /** An AliasConfiguration (https://docs.aws.amazon.com/lambda/latest/api/API_AliasConfiguration.html); RoutingConfig only when it routes. */
  private aliasConfiguration(a: AliasRecord): Json {
    const out: Json = {
      AliasArn: this.arn(a.functionName, a.name),
      Name: a.name,
      FunctionVersion: a.functionVersion,
      Description: a.description,
    };
    if (Object.keys(a.additionalVersionWeights).length > 0) out.RoutingConfig = { AdditionalVersionWeights: { ...a.additionalVersionWeights } };
    out.RevisionId = a.revisionId;
    return out;
  }
}

// ── validation ──────────────────────────────────────────────────────────

/**
 * Collects constraint failures and reports them together, as Lambda does:
 * "2 validation errors detected: Value '64' at 'memorySize' failed to
 * satisfy constraint: …; Value …".
 */
class Validator {
  private readonly failures: string[] = [];

  fail(field: string, value: unknown, constraint: string): void {
    this.failures.push(failure(field, value, constraint));
  }

  done(): void {
    if (this.failures.length > 0) throw validation(this.failures);
  }

  string(o: Json, key: string, c: { required?: boolean; max?: number; pattern?: RegExp; patternText?: string } = {}): string | undefined {
    const value = o[key];
    const field = camel(key);
    if (value === undefined || value === null) {
      if (c.required) this.fail(field, null, 'Member must not be null');
      return undefined;
    }
    if (typeof value !== 'string') { this.fail(field, value, 'Member must be a string'); return undefined; }
    if (c.max !== undefined && value.length > c.max) { this.fail(field, value, `Member must have length less than or equal to ${c.max}`); return undefined; }
    if (c.pattern && !c.pattern.test(value)) { this.fail(field, value, `Member must satisfy regular expression pattern: ${c.patternText}`); return undefined; }
    return value;
  }

  integer(o: Json, key: string, min: number, max: number): number | undefined {
    const value = o[key];
    if (value === undefined || value === null) return undefined;
    const field = camel(key);
    if (typeof value !== 'number' || !Number.isInteger(value)) { this.fail(field, value, 'Member must be an integer'); return undefined; }
    if (value < min) { this.fail(field, value, `Member must have value greater than or equal to ${min}`); return undefined; }
    if (value > max) { this.fail(field, value, `Member must have value less than or equal to ${max}`); return undefined; }
    return value;
  }

  boolean(o: Json, key: string): boolean | undefined {
    const value = o[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'boolean') { this.fail(camel(key), value, 'Member must be a boolean'); return undefined; }
    return value;
  }

  object(o: Json, key: string, c: { required?: boolean } = {}): Json | undefined {
    const value = o[key];
    if (value === undefined || value === null) {
      if (c.required) this.fail(camel(key), null, 'Member must not be null');
      return undefined;
    }
    if (typeof value !== 'object' || Array.isArray(value)) { this.fail(camel(key), value, 'Member must be a structure'); return undefined; }
    return value as Json;
  }

  /** RoutingConfig.AdditionalVersionWeights: version → weight 0–1 (AliasRoutingConfiguration). */
  routing(o: Json): Record<string, number> | undefined {
    const routing = this.object(o, 'RoutingConfig');
    if (routing === undefined) return undefined;
    const weights = routing.AdditionalVersionWeights ?? {};
    if (weights === null || typeof weights !== 'object' || Array.isArray(weights)) {
      this.fail('routingConfig.additionalVersionWeights', weights, 'Member must be a map');
      return undefined;
    }
    const out: Record<string, number> = {};
    for (const [version, w] of Object.entries(weights as Json)) {
      if (!PUBLISHED_VERSION.test(version)) {
        this.fail('routingConfig.additionalVersionWeights', version, 'Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [0-9]+]');
      } else if (typeof w !== 'number' || !(w >= 0 && w <= 1)) {
        this.fail('routingConfig.additionalVersionWeights', w, 'Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have value greater than or equal to 0.0]');
      } else out[version] = w;
    }
    return out;
  }

  /** `MaxItems` of a list operation: 1–10000. */
  maxItems(query: URLSearchParams): number | undefined {
    const raw = query.get('MaxItems');
    if (raw === null) return undefined;
    const n = Number(raw);
    if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n)) { this.fail('maxItems', raw, 'Member must be an integer'); return undefined; }
    if (n < 1) { this.fail('maxItems', raw, 'Member must have value greater than or equal to 1'); return undefined; }
    if (n > 10_000) { this.fail('maxItems', raw, 'Member must have value less than or equal to 10000'); return undefined; }
    return n;
  }
}

function failure(field: string, value: unknown, constraint: string): string {
  const shown = value === null || value === undefined ? 'null' : `'${typeof value === 'string' ? value : JSON.stringify(value)}'`;
  return `Value ${shown} at '${field}' failed to satisfy constraint: ${constraint}`;
}

function validation(failures: readonly string[]): ApiError {
  const n = failures.length;
  return new ApiError(400, 'ValidationException', `${n} validation error${n === 1 ? '' : 's'} detected: ${failures.join('; ')}`);
}

function invalid(message: string): ApiError {
  return new ApiError(400, 'InvalidParameterValueException', message);
}

function notFound(arn: string): ApiError {
  return new ApiError(404, 'ResourceNotFoundException', `Function not found: ${arn}`);
}

function preconditionFailed(getter: string): ApiError {
  return new ApiError(412, 'PreconditionFailedException', `The Revision Id provided does not match the latest Revision Id. Call the ${getter} API to retrieve the latest Revision Id`);
}

function parseBody(body: Buffer): Json {
  if (body.length === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw new ApiError(400, 'InvalidRequestContentException', `Could not parse request body into json: ${(e as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ApiError(400, 'InvalidRequestContentException', 'Could not parse request body into json: the body must be a JSON object');
  }
  return value as Json;
}

/** The language of a runtime Nimbus supports; InvalidParameterValueException for any other. */
function languageOf(runtime: string): Language {
  if (NODE_RUNTIME.test(runtime)) return 'node';
  if (PYTHON_RUNTIME.test(runtime)) return 'python';
  throw invalid(`The runtime parameter of ${runtime} is not supported by Nimbus: use a Node.js runtime (nodejsNN.x, e.g. nodejs20.x) or a Python runtime (python3.NN, e.g. python3.12)`);
}

function camel(key: string): string {
  return key[0].toLowerCase() + key.slice(1);
}

function decodeSafe(s: string): string {
  try { return decodeURIComponent(s); } catch { return s; }
}

// ── formats ─────────────────────────────────────────────────────────────

/** Lambda's timestamp format: `2024-01-01T00:00:00.000+0000`. */
function lambdaTime(iso: string): string {
  return iso.endsWith('Z') ? `${iso.slice(0, -1)}+0000` : iso;
}

/** The store keeps SHA-256 in hex; Lambda reports it in base64. */
function base64Sha(hex: string): string {
  return Buffer.from(hex, 'hex').toString('base64');
}

/** A revision id that changes with every update of a version: a UUID-shaped digest of what it holds. */
function revisionOf(r: VersionRecord): string {
  const h = createHash('sha256').update(JSON.stringify([r.functionName, r.version, r.lastModified, r.codeSha256, r.config, r.description])).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** Sorts versions of a listing: by function, then $LATEST first and numbers in order. */
function versionKey(r: VersionRecord): string {
  const num = r.version === LATEST ? 0 : Number(r.version);
  return `${r.functionName}\u0000${String(num).padStart(10, '0')}`;
}

function byKey(a: { key: string }, b: { key: string }): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/**
 * One page of a listing sorted by key. The marker is the key of the first
 * item of the next page (base64url), so a page stays right when items before
 * it are deleted between calls.
 */
function paginate<T extends { key: string }>(items: readonly T[], marker: string | null, maxItems: number | undefined, cap: number): { page: T[]; next?: string } {
  let start = 0;
  if (marker !== null && marker !== '') {
    const key = Buffer.from(marker, 'base64url').toString('utf8');
    if (Buffer.from(key, 'utf8').toString('base64url') !== marker) throw invalid(`Invalid Marker: ${marker}`);
    start = items.findIndex((i) => i.key >= key);
    if (start < 0) start = items.length;
  }
  const size = Math.min(maxItems ?? cap, cap);
  const page = items.slice(start, start + size);
  const after = items[start + size];
  return after === undefined ? { page } : { page, next: Buffer.from(after.key, 'utf8').toString('base64url') };
}

function ok(status: number, body: unknown, change?: Outcome['change']): Outcome {
  return change ? { response: { status, body }, change } : { response: { status, body } };
}
