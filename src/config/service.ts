/**
 * serverless.yml (already parsed) → ServiceSpec: reads every key Nimbus
 * uses, applies the Serverless Framework's defaults, validates against AWS
 * Lambda / API Gateway limits, and warns once per key it does not use.
 * https://www.serverless.com/framework/docs/providers/aws/guide/serverless.yml
 */
import { relative, isAbsolute, sep } from 'node:path';
import { LAMBDA_ALIAS_NAME, LAMBDA_FUNCTION_NAME, MAX_INVOCATIONS_PER_INSTANCE, NimbusError, RESERVED_ENVIRONMENT } from '../core/index.js';
import type { CorsConfig, FunctionSpec, Language, PayloadFormatVersion, RouteSpec, ServiceSpec } from '../core/index.js';
import type { ConfigContext } from './context.js';
import { findHandlerFile, handlerCandidates, splitHandler } from './handlers.js';
import {
  DEFAULT_CORS_HEADERS, HTTP_ANY_METHODS, mergeRestCors, normaliseMethod, normaliseRoutePath, routeShape, union,
} from './routes.js';
import { formatPath, type Segment } from './source.js';
import { isPlainObject, type Resolver } from './variables.js';
import {
  emptyDrafts, readEventInvokeConfig, readResources, readScheduleEvent, readSnsEvent, readSqsEvent, resolveResources, resourceReferences,
  type EventDrafts, type ScheduleValidator,
} from './events.js';

const NOT_USED = 'not used by Nimbus yet (ignored)';
const UNKNOWN = 'unknown key (ignored)';

/** Top-level keys that only matter to the Serverless Framework's own tooling: ignored without a word. */
const TOP_SILENT = new Set([
  'frameworkVersion', 'custom', 'org', 'app', 'console', 'dashboard', 'license', 'configValidationMode',
  'variablesResolutionMode', 'unresolvedVariablesNotificationMode', 'deprecationNotificationMode', 'disabledDeprecations',
]);
/** Top-level keys that change what gets deployed, which Nimbus does not do (yet). */
const TOP_NOT_USED = new Set(['plugins', 'layers', 'outputs', 'params', 'stages', 'useDotenv', 'build']);

const PROVIDER_USED = new Set(['name', 'runtime', 'stage', 'region', 'memorySize', 'timeout', 'environment', 'httpApi', 'apiGateway']);
const PROVIDER_NOT_USED = new Set([
  'iam', 'iamRoleStatements', 'iamManagedPolicies', 'role', 'rolePermissionsBoundary', 'cfnRole', 'tags', 'stackTags',
  'logs', 'logRetentionInDays', 'logDataProtectionPolicy', 'deploymentBucket', 'deploymentPrefix', 'deploymentMethod',
  'versionFunctions', 'architecture', 'profile', 'stackName', 'tracing', 'vpc', 'layers', 'kmsKeyArn', 'lambdaHashingVersion',
  'runtimeManagement', 'disableRollback', 'rollbackConfiguration', 'notificationArns', 'stackParameters', 'stackPolicy',
  'websocketsApiName', 'websocketsApiRouteSelectionExpression', 'websocketsDescription', 'websocket', 'eventBridge', 's3', 'alb',
  'ecr', 'cloudFront', 'apiName', 'endpointType', 'usagePlan', 'apiKeys', 'resourcePolicy', 'environmentFile', 'vpcEndpointIds',
  'ephemeralStorage', 'snapStart', 'kafka', 'logging', 'sns', 'sqs', 'timezone', 'build',
]);
const HTTP_API_USED = new Set(['payload', 'cors']);
const HTTP_API_NOT_USED = new Set(['name', 'id', 'authorizers', 'disableDefaultEndpoint', 'metrics', 'shouldStartNameWithService', 'useProviderTags']);
const API_GATEWAY_USED = new Set(['binaryMediaTypes']);
const API_GATEWAY_NOT_USED = new Set([
  'apiKeys', 'usagePlan', 'restApiId', 'restApiRootResourceId', 'restApiResources', 'websocketApiId', 'minimumCompressionSize',
  'resourcePolicy', 'shouldStartNameWithService', 'description', 'metrics', 'disableDefaultEndpoint', 'request', 'apiKeySourceType',
  'timeoutInMillis', 'stage',
]);

const FUNCTION_USED = new Set([
  'handler', 'name', 'runtime', 'memorySize', 'timeout', 'environment', 'reservedConcurrency', 'provisionedConcurrency', 'events', 'httpApi', 'alias',
  'perExecutionEnvironmentMaxConcurrency', 'maximumRetryAttempts', 'maximumEventAge', 'destinations',
]);
const FUNCTION_SILENT = new Set(['description']);
const FUNCTION_NOT_USED = new Set([
  'role', 'tags', 'layers', 'vpc', 'package', 'architecture', 'ephemeralStorage', 'tracing', 'onError', 'url', 'condition', 'dependsOn', 'logRetentionInDays', 'kmsKeyArn', 'disableLogs',
  'logs', 'snapStart', 'runtimeManagement', 'fileSystemConfig', 'iamRoleStatements', 'iamRoleStatementsName',
  'iamRoleStatementsInherit', 'versionFunction', 'image', 'concurrencyAutoscaling', 'logDataProtectionPolicy', 'timezone', 'build',
]);

