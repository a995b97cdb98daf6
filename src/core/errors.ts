/**
 * The one error catalogue of Nimbus. Every error the platform raises or
 * answers with has a code here (`NIMBUS_ERR_<AREA>_<WHAT>`), a message
 * template, the HTTP status it maps to, and who is at fault. `docs/errors.md`
 * documents every code; a test keeps the two in step.
 */

/** `user`: the user's config, code or request is wrong. `platform`: Nimbus or its host failed. */
export type Fault = 'user' | 'platform';

interface CatalogueEntry {
  readonly status: number;
  readonly fault: Fault;
  /** Template: `{name}` is replaced by `params.name`. */
  readonly message: string;
  /** How to fix it, shown by the CLI under the message. */
  readonly hint?: string;
}

/** Every error code: HTTP status, who is at fault, message template, how to fix it. Documented in docs/errors.md (a test checks). */
export const errorCatalogue = {
  NIMBUS_ERR_CONFIG_NOT_FOUND: {
    status: 400, fault: 'user',
    message: 'Cannot read {file}: {reason}',
    hint: 'Pass the path of your serverless.yml with --config, or run the command in its folder.',
  },
  NIMBUS_ERR_CONFIG_YAML: {
    status: 400, fault: 'user',
    message: '{file}:{line}:{column}: invalid YAML: {reason}',
    hint: 'Fix the YAML syntax at that line (indentation, quotes, a missing colon).',
  },
  NIMBUS_ERR_CONFIG_INVALID: {
    status: 400, fault: 'user',
    message: '{file}:{line}: {path}: {reason} (got {value}; allowed: {allowed})',
    hint: 'Change the value at that key path to one that is allowed.',
  },
  NIMBUS_ERR_CONFIG_VARIABLE: {
    status: 400, fault: 'user',
    message: '{file}:{line}: {path}: cannot resolve variable {variable}: {reason}',
    hint: 'Define what the variable refers to (pass --stage for ${opt:stage}, set the environment variable for ${env:NAME}, add the key for ${self:...}), or give it a default: ${opt:stage, \'dev\'}.',
  },
  NIMBUS_ERR_CONFIG_RUNTIME: {
    status: 400, fault: 'user',
    message: '{file}:{line}: {path}: runtime {value} is not supported',
    hint: 'Use a nodejsNN.x runtime (e.g. nodejs20.x) or a python3.NN runtime (e.g. python3.12).',
  },
  NIMBUS_ERR_HANDLER_NOT_FOUND: {
    status: 400, fault: 'user',
    message: 'Function {function}: handler {handler}: {reason}',
    hint: 'Check the `handler:` path in serverless.yml: it is `path/to/file.exportName`, relative to the serverless.yml folder.',
  },
  NIMBUS_ERR_BUILD_FAILED: {
    status: 400, fault: 'user',
    message: 'Function {function}: cannot bundle {file}: {reason}',
    hint: 'Fix the error at that file and line (esbuild bundles TypeScript handlers before they run); a running nimbus dev keeps the previous version until it compiles.',
  },
  NIMBUS_ERR_RUNTIME_UNAVAILABLE: {
    status: 500, fault: 'platform',
    message: 'No {language} interpreter found to run {runtime}: {reason}',
    hint: 'Install Node.js ≥ 20 or Python ≥ 3.9 and make it available on PATH.',
  },
  NIMBUS_ERR_INVOKE_FUNCTION_NOT_FOUND: {
    status: 404, fault: 'user',
    message: 'Function not found: {function}',
    hint: 'Use the function\'s `name:` or its key under `functions:`; `nimbus dev` prints the list at start.',
  },
  NIMBUS_ERR_GATEWAY_NOT_FOUND: {
    status: 404, fault: 'user',
    message: 'No route for {method} {path}',
  },
  NIMBUS_ERR_GATEWAY_MISSING_TOKEN: {
    status: 403, fault: 'user',
    message: 'No REST route for {method} {path}',
    hint: 'REST API (http event) paths start with the stage: /<stage>/<path>. Check the method and path against the routes nimbus dev prints.',
  },
  NIMBUS_ERR_GATEWAY_PAYLOAD_TOO_LARGE: {
    status: 413, fault: 'user',
    message: 'Request body over the 6 MB limit',
  },
  NIMBUS_ERR_GATEWAY_FUNCTION_ERROR: {
    status: 502, fault: 'user',
    message: 'The function failed or returned a malformed response',
  },
  NIMBUS_ERR_GATEWAY_FUNCTION_TIMEOUT: {
    status: 502, fault: 'user',
    message: 'The function ran past its timeout',
    hint: 'Make the function faster or raise its `timeout:` (seconds).',
  },
  NIMBUS_ERR_GATEWAY_MALFORMED_RESPONSE: {
    status: 502, fault: 'user',
    message: 'Malformed Lambda proxy response: {reason}',
    hint: 'Return { statusCode, headers?, body } with body a string (JSON.stringify objects).',
  },
  NIMBUS_ERR_GATEWAY_TIMEOUT: {
    status: 504, fault: 'user',
    message: 'The integration ran past API Gateway\'s limit (29 s REST, 30 s HTTP API)',
    hint: 'Keep functions behind routes under 29 s; use an asynchronous invocation for longer work.',
  },
  NIMBUS_ERR_GATEWAY_THROTTLED: {
    status: 500, fault: 'user',
    message: 'The function is at its concurrency limit and its queue is full',
    hint: 'Raise reservedConcurrency, or lower the load; Nimbus waits up to the queue limits before throttling.',
  },
  NIMBUS_ERR_GATEWAY_INTERNAL: {
    status: 500, fault: 'platform',
    message: 'The gateway failed while handling the request',
    hint: 'This is a Nimbus bug: the log has the stack trace; please report it.',
  },
  NIMBUS_ERR_CLI_USAGE: {
    status: 400, fault: 'user',
    message: '{reason}',
    hint: 'Run the command with --help to see its options.',
  },
  NIMBUS_ERR_CLI_UNREACHABLE: {
    status: 503, fault: 'user',
    message: 'Cannot reach the Nimbus server at {endpoint}: {reason}',
    hint: 'Start it with `nimbus server`, or point the command at yours with --endpoint URL (or NIMBUS_ENDPOINT).',
  },
  NIMBUS_ERR_CLI_NO_TOKEN: {
    status: 401, fault: 'user',
    message: 'No admin token for {endpoint}: {reason}',
    hint: 'Pass --token, set NIMBUS_TOKEN, or run the command on the server\'s host, where it reads <data dir>/admin-token (--data-dir or NIMBUS_DATA_DIR).',
  },
  NIMBUS_ERR_CLI_API: {
    status: 400, fault: 'user',
    message: 'The server refused {action}: {type}: {reason}',
    hint: 'Fix what the message names and run the command again; `nimbus info` shows what is deployed.',
  },
  NIMBUS_ERR_PACKAGE_TOO_LARGE: {
    status: 400, fault: 'user',
    message: 'Service {service} is over {limit}, the limit for a function\'s code',
    hint: 'Exclude what the functions do not need with package.patterns (e.g. ["!tests/**", "!docs/**"]).',
  },
  NIMBUS_ERR_SERVER_DATA_DIR: {
    status: 500, fault: 'user',
    message: 'Cannot use the data directory {dir}: {reason}',
    hint: 'Pass a folder you can write with --data-dir (or NIMBUS_DATA_DIR); a data directory is used by one server at a time.',
  },
  NIMBUS_ERR_REQUEST_INVALID: {
    status: 400, fault: 'user',
    message: 'Bad request: {reason}',
    hint: 'docs/server.md lists the control API\'s endpoints and their parameters; the CLI sends them right.',
  },
  NIMBUS_ERR_SERVER_UNSANDBOXED: {
    status: 500, fault: 'user',
    message: 'nimbus server will not run functions unsandboxed: {reason}',
    hint: 'Install bubblewrap (apt install bubblewrap) where it can make namespaces, or pass --allow-unsandboxed to run them as plain processes of the server\'s own user (any function can then read the data directory, credentials included).',
  },
  NIMBUS_ERR_DEPLOY_INVALID: {
    status: 400, fault: 'user',
    message: 'Deploy of {service} refused: {reason}',
    hint: 'Deploy with `nimbus deploy`, which packages and uploads everything a deploy needs; the previous deployment keeps serving.',
  },
  NIMBUS_ERR_DEPLOY_CONFLICT: {
    status: 409, fault: 'user',
    message: 'Deploy of {service} refused: route {route} is already served by service {other}',
    hint: 'Services share the gateway port: change the route\'s path (or stage), or remove the other service with `nimbus remove`.',
  },
  NIMBUS_ERR_SERVICE_NOT_FOUND: {
    status: 404, fault: 'user',
    message: 'Service {service} (stage {stage}) is not deployed',
    hint: 'Check the service name and --stage; `nimbus info --all` lists what is deployed.',
  },
  NIMBUS_ERR_ROLLBACK_INVALID: {
    status: 400, fault: 'user',
    message: 'Cannot roll {service} back: {reason}',
    hint: '`nimbus info` lists the deployments you can roll back to; pass one with --version N.',
  },
  NIMBUS_ERR_SCHEDULE_NOT_FOUND: {
    status: 404, fault: 'user',
    message: 'Function {function} has no schedule rule',
    hint: 'Give the function a schedule event (events: [{ schedule: rate(1 hour) }]) and deploy; `nimbus schedule list` shows the rules.',
  },
  NIMBUS_ERR_QUEUE_NOT_FOUND: {
    status: 404, fault: 'user',
    message: '{reason}',
    hint: 'Queues come from sqs events and AWS::SQS::Queue resources of a deployed serverless.yml; `nimbus queue list` shows them.',
  },
  NIMBUS_ERR_TOPIC_NOT_FOUND: {
    status: 404, fault: 'user',
    message: '{reason}',
    hint: 'Topics come from sns events and AWS::SNS::Topic resources of a deployed serverless.yml; `nimbus topic list` shows them.',
  },
  NIMBUS_ERR_MESSAGE_INVALID: {
    status: 400, fault: 'user',
    message: '{reason}',
    hint: 'SQS and SNS take a non-empty message of at most 256 KiB with at most 10 attributes; fix the message and send it again.',
  },
  NIMBUS_ERR_DEAD_LETTER_NOT_FOUND: {
    status: 404, fault: 'user',
    message: 'There is no dead letter {id}',
    hint: '`nimbus dead-letters` lists them with their ids.',
  },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof errorCatalogue;

/**
 * An error from the catalogue. `params` fill the message template; `cause`
 * chains the underlying error.
 *
 * @example throw new NimbusError('NIMBUS_ERR_CONFIG_NOT_FOUND', { file, reason: 'no such file' })
 */
export class NimbusError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly fault: Fault;
  readonly hint?: string;
  readonly params: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, params: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    const entry: CatalogueEntry = errorCatalogue[code];
    super(formatTemplate(entry.message, params), options);
    this.name = 'NimbusError';
    this.code = code;
    this.status = entry.status;
    this.fault = entry.fault;
    this.hint = entry.hint;
    this.params = params;
  }
}

function formatTemplate(template: string, params: Record<string, unknown>): string {
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => {
    if (!(name in params)) return whole;
    const v = params[name];
    return typeof v === 'string' ? v : JSON.stringify(v);
  });
}

/** True for a NimbusError (also across module copies). */
export function isNimbusError(e: unknown): e is NimbusError {
  return e instanceof Error && typeof (e as { code?: unknown }).code === 'string' && String((e as { code?: unknown }).code).startsWith('NIMBUS_ERR_');
}
