/**
 * Shared shapes every part of Nimbus keys on. Imports nothing from src/.
 *
 * A `ServiceSpec` is what the config part makes of one `serverless.yml`:
 * frozen, validated, with every default applied, so no other part ever reads
 * the YAML or `process.env` again.
 */

/** The languages Nimbus has a runtime for (see `runtimes/<language>/`). */
export type Language = 'node' | 'python';

/**
 * One function of a service, as deployed.
 *
 * Defaults follow the Serverless Framework (timeout 6 s, memory 1024 MB) and
 * the limits follow AWS Lambda (timeout 1–900 s, memory 128–10240 MB):
 * https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
 */
export interface FunctionSpec {
  /** The key under `functions:` in serverless.yml, e.g. `hello`. */
  readonly key: string;
  /** The Lambda function name: `name:` if given, else `<service>-<stage>-<key>` (Serverless Framework's rule). */
  readonly name: string;
  /** `file.export` (Node) or `module.function` (Python), relative to `codeDir`, e.g. `src/handlers/user.get`. */
  readonly handler: string;
  /** The runtime name as written, e.g. `nodejs20.x`, `python3.12`. */
  readonly runtime: string;
  readonly language: Language;
  /** Memory size in MB (128–10240). */
  readonly memorySize: number;
  /** Timeout in seconds (1–900, may be fractional in tests). */
  readonly timeout: number;
  /** The function's own environment: provider.environment merged with functions.<key>.environment. */
  readonly environment: Readonly<Record<string, string>>;
  /** Absolute path of the folder the handler path is relative to (the service folder); `LAMBDA_TASK_ROOT`. */
  readonly codeDir: string;
  readonly service: string;
  readonly stage: string;
  readonly region: string;
  /** Reserved concurrency (maximum instances), when set. */
  readonly reservedConcurrency?: number;
  /** Provisioned concurrency (instances kept warm), when set. */
  readonly provisionedConcurrency?: number;
  /**
   * Invocations one instance runs at once (1–MAX_INVOCATIONS_PER_INSTANCE;
   * absent means 1, Lambda's default). Node.js only. Lambda Managed Instances' setting of the same
   * name; the instance sees it as `AWS_LAMBDA_MAX_CONCURRENCY`.
   * https://docs.aws.amazon.com/lambda/latest/api/API_LambdaManagedInstancesCapacityProviderConfig.html
   */
  readonly perExecutionEnvironmentMaxConcurrency?: number;
  /**
   * `nimbus server`: the alias the function's routes invoke (Nimbus's `alias:` key; with provisionedConcurrency
   * and no alias, `provisioned`, as the Serverless Framework makes). Each deploy points it at the new version.
   */
  readonly alias?: string;
  /** Asynchronous invocation settings (retries, event age, destinations), when set. */
  readonly eventInvokeConfig?: EventInvokeConfig;
  /** The version instances of this spec run (`$LATEST` when unset): in the START line and the context. */
  readonly version?: string;
}

/**
 * Most invocations one instance may run at once: Lambda Managed Instances'
 * PerExecutionEnvironmentMaxConcurrency range is 1–1600.
 * https://docs.aws.amazon.com/lambda/latest/api/API_LambdaManagedInstancesCapacityProviderConfig.html
 */
export const MAX_INVOCATIONS_PER_INSTANCE = 1600;

/**
 * Variables the Lambda runtime sets itself; a function's configuration cannot set them.
 * https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime
 */
export const RESERVED_ENVIRONMENT: ReadonlySet<string> = new Set([
  '_HANDLER', '_X_AMZN_TRACE_ID', 'AWS_DEFAULT_REGION', 'AWS_REGION', 'AWS_EXECUTION_ENV', 'AWS_LAMBDA_FUNCTION_NAME',
  'AWS_LAMBDA_FUNCTION_MEMORY_SIZE', 'AWS_LAMBDA_FUNCTION_VERSION', 'AWS_LAMBDA_INITIALIZATION_TYPE', 'AWS_LAMBDA_LOG_GROUP_NAME',
  'AWS_LAMBDA_LOG_STREAM_NAME', 'AWS_ACCESS_KEY', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN',
  'AWS_LAMBDA_RUNTIME_API', 'AWS_LAMBDA_MAX_CONCURRENCY', 'LAMBDA_TASK_ROOT', 'LAMBDA_RUNTIME_DIR', 'TZ',
]);