const HTTP_EVENT_NOT_USED = new Set([
  'private', 'authorizer', 'request', 'response', 'integration', 'async', 'operationId', 'connectionId', 'connectionType',
  'caching', 'documentation', 'reqValidatorName', 'statusCodes',
]);
const HTTP_API_EVENT_NOT_USED = new Set(['authorizer']);
/** Event types of the Serverless Framework that Nimbus does not serve in dev (yet). */
const OTHER_EVENT_TYPES = new Set([
  's3', 'stream', 'websocket', 'alb', 'alexaSkill', 'alexaSmartHome', 'iot', 'iotFleetProvisioning',
  'cloudwatchEvent', 'cloudwatchLog', 'cognitoUserPool', 'eventBridge', 'kafka', 'activemq', 'rabbitmq', 'msk', 'cloudFront',
]);

const SERVICE_RE = /^[A-Za-z][A-Za-z0-9-]*$/;
const FUNCTION_KEY_RE = /^[A-Za-z0-9_-]+$/;
/** Lambda function names: https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html#lambda-CreateFunction-request-FunctionName */
const FUNCTION_NAME_RE = LAMBDA_FUNCTION_NAME;
/** Lambda environment variable keys: a letter, then letters, digits and _. */
const ENV_KEY_RE = /^[A-Za-z][A-Za-z0-9_]*$/;
/** Keys the Lambda runtime sets itself and refuses in a function's configuration. https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime */
const RESERVED_ENV_KEYS = RESERVED_ENVIRONMENT;

const NODE_RUNTIME_RE = /^nodejs\d+\.x$/;
const PYTHON_RUNTIME_RE = /^python3\.\d+$/;
const NUMERIC_STRING_RE = /^\s*-?\d+(\.\d+)?\s*$/;

const MEMORY_ALLOWED = 'an integer number of MB from 128 to 10240';
const TIMEOUT_ALLOWED = 'a number of seconds above 0 and at most 900 (AWS itself takes whole seconds from 1 to 900)';

export interface BuildInput {
  readonly ctx: ConfigContext;
  readonly resolver: Resolver;
  /** Absolute path of the serverless.yml. */
  readonly configPath: string;
  /** Absolute path of its folder: the code folder of every function. */
  readonly dir: string;
  readonly checkHandlers: boolean;
  /** Checks schedule expressions fully (the events part's parser); without it only their form is checked. */
  readonly validateSchedule?: ScheduleValidator;
}

interface Defaults {
  readonly runtime?: { readonly name: string; readonly language: Language };
  readonly memorySize: number;
  readonly timeout: number;
  readonly environment: Readonly<Record<string, string>>;
  readonly payload: PayloadFormatVersion;
}

interface RouteDraft {
  api: RouteSpec['api'];
  method: string;
  path: string;
  functionKey: string;
  payloadFormatVersion: PayloadFormatVersion;
  cors?: CorsConfig;
  /** Where it was declared, for duplicate-route messages. */
  at: Segment[];
}

/** Builds the (not yet frozen) ServiceSpec. Throws NimbusError on the first problem. */
export function buildServiceSpec(input: BuildInput): ServiceSpec {
  const { ctx, resolver: r } = input;
  const root = r.node([]);
  if (root.value === null || root.value === undefined) {
    throw ctx.invalid([], null, 'the file is empty', 'a mapping with at least service, provider and functions');
  }
  if (!isPlainObject(root.value)) {
    throw ctx.invalid([], root.value, 'the top level is not a mapping of keys', 'a mapping with at least service, provider and functions');
  }
  const topKeys = Object.keys(root.value);

  for (const key of topKeys) {
    if (key === 'service' || key === 'provider' || key === 'functions' || key === 'package' || TOP_SILENT.has(key)) continue;
    if (key === 'resources') {
      // Queues and topics are Nimbus's to make; other resources (tables, buckets, …) are not.
      const res = r.node(['resources']).value;
      if (isPlainObject(res)) for (const k of Object.keys(res)) if (k !== 'Resources') ctx.warn(['resources', k], NOT_USED);
      continue;
    }
    ctx.warn([key], TOP_NOT_USED.has(key) ? NOT_USED : UNKNOWN);
  }

  const service = readService(ctx, r);
  const stage = r.stage();
  const region = r.region();
  // Queues and topics first: an environment may refer to them (`!Ref OrdersQueue` is its URL).
  const declared = readResources(ctx, r);
  ctx.reference = resourceReferences(ctx, r, declared, region);
  const provider = readProvider(ctx, r);

  const functions: FunctionSpec[] = [];
  const drafts: RouteDraft[] = [];
  const fnNode = r.node(['functions']);
  const fnMap = fnNode.value;
  if (fnMap !== undefined && fnMap !== null && !isPlainObject(fnMap)) {
    throw ctx.invalid(['functions'], fnMap, 'functions is not a mapping', 'a mapping of function keys to their settings, e.g. functions: { hello: { handler: handler.hello } }');
  }
  const fnKeys = isPlainObject(fnMap) ? Object.keys(fnMap) : [];
  if (fnKeys.length === 0) ctx.warn(['functions'], 'no functions defined; nothing to serve');

  const names = new Map<string, string>();
  const events = emptyDrafts();
  const topicNames = new Map<string, string | undefined>();
  for (const key of fnKeys) {
    const fn = readFunction(input, key, service, stage, region, provider, drafts, events, topicNames);
    const other = names.get(fn.name);
    if (other !== undefined) {
      throw ctx.invalid(['functions', key, 'name'], fn.name, `function ${other} has the same name`, 'a Lambda function name used by one function only');
    }
    names.set(fn.name, key);
    functions.push(fn);
  }

  // Asynchronous invocation settings may name other functions of the service as destinations.
  const keyToName = new Map(functions.map((f) => [f.key, f.name]));
  for (let i = 0; i < functions.length; i++) {
    const config = readEventInvokeConfig(ctx, r, ['functions', functions[i].key], keyToName);
    if (config) {
      const queueName = (n: string) => declared.queues.get(n)?.name ?? n;
      const fix = (d: typeof config.onSuccess) => (d && d.kind === 'queue' ? { ...d, name: queueName(d.name) } : d);
      const eventInvokeConfig = { ...config, ...(config.onSuccess ? { onSuccess: fix(config.onSuccess) } : {}), ...(config.onFailure ? { onFailure: fix(config.onFailure) } : {}) };
      functions[i] = { ...functions[i], eventInvokeConfig };
    }
  }
  const sources = resolveResources(ctx, events, declared, topicNames);
  for (const f of functions) {
    for (const d of [f.eventInvokeConfig?.onSuccess, f.eventInvokeConfig?.onFailure]) {
      if (d?.kind === 'queue' && !sources.queues.some((q) => q.name === d.name)) {
        sources.queues.push({ name: d.name, fifo: d.name.endsWith('.fifo'), visibilityTimeout: 30, messageRetentionPeriod: 345_600, delaySeconds: 0 });
      }
      if (d?.kind === 'topic' && !sources.topics.some((t) => t.name === d.name)) sources.topics.push({ name: d.name });
    }
  }

  checkDuplicateRoutes(ctx, drafts);
  const routes = finishRoutes(drafts);
  const httpApiCors = readHttpApiCors(ctx, r, drafts);
  const binaryMediaTypes = readStringList(ctx, r, ['provider', 'apiGateway', 'binaryMediaTypes'], 'a list of media types, e.g. [image/png, "*/*"]') ?? [];
  const packagePatterns = readPackage(ctx, r);

  return {
    service,
    configPath: input.configPath,
    dir: input.dir,
    stage,
    region,
    functions,
    routes,
    ...(httpApiCors ? { httpApiCors } : {}),
    binaryMediaTypes,
    schedules: events.schedules,
    queues: sources.queues,
    queueEvents: sources.queueEvents,
    topics: sources.topics,
    topicEvents: sources.topicEvents,
    packagePatterns,
    warnings: ctx.warnings(),
  };
}

/**
 * `package.patterns`: globs of the files `nimbus deploy` packages, `!` to
 * exclude, applied in order (the Serverless Framework's rule). `individually`
 * and `artifact` are not used: one package serves every function.
 * https://www.serverless.com/framework/docs/providers/aws/guide/packaging
 */
function readPackage(ctx: ConfigContext, r: Resolver): string[] {
  const pkg = r.value(['package']);
  if (pkg === undefined || pkg === null) return [];
  if (!isPlainObject(pkg)) throw ctx.invalid(['package'], pkg, 'package is not a mapping', 'a mapping such as { patterns: ["!tests/**"] }');
  for (const key of Object.keys(pkg)) if (key !== 'patterns') ctx.warn(['package', key], NOT_USED);
  return readStringList(ctx, r, ['package', 'patterns'], 'a list of glob patterns, e.g. ["!tests/**", "!*.md"]') ?? [];
}

function readService(ctx: ConfigContext, r: Resolver): string {
  const node = r.node(['service']);
  let path: Segment[] = ['service'];
  let value = node.value;
  if (isPlainObject(value)) {
    // v1 style: service: { name: my-service, ... }
    for (const key of Object.keys(value)) if (key !== 'name') ctx.warn(['service', key], NOT_USED);
    path = ['service', 'name'];
    value = r.value(path);
  }
  if (value === undefined || value === null) {
    throw ctx.invalid(path, value, 'missing: every serverless.yml names its service', 'a name of letters, digits and -, starting with a letter, e.g. service: my-api');
  }
  if (typeof value !== 'string' || !SERVICE_RE.test(value)) {
    throw ctx.invalid(path, value, 'not a valid service name', 'a name of letters, digits and -, starting with a letter, e.g. service: my-api');
  }
  return value;
}

function readProvider(ctx: ConfigContext, r: Resolver): Defaults {
  const node = r.node(['provider']);
  const p = node.value;
  if (p === undefined || p === null) return { memorySize: 1024, timeout: 6, environment: {}, payload: '2.0' };
  if (!isPlainObject(p)) throw ctx.invalid(['provider'], p, 'provider is not a mapping', 'a mapping such as provider: { name: aws, runtime: nodejs20.x }');

  for (const key of Object.keys(p)) {
    if (PROVIDER_USED.has(key)) continue;
    ctx.warn(['provider', key], PROVIDER_NOT_USED.has(key) ? NOT_USED : UNKNOWN);
  }

  const name = r.value(['provider', 'name']);
  if (name !== undefined && name !== null && name !== 'aws') {
    throw ctx.invalid(['provider', 'name'], name, 'Nimbus serves AWS Lambda functions only', 'aws');
  }
  const runtimeValue = r.value(['provider', 'runtime']);
  const runtime = runtimeValue === undefined || runtimeValue === null ? undefined : readRuntime(ctx, ['provider', 'runtime'], runtimeValue);
  const memorySize = readMemory(ctx, r, ['provider', 'memorySize']) ?? 1024;
  const timeout = readTimeout(ctx, r, ['provider', 'timeout']) ?? 6;
  const environment = readEnvironment(ctx, r, ['provider', 'environment']) ?? {};

  let payload: PayloadFormatVersion = '2.0';
  const httpApi = r.node(['provider', 'httpApi']).value;
  if (httpApi !== undefined && httpApi !== null) {
    if (!isPlainObject(httpApi)) throw ctx.invalid(['provider', 'httpApi'], httpApi, 'provider.httpApi is not a mapping', 'a mapping such as { payload: "2.0", cors: true }');
    for (const key of Object.keys(httpApi)) {
      if (!HTTP_API_USED.has(key)) ctx.warn(['provider', 'httpApi', key], HTTP_API_NOT_USED.has(key) ? NOT_USED : UNKNOWN);
    }
    payload = readPayload(ctx, r, ['provider', 'httpApi', 'payload']) ?? '2.0';
  }
  const apiGateway = r.node(['provider', 'apiGateway']).value;
  if (apiGateway !== undefined && apiGateway !== null) {
    if (!isPlainObject(apiGateway)) throw ctx.invalid(['provider', 'apiGateway'], apiGateway, 'provider.apiGateway is not a mapping', 'a mapping such as { binaryMediaTypes: ["*/*"] }');
    for (const key of Object.keys(apiGateway)) {
      if (!API_GATEWAY_USED.has(key)) ctx.warn(['provider', 'apiGateway', key], API_GATEWAY_NOT_USED.has(key) ? NOT_USED : UNKNOWN);
    }
  }
  return { ...(runtime ? { runtime } : {}), memorySize, timeout, environment, payload };
}