/** Where an asynchronous invocation's record goes: a function, a queue or a topic (by name). */
export interface DestinationRef {
  readonly kind: 'function' | 'queue' | 'topic';
  readonly name: string;
}

/**
 * A function's asynchronous invocation settings (Lambda's EventInvokeConfig):
 * retries after a function error (0–2, default 2), the oldest an event may
 * get before it is dropped to onFailure (60–21600 s, default 21600), and destinations.
 * https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-configuring.html
 */
export interface EventInvokeConfig {
  readonly maximumRetryAttempts?: number;
  /** Seconds. */
  readonly maximumEventAge?: number;
  readonly onSuccess?: DestinationRef;
  readonly onFailure?: DestinationRef;
}

/** One schedule rule: a `schedule` event's expression (a list gives one rule each). */
export interface ScheduleSpec {
  /** Unique in the service: the event's `name:` or `<functionKey>-schedule-<n>`. */
  readonly id: string;
  readonly functionKey: string;
  /** `rate(...)` or `cron(...)`, EventBridge's syntax (UTC). */
  readonly expression: string;
  readonly enabled: boolean;
  /** Sent instead of the Scheduled Event. */
  readonly input?: unknown;
  /** JSONPath into the Scheduled Event, e.g. `$.detail`. */
  readonly inputPath?: string;
  readonly description?: string;
}

/** A queue Nimbus keeps for the service (SQS's settings and defaults). */
export interface QueueSpec {
  readonly name: string;
  readonly fifo: boolean;
  /** Seconds a received message stays hidden before it can be received again (default 30). */
  readonly visibilityTimeout: number;
  /** Seconds a message is kept (default 345600, 4 days). */
  readonly messageRetentionPeriod: number;
  /** Seconds a new message waits before it can be received (default 0). */
  readonly delaySeconds: number;
  /** RedrivePolicy: after `maxReceiveCount` receives, a message moves to this queue. */
  readonly deadLetterQueue?: string;
  readonly maxReceiveCount?: number;
}

/** A function fed by a queue (an `sqs` event source mapping). */
export interface QueueEventSpec {
  readonly functionKey: string;
  readonly queue: string;
  /** Most messages per invocation (default 10). */
  readonly batchSize: number;
  /** Seconds to gather a batch (default 0). */
  readonly maximumBatchingWindow: number;
  /** `functionResponseType: ReportBatchItemFailures`: the function names the failed messages. */
  readonly reportBatchItemFailures: boolean;
  readonly enabled: boolean;
}

/** A topic Nimbus keeps for the service. */
export interface TopicSpec {
  readonly name: string;
  readonly displayName?: string;
}

/** A function subscribed to a topic (an `sns` event). */
export interface TopicEventSpec {
  readonly functionKey: string;
  readonly topic: string;
  /** SNS filter policy on message attributes, when set. */
  readonly filterPolicy?: Readonly<Record<string, unknown>>;
}

/** Which API Gateway flavour a route belongs to: REST API (`http` events) or HTTP API (`httpApi` events). */
export type ApiKind = 'REST' | 'HTTP';

/** API Gateway payload format version. https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html */
export type PayloadFormatVersion = '1.0' | '2.0';

/**
 * CORS settings of an HTTP API (`provider.httpApi.cors`), normalised to API
 * Gateway's CorsConfiguration names.
 * https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-cors.html
 */
export interface CorsConfig {
  readonly allowOrigins: readonly string[];
  readonly allowMethods: readonly string[];
  readonly allowHeaders: readonly string[];
  readonly exposeHeaders: readonly string[];
  readonly allowCredentials: boolean;
  /** Seconds, or undefined to send no Access-Control-Max-Age. */
  readonly maxAge?: number;
}

/**
 * One route of the gateway.
 * - REST: `path` is the resource path without the stage (`/files/{key}`); the gateway serves it under `/<stage>`.
 * - HTTP: `path` is served at the root; `$default` matches anything no other route matches.
 */