function readFunction(
  input: BuildInput, key: string, service: string, stage: string, region: string, defaults: Defaults, drafts: RouteDraft[],
  events: EventDrafts, topicNames: Map<string, string | undefined>,
): FunctionSpec {
  const { ctx, resolver: r } = input;
  const base: Segment[] = ['functions', key];
  if (!FUNCTION_KEY_RE.test(key)) {
    throw ctx.invalid(base, key, 'not a valid function key', 'letters, digits, - and _');
  }
  const fn = r.node(base).value;
  if (fn === undefined || fn === null) {
    throw ctx.invalid(base, fn, 'the function has no settings', 'a mapping with at least handler, e.g. { handler: handler.hello }');
  }
  if (!isPlainObject(fn)) {
    throw ctx.invalid(base, fn, 'a function is a mapping of settings', 'a mapping with at least handler, e.g. { handler: handler.hello }');
  }
  for (const k of Object.keys(fn)) {
    if (FUNCTION_USED.has(k) || FUNCTION_SILENT.has(k)) continue;
    if (k === 'image' && !('handler' in fn)) {
      throw ctx.invalid([...base, 'image'], r.node([...base, 'image']).value, 'container image functions are not supported by Nimbus', 'a handler: with a nodejs or python runtime');
    }
    ctx.warn([...base, k], FUNCTION_NOT_USED.has(k) ? NOT_USED : UNKNOWN);
  }

  // Runtime: the function's, else the provider's.
  const runtimeValue = r.value([...base, 'runtime']);
  const runtime = runtimeValue === undefined || runtimeValue === null ? defaults.runtime : readRuntime(ctx, [...base, 'runtime'], runtimeValue);
  if (!runtime) {
    throw ctx.invalid([...base, 'runtime'], undefined, `no runtime: set provider.runtime or functions.${key}.runtime`, 'nodejsNN.x (e.g. nodejs20.x) or python3.NN (e.g. python3.12)');
  }

  // Handler: required, well-formed, inside the service folder, and (optionally) present on disk.
  const handlerPath: Segment[] = [...base, 'handler'];
  const handler = r.value(handlerPath);
  if (handler === undefined || handler === null) {
    throw ctx.invalid(handlerPath, handler, 'missing: every function needs a handler', handlerAllowed(runtime.language));
  }
  if (typeof handler !== 'string') throw ctx.invalid(handlerPath, handler, 'the handler is not a string', handlerAllowed(runtime.language));
  const parts = splitHandler(handler, runtime.language);
  if (!parts) throw ctx.invalid(handlerPath, handler, 'the handler has no module or no function part', handlerAllowed(runtime.language));
  const rel = relative(input.dir, `${input.dir}${sep}${parts.module}`);
  if (rel.startsWith('..') || isAbsolute(rel)) {
    throw ctx.invalid(handlerPath, handler, 'the handler is outside the service folder', 'a path inside the folder of serverless.yml');
  }
  if (input.checkHandlers) {
    const candidates = handlerCandidates(parts, runtime.language);
    if (!findHandlerFile(input.dir, candidates)) {
      const line = ctx.lines.valueLine(handlerPath);
      throw new NimbusError('NIMBUS_ERR_HANDLER_NOT_FOUND', {
        function: key,
        handler,
        reason: `no file ${candidates.join(', ')} in ${input.dir} (${ctx.file}:${line}: ${formatPath(handlerPath)})`,
        file: ctx.file,
        line,
        path: formatPath(handlerPath),
        tried: candidates.map((c) => `${input.dir}${sep}${c}`),
      });
    }
  }

  const nameValue = r.value([...base, 'name']);
  let name: string;
  if (nameValue === undefined || nameValue === null) {
    name = `${service}-${stage}-${key}`;
    if (!FUNCTION_NAME_RE.test(name)) {
      throw ctx.invalid(base, name, `the function name ${service}-${stage}-${key} made from service, stage and key is longer than 64 characters`, `a shorter key, or set functions.${key}.name`);
    }
  } else {
    if (typeof nameValue !== 'string' || !FUNCTION_NAME_RE.test(nameValue)) {
      throw ctx.invalid([...base, 'name'], nameValue, 'not a valid Lambda function name', '1 to 64 letters, digits, - and _');
    }
    name = nameValue;
  }

  const memorySize = readMemory(ctx, r, [...base, 'memorySize']) ?? defaults.memorySize;
  const timeout = readTimeout(ctx, r, [...base, 'timeout']) ?? defaults.timeout;
  const ownEnv = readEnvironment(ctx, r, [...base, 'environment']) ?? {};
  const environment = { ...defaults.environment, ...ownEnv };
  const reserved = readCount(ctx, r, [...base, 'reservedConcurrency']);
  const provisioned = readCount(ctx, r, [...base, 'provisionedConcurrency']);
  if (reserved !== undefined && provisioned !== undefined && provisioned > reserved) {
    throw ctx.invalid([...base, 'provisionedConcurrency'], provisioned, `provisioned concurrency is above the reserved concurrency (${reserved})`, `an integer from 0 to ${reserved}`);
  }

  // Several invocations at once per instance: Lambda Managed Instances' setting, an opt-in for Node.js only.
  const at = [...base, 'perExecutionEnvironmentMaxConcurrency'];
  const perInstanceValue = r.value(at);
  let perInstance: number | undefined;
  if (perInstanceValue !== undefined && perInstanceValue !== null) {
    perInstance = asNumber(perInstanceValue);
    if (perInstance === undefined || !Number.isInteger(perInstance) || perInstance < 1 || perInstance > MAX_INVOCATIONS_PER_INSTANCE) {
      throw ctx.invalid(at, perInstanceValue, `not an integer from 1 to ${MAX_INVOCATIONS_PER_INSTANCE}`, `an integer from 1 to ${MAX_INVOCATIONS_PER_INSTANCE} (as Lambda Managed Instances allow)`);
    }
    if (runtime.language !== 'node' && perInstance > 1) {
      throw ctx.invalid(at, perInstance, `only Node.js functions run several invocations in one instance (${runtime.name} runs one per instance, in a process of its own)`, '1, or remove the key');
    }
  }

  // Nimbus's own key: the routes invoke this alias, which each deploy points at the new version.
  const aliasValue = r.node([...base, 'alias']).value;
  if (aliasValue !== undefined && aliasValue !== null && (typeof aliasValue !== 'string' || !ALIAS_NAME.test(aliasValue))) {
    throw ctx.invalid([...base, 'alias'], aliasValue, 'not a valid Lambda alias name', '1 to 128 letters, digits, - and _, not all digits (e.g. live)');
  }

  // functions.<key>.httpApi.payload overrides provider.httpApi.payload for this function's httpApi routes.
  let payload = defaults.payload;
  const fnHttpApi = r.node([...base, 'httpApi']).value;
  if (fnHttpApi !== undefined && fnHttpApi !== null) {
    if (!isPlainObject(fnHttpApi)) throw ctx.invalid([...base, 'httpApi'], fnHttpApi, 'not a mapping', 'a mapping such as { payload: "1.0" }');
    for (const k of Object.keys(fnHttpApi)) if (k !== 'payload') ctx.warn([...base, 'httpApi', k], UNKNOWN);
    payload = readPayload(ctx, r, [...base, 'httpApi', 'payload']) ?? payload;
  }

  readEvents(ctx, r, key, payload, drafts, events, topicNames, input.validateSchedule);

  return {
    key,
    name,
    handler,
    runtime: runtime.name,
    language: runtime.language,
    memorySize,
    timeout,
    environment,
    codeDir: input.dir,
    service,
    stage,
    region,
    ...(reserved !== undefined ? { reservedConcurrency: reserved } : {}),
    ...(provisioned !== undefined ? { provisionedConcurrency: provisioned } : {}),
    ...(typeof aliasValue === 'string' ? { alias: aliasValue } : {}),
    ...(perInstance !== undefined ? { perExecutionEnvironmentMaxConcurrency: perInstance } : {}),
  };
}

const ALIAS_NAME = LAMBDA_ALIAS_NAME;

function handlerAllowed(language: Language): string {
  return language === 'node'
    ? 'path/to/file.exportName relative to the serverless.yml folder, e.g. src/handler.hello'
    : 'path/to/module.function or package.module.function, e.g. src/handler.hello';
}

function readEvents(
  ctx: ConfigContext, r: Resolver, key: string, payload: PayloadFormatVersion, drafts: RouteDraft[],
  sources: EventDrafts, topicNames: Map<string, string | undefined>, validateSchedule?: ScheduleValidator,
): void {
  const path: Segment[] = ['functions', key, 'events'];
  const events = r.node(path).value;
  if (events === undefined || events === null) return;
  if (!Array.isArray(events)) throw ctx.invalid(path, events, 'events is not a list', 'a list of events, e.g. [{ httpApi: "GET /hello" }]');
  for (let i = 0; i < events.length; i++) {
    const evPath: Segment[] = [...path, i];
    const ev = r.node(evPath).value;
    if (!isPlainObject(ev) || Object.keys(ev).length !== 1) {
      throw ctx.invalid(evPath, ev, 'an event is a mapping with one key, its type', 'e.g. - http: GET hello, - httpApi: GET /hello, - schedule: rate(1 minute)');
    }
    const type = Object.keys(ev)[0];
    if (type === 'http') drafts.push(readHttpEvent(ctx, r, key, [...evPath, 'http']));
    else if (type === 'httpApi') drafts.push(readHttpApiEvent(ctx, r, key, [...evPath, 'httpApi'], payload));
    else if (type === 'schedule') readScheduleEvent(ctx, r, key, [...evPath, 'schedule'], sources, validateSchedule);
    else if (type === 'sqs') readSqsEvent(ctx, r, key, [...evPath, 'sqs'], sources);
    else if (type === 'sns') {
      const t = readSnsEvent(ctx, r, key, [...evPath, 'sns'], sources);
      if (t.displayName || !topicNames.has(t.topic)) topicNames.set(t.topic, t.displayName);
    }
    else if (OTHER_EVENT_TYPES.has(type)) ctx.warn(evPath, `event type '${type}' is not served by Nimbus yet; ignored`);
    else ctx.warn(evPath, `unknown event type '${type}'; ignored`);
  }
}