export interface RouteSpec {
  readonly api: ApiKind;
  /** Upper-case method, or `ANY`. */
  readonly method: string;
  /** `/a/{b}/{c+}` style, always starting with `/`, or `$default` (HTTP API only). */
  readonly path: string;
  /** Key of the function in `functions:`. */
  readonly functionKey: string;
  readonly payloadFormatVersion: PayloadFormatVersion;
  /** REST (`http` event) `cors: true` or settings; undefined when off. */
  readonly cors?: CorsConfig;
}

/** Everything `nimbus dev` needs to serve one serverless.yml. */
export interface ServiceSpec {
  readonly service: string;
  /** Absolute path of the serverless.yml. */
  readonly configPath: string;
  /** Absolute path of its folder. */
  readonly dir: string;
  readonly stage: string;
  readonly region: string;
  readonly functions: readonly FunctionSpec[];
  readonly routes: readonly RouteSpec[];
  /** `provider.httpApi.cors`, normalised; undefined when off. */
  readonly httpApiCors?: CorsConfig;
  /** `provider.apiGateway.binaryMediaTypes` (REST API), e.g. `['*\/*']`. */
  readonly binaryMediaTypes: readonly string[];
  /** `schedule` events, one rule per expression. */
  readonly schedules: readonly ScheduleSpec[];
  /** Queues: declared under resources or named by an `sqs` event. */
  readonly queues: readonly QueueSpec[];
  readonly queueEvents: readonly QueueEventSpec[];
  /** Topics: declared under resources or named by an `sns` event. */
  readonly topics: readonly TopicSpec[];
  readonly topicEvents: readonly TopicEventSpec[];
  /** `package.patterns`: globs of what `nimbus deploy` packages (`!` excludes), in order. */
  readonly packagePatterns: readonly string[];
  /** One line per key Nimbus read but does not use yet, and per runtime version mismatch. */
  readonly warnings: readonly string[];
}

/**
 * How an invocation ended: a closed union that logs, metrics, cost and the
 * dashboard key on (DESIGN.md, "Contracts").
 */
export type Outcome =
  | 'ok'
  | 'error'
  | 'timeout'
  | 'oom'
  | 'crashed'
  | 'init_error'
  | 'throttled'
  | 'rejected';

/** A function error document as Lambda returns it (Node has `trace`, Python `stackTrace`). */
export interface FunctionErrorDocument {
  errorType: string;
  errorMessage: string;
  trace?: string[];
  stackTrace?: string[];
  requestId?: string;
  [k: string]: unknown;
}

/** What one invocation produced. `payload` is the JSON text of the result or error document. */
export interface InvocationResult {
  readonly requestId: string;
  readonly outcome: Outcome;
  /** JSON text: the handler's result when `ok`, else a `FunctionErrorDocument`. */
  readonly payload: string;
  /** Wall time of the invocation in ms (from hand-over to the instance to its answer). */
  readonly durationMs: number;
  /** Duration rounded up to the next 1 ms, as Lambda bills. */
  readonly billedDurationMs: number;
  /** Init duration in ms when this invocation was a cold start (undefined when warm). */
  readonly initDurationMs?: number;
  /** On a cold start: true when the instance started on a pre-warmed runtime process. */
  readonly prewarmed?: boolean;
  /** Peak memory of the instance in MB, when known. */
  readonly maxMemoryUsedMB?: number;
  /** The log text written during the invocation, START to REPORT included. */
  readonly logs: string;
}

/**
 * One invocation as recorded for metrics, cost and logs: the fields of
 * Lambda's REPORT line and the outcome.
 */
export interface InvocationRecord {
  readonly requestId: string;
  readonly functionName: string;
  /** `$LATEST` or a version number. */
  readonly version: string;
  /** Epoch ms when the invocation started. */
  readonly startMs: number;
  readonly durationMs: number;
  readonly billedDurationMs: number;
  /** Memory size in MB. */
  readonly memorySize: number;
  readonly maxMemoryUsedMB?: number;
  /** Set on a cold start. */
  readonly initDurationMs?: number;
  readonly outcome: Outcome;
}