/** `http` event (REST API, payload 1.0): `GET hello/{name}` or `{ method, path, cors }`. */
function readHttpEvent(ctx: ConfigContext, r: Resolver, functionKey: string, path: Segment[]): RouteDraft {
  const ev = r.node(path).value;
  const allowed = 'METHOD path, e.g. GET users/{id}, or { method: get, path: users/{id} }';
  let method: unknown;
  let routePath: unknown;
  let methodAt = path;
  let pathAt = path;
  let cors: CorsConfig | undefined;
  if (typeof ev === 'string') {
    const words = ev.trim().split(/\s+/);
    if (words.length !== 2) throw ctx.invalid(path, ev, 'the short form of an http event is a method and a path', allowed);
    [method, routePath] = words;
  } else if (isPlainObject(ev)) {
    for (const k of Object.keys(ev)) {
      if (k === 'method' || k === 'path' || k === 'cors') continue;
      ctx.warn([...path, k], HTTP_EVENT_NOT_USED.has(k) ? NOT_USED : UNKNOWN);
    }
    methodAt = [...path, 'method'];
    pathAt = [...path, 'path'];
    method = r.value(methodAt);
    routePath = r.value(pathAt);
    if (method === undefined || method === null) throw ctx.invalid(methodAt, method, 'missing: an http event needs a method', 'GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or ANY (any case; * = ANY)');
    if (routePath === undefined || routePath === null) throw ctx.invalid(pathAt, routePath, 'missing: an http event needs a path', 'a path such as users/{id}');
  } else {
    throw ctx.invalid(path, ev, 'not an http event', allowed);
  }
  const m = typeof method === 'string' ? normaliseMethod(method) : undefined;
  if (!m) throw ctx.invalid(methodAt, method, 'not an HTTP method API Gateway routes on', 'GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or ANY (any case; * = ANY)');
  const p = readRoutePath(ctx, pathAt, routePath);
  if (isPlainObject(ev)) cors = readRestCors(ctx, r, [...path, 'cors'], m);
  return { api: 'REST', method: m, path: p, functionKey, payloadFormatVersion: '1.0', ...(cors ? { cors } : {}), at: path };
}

/** `httpApi` event (HTTP API): `'*'`, `'GET /users'`, `'* /users'` or `{ method, path }`. */
function readHttpApiEvent(ctx: ConfigContext, r: Resolver, functionKey: string, path: Segment[], payload: PayloadFormatVersion): RouteDraft {
  const ev = r.node(path).value;
  const allowed = "'*' (catch-all), 'METHOD /path', e.g. 'GET /users/{id}', or { method: get, path: /users/{id} }";
  let method: unknown;
  let routePath: unknown;
  let methodAt = path;
  let pathAt = path;
  if (typeof ev === 'string') {
    const text = ev.trim();
    if (text === '*' || text === '$default') {
      routePath = '*';
    } else {
      const words = text.split(/\s+/);
      if (words.length !== 2) throw ctx.invalid(path, ev, "the short form of an httpApi event is '*' or a method and a path", allowed);
      [method, routePath] = words;
    }
  } else if (isPlainObject(ev)) {
    for (const k of Object.keys(ev)) {
      if (k === 'method' || k === 'path') continue;
      ctx.warn([...path, k], HTTP_API_EVENT_NOT_USED.has(k) ? NOT_USED : UNKNOWN);
    }
    methodAt = [...path, 'method'];
    pathAt = [...path, 'path'];
    method = r.value(methodAt);
    routePath = r.value(pathAt);
    if (routePath === undefined || routePath === null) throw ctx.invalid(pathAt, routePath, 'missing: an httpApi event needs a path', "a path such as /users/{id}, or '*' for the catch-all route");
  } else {
    throw ctx.invalid(path, ev, 'not an httpApi event', allowed);
  }
  if (routePath === '*' || routePath === '$default') {
    if (method !== undefined && method !== null && method !== '*' && !(typeof method === 'string' && method.toUpperCase() === 'ANY')) {
      throw ctx.invalid(methodAt, method, 'the catch-all route ($default) takes every method', "'*', ANY, or no method");
    }
    return { api: 'HTTP', method: 'ANY', path: '$default', functionKey, payloadFormatVersion: payload, at: path };
  }
  if (method === undefined || method === null) throw ctx.invalid(methodAt, method, 'missing: an httpApi event needs a method', "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, ANY or '*'");
  const m = typeof method === 'string' ? normaliseMethod(method) : undefined;
  if (!m) throw ctx.invalid(methodAt, method, 'not an HTTP method API Gateway routes on', "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, ANY or '*' (any case)");
  const p = readRoutePath(ctx, pathAt, routePath);
  return { api: 'HTTP', method: m, path: p, functionKey, payloadFormatVersion: payload, at: path };
}

function readRoutePath(ctx: ConfigContext, at: Segment[], value: unknown): string {
  const allowed = 'segments of letters, digits and -._~!$&\'()*+,;=:@, whole-segment {param}, and {param+} as the last segment';
  if (typeof value !== 'string') throw ctx.invalid(at, value, 'the route path is not a string', allowed);
  const result = normaliseRoutePath(value);
  if (!result.ok) throw ctx.invalid(at, value, `invalid route path: ${result.reason}`, allowed);
  return result.path;
}

/** `cors: true` or `{ origin, origins, headers, methods, allowCredentials, maxAge }` of an http event. */
function readRestCors(ctx: ConfigContext, r: Resolver, path: Segment[], method: string): CorsConfig | undefined {
  const v = r.node(path).value;
  if (v === undefined || v === null || v === false) return undefined;
  if (v === true) {
    return { allowOrigins: ['*'], allowMethods: union(['OPTIONS'], [method]), allowHeaders: [...DEFAULT_CORS_HEADERS], exposeHeaders: [], allowCredentials: false };
  }
  if (!isPlainObject(v)) throw ctx.invalid(path, v, 'cors is neither true/false nor a mapping', 'true, or { origin, origins, headers, allowCredentials, maxAge }');
  for (const k of Object.keys(v)) {
    if (['origin', 'origins', 'headers', 'methods', 'allowCredentials', 'maxAge'].includes(k)) continue;
    ctx.warn([...path, k], k === 'cacheControl' ? NOT_USED : UNKNOWN);
  }
  const origin = r.value([...path, 'origin']);
  if (origin !== undefined && origin !== null && typeof origin !== 'string') throw ctx.invalid([...path, 'origin'], origin, 'not a string', 'an origin such as https://example.com, or *');
  const origins = readStringList(ctx, r, [...path, 'origins'], 'a list of origins such as [https://example.com]');
  const headers = readStringList(ctx, r, [...path, 'headers'], 'a header name or a list of header names', true);
  const methods = readStringList(ctx, r, [...path, 'methods'], 'a list of HTTP methods');
  const allowCredentials = readBool(ctx, r, [...path, 'allowCredentials']) ?? false;
  const maxAge = readCount(ctx, r, [...path, 'maxAge']);
  const allowOrigins = origins && origins.length > 0
    ? origins
    : typeof origin === 'string' ? origin.split(',').map((o) => o.trim()).filter((o) => o !== '') : ['*'];
  return {
    allowOrigins,
    allowMethods: union(union((methods ?? []).map((x) => x.toUpperCase()), ['OPTIONS']), [method]),
    allowHeaders: headers ?? [...DEFAULT_CORS_HEADERS],
    exposeHeaders: [],
    allowCredentials,
    ...(maxAge !== undefined ? { maxAge } : {}),
  };
}

/**
 * `provider.httpApi.cors`: `true` or `{ allowedOrigins, allowedHeaders,
 * allowedMethods, allowCredentials, exposedResponseHeaders, maxAge }`. As the
 * Serverless Framework does, when `allowedMethods` is not given it is filled
 * with OPTIONS plus the methods of the service's httpApi routes.
 */
function readHttpApiCors(ctx: ConfigContext, r: Resolver, drafts: readonly RouteDraft[]): CorsConfig | undefined {
  const path: Segment[] = ['provider', 'httpApi', 'cors'];
  const v = r.node(path).value;
  if (v === undefined || v === null || v === false) return undefined;
  const filled = (): string[] => {
    let methods = ['OPTIONS'];
    for (const d of drafts) if (d.api === 'HTTP') methods = union(methods, d.method === 'ANY' ? HTTP_ANY_METHODS : [d.method]);
    return methods;
  };
  if (v === true) {
    return { allowOrigins: ['*'], allowMethods: filled(), allowHeaders: [...DEFAULT_CORS_HEADERS], exposeHeaders: [], allowCredentials: false };
  }
  if (!isPlainObject(v)) throw ctx.invalid(path, v, 'cors is neither true/false nor a mapping', 'true, or { allowedOrigins, allowedHeaders, allowedMethods, allowCredentials, exposedResponseHeaders, maxAge }');
  const known = ['allowedOrigins', 'allowedHeaders', 'allowedMethods', 'allowCredentials', 'exposedResponseHeaders', 'maxAge'];
  for (const k of Object.keys(v)) if (!known.includes(k)) ctx.warn([...path, k], UNKNOWN);
  const origins = readStringList(ctx, r, [...path, 'allowedOrigins'], 'an origin or a list of origins', true);
  const headers = readStringList(ctx, r, [...path, 'allowedHeaders'], 'a header name or a list of header names', true);
  const methods = readStringList(ctx, r, [...path, 'allowedMethods'], 'a method or a list of methods', true);
  const exposed = readStringList(ctx, r, [...path, 'exposedResponseHeaders'], 'a header name or a list of header names', true);
  const allowCredentials = readBool(ctx, r, [...path, 'allowCredentials']) ?? false;
  const maxAge = readCount(ctx, r, [...path, 'maxAge']);
  return {
    allowOrigins: origins ?? ['*'],
    allowMethods: methods ? methods.map((m) => m.toUpperCase()) : filled(),
    allowHeaders: headers ?? [...DEFAULT_CORS_HEADERS],
    exposeHeaders: exposed ?? [],
    allowCredentials,
    ...(maxAge !== undefined ? { maxAge } : {}),
  };
}

/** Two routes with the same API, method and path shape: API Gateway refuses that, and so do we. */
function checkDuplicateRoutes(ctx: ConfigContext, drafts: readonly RouteDraft[]): void {
  const seen = new Map<string, RouteDraft>();
  for (const d of drafts) {
    const key = `${d.api} ${d.method} ${routeShape(d.path)}`;
    const first = seen.get(key);
    if (first) {
      const what = d.path === '$default' ? 'the catch-all route $default' : `route ${d.method} ${d.path}`;
      throw ctx.invalid(d.at, routeLabel(d), `${what} is also served by ${formatPath(first.at)}`, 'one function per method and path');
    }
    seen.set(key, d);
  }
}

function routeLabel(d: RouteDraft): string {
  return d.path === '$default' ? '$default' : `${d.method} ${d.path}`;
}

/** Drops the drafting fields and merges REST CORS per path (see mergeRestCors). */
function finishRoutes(drafts: readonly RouteDraft[]): RouteSpec[] {
  const corsByPath = new Map<string, CorsConfig[]>();
  for (const d of drafts) {
    if (d.api === 'REST' && d.cors) corsByPath.set(d.path, [...(corsByPath.get(d.path) ?? []), d.cors]);
  }
  const merged = new Map<string, CorsConfig>();
  for (const [p, list] of corsByPath) merged.set(p, mergeRestCors(list));
  return drafts.map((d) => {
    const cors = d.api === 'REST' && d.cors ? merged.get(d.path) : undefined;
    return {
      api: d.api,
      method: d.method,
      path: d.path,
      functionKey: d.functionKey,
      payloadFormatVersion: d.payloadFormatVersion,
      ...(cors ? { cors } : {}),
    };
  });
}

// ---- value readers: each resolves variables, treats null as absent, and throws NIMBUS_ERR_CONFIG_INVALID ----

function readRuntime(ctx: ConfigContext, path: Segment[], value: unknown): { name: string; language: Language } {
  if (typeof value === 'string') {
    if (NODE_RUNTIME_RE.test(value)) return { name: value, language: 'node' };
    if (PYTHON_RUNTIME_RE.test(value)) return { name: value, language: 'python' };
  }
  throw new NimbusError('NIMBUS_ERR_CONFIG_RUNTIME', {
    file: ctx.file,
    line: ctx.lines.valueLine(path),
    path: formatPath(path),
    value: JSON.stringify(value),
  });
}

/** Numbers, or strings of digits (what `${env:...}` gives). */
function asNumber(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && NUMERIC_STRING_RE.test(v)) return Number(v);
  return undefined;
}

function readMemory(ctx: ConfigContext, r: Resolver, path: Segment[]): number | undefined {
  const v = r.value(path);
  if (v === undefined || v === null) return undefined;
  const n = asNumber(v);
  if (n === undefined || !Number.isInteger(n) || n < 128 || n > 10240) throw ctx.invalid(path, v, 'memory size out of range', MEMORY_ALLOWED);
  return n;
}

function readTimeout(ctx: ConfigContext, r: Resolver, path: Segment[]): number | undefined {
  const v = r.value(path);
  if (v === undefined || v === null) return undefined;
  const n = asNumber(v);
  if (n === undefined || n <= 0 || n > 900) throw ctx.invalid(path, v, 'timeout out of range', TIMEOUT_ALLOWED);
  return n;
}

/** A non-negative integer (concurrency, maxAge). */
function readCount(ctx: ConfigContext, r: Resolver, path: Segment[]): number | undefined {
  const v = r.value(path);
  if (v === undefined || v === null) return undefined;
  const n = asNumber(v);
  if (n === undefined || !Number.isInteger(n) || n < 0) throw ctx.invalid(path, v, 'not a non-negative integer', 'an integer of 0 or more');
  return n;
}

function readBool(ctx: ConfigContext, r: Resolver, path: Segment[]): boolean | undefined {
  const v = r.value(path);
  if (v === undefined || v === null) return undefined;
  if (v === true || v === 'true') return true;
  if (v === false || v === 'false') return false;
  throw ctx.invalid(path, v, 'not a boolean', 'true or false');
}

function readPayload(ctx: ConfigContext, r: Resolver, path: Segment[]): PayloadFormatVersion | undefined {
  const v = r.value(path);
  if (v === undefined || v === null) return undefined;
  // YAML reads `payload: 2.0` as the number 2.
  if (v === '2.0' || v === 2) return '2.0';
  if (v === '1.0' || v === 1) return '1.0';
  throw ctx.invalid(path, v, 'not an API Gateway payload format version', "'1.0' or '2.0'");
}

/** A list of strings; with `single`, one string stands for a list of one. */
function readStringList(ctx: ConfigContext, r: Resolver, path: Segment[], allowed: string, single = false): string[] | undefined {
  const v = r.value(path);
  if (v === undefined || v === null) return undefined;
  if (single && typeof v === 'string') return [v];
  if (!Array.isArray(v)) throw ctx.invalid(path, v, 'not a list of strings', allowed);
  v.forEach((item, i) => {
    if (typeof item !== 'string') throw ctx.invalid([...path, i], item, 'not a string', allowed);
  });
  return v as string[];
}

/** A mapping of variable names to strings, numbers or booleans (numbers and booleans become strings). */
function readEnvironment(ctx: ConfigContext, r: Resolver, path: Segment[]): Record<string, string> | undefined {
  const node = r.node(path).value;
  if (node === undefined || node === null) return undefined;
  if (!isPlainObject(node)) throw ctx.invalid(path, node, 'environment is not a mapping', 'a mapping of variable names to strings, numbers or booleans');
  const out: Record<string, string> = {};
  for (const name of Object.keys(node)) {
    const at = [...path, name];
    if (!ENV_KEY_RE.test(name)) throw ctx.invalid(at, name, 'not a valid environment variable name', 'a letter, then letters, digits and _');
    if (RESERVED_ENV_KEYS.has(name)) throw ctx.invalid(at, name, 'Lambda sets this variable itself and does not let a function set it', 'any name but the Lambda runtime\'s reserved ones');
    const raw = (node as Record<string, unknown>)[name];
    const reference = ctx.lines.tag(at) || isPlainObject(raw) ? ctx.reference?.(at) : undefined;
    if (reference !== undefined) { out[name] = reference; continue; }
    const v = r.value(at);
    if (typeof v === 'string') out[name] = v;
    else if (typeof v === 'number' || typeof v === 'boolean') out[name] = String(v);
    else throw ctx.invalid(at, v, 'an environment value must be a string, number or boolean', 'a string, number or boolean');
  }
  return out;
}
