/**
 * The config part: one `serverless.yml` (Serverless Framework v3/v4 format,
 * AWS provider) → a frozen, validated ServiceSpec. Nothing else in Nimbus
 * reads the YAML or resolves its variables.
 *
 * Reference: https://www.serverless.com/framework/docs/providers/aws/guide/serverless.yml
 * (functions, `http` and `httpApi` events, variables).
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { NimbusError } from '../core/index.js';
import type { ServiceSpec } from '../core/index.js';
import { ConfigContext } from './context.js';
import { buildServiceSpec } from './service.js';
export { findHandlerFile, handlerCandidates, splitHandler, type HandlerParts } from './handlers.js';
import { parseSchedule } from '../events/index.js';
import { parseSource } from './source.js';
import { Resolver } from './variables.js';

/** How to read a serverless.yml. */
export interface LoadOptions {
  /** The `--stage` option: overrides `provider.stage` (default `dev`); `${opt:stage}`. */
  stage?: string;
  /** The `--region` option: overrides `provider.region` (default `us-east-1`); `${opt:region}`. */
  region?: string;
  /**
   * The variables `${env:NAME}` reads. Default `{}`: only the CLI edge passes
   * `process.env`, so that nothing below it depends on the host's environment.
   */
  env?: Record<string, string | undefined>;
  /** Check that each handler's file exists beside the serverless.yml. Default true. */
  checkHandlers?: boolean;
}

/**
 * Reads and validates the serverless.yml at `configPath` (synchronously).
 * See {@link parseServiceConfig} for what is read and thrown.
 *
 * @throws NimbusError NIMBUS_ERR_CONFIG_NOT_FOUND when the file cannot be read,
 *   and everything parseServiceConfig throws.
 */
export function loadServiceConfig(configPath: string, options: LoadOptions = {}): ServiceSpec {
  let text: string;
  try {
    text = readFileSync(configPath, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file'
      : code === 'EISDIR' ? 'it is a folder, not a file'
      : code === 'EACCES' ? 'permission denied'
      : e instanceof Error ? e.message : String(e);
    throw new NimbusError('NIMBUS_ERR_CONFIG_NOT_FOUND', { file: configPath, reason }, { cause: e });
  }
  return parseServiceConfig(text, configPath, options);
}

/**
 * Turns the text of a serverless.yml into a deep-frozen ServiceSpec.
 *
 * - `configPath` names the file in messages as given; the spec's `configPath`
 *   and `dir` (every function's `codeDir`) are absolute.
 * - Variables (`${self:...}`, `${opt:stage|region}`, `${sls:stage|instanceId}`,
 *   `${env:NAME}`, with fallbacks) are resolved in every value Nimbus reads;
 *   see variables.ts.
 * - Defaults follow the Serverless Framework: stage `dev`, region
 *   `us-east-1`, memory 1024 MB, timeout 6 s, HTTP API payload `2.0`; REST
 *   (`http`) routes always use payload `1.0`. Limits follow AWS Lambda:
 *   memory 128–10240 MB (integer), timeout up to 900 s. A timeout may be
 *   fractional (e.g. 0.5, for tests), though AWS itself takes whole seconds.
 * - Keys Nimbus does not use, event types it does not serve, and an empty
 *   `functions:` give one warning each in `warnings`
 *   (`<file>:<line>: <key path>: <message>`), never a failure.
 *
 * @throws NimbusError
 *   NIMBUS_ERR_CONFIG_YAML (syntax; line and column),
 *   NIMBUS_ERR_CONFIG_INVALID (file, line, key path, value as JSON, reason, what is allowed),
 *   NIMBUS_ERR_CONFIG_VARIABLE (a variable with no value and no fallback, an unsupported source, a cycle),
 *   NIMBUS_ERR_CONFIG_RUNTIME (a runtime other than nodejsNN.x / python3.NN),
 *   NIMBUS_ERR_HANDLER_NOT_FOUND (when checkHandlers: no file for a handler; names the files tried),
 *   NIMBUS_ERR_CLI_USAGE (a malformed `stage` or `region` option).
 */
export function parseServiceConfig(text: string, configPath: string, options: LoadOptions = {}): ServiceSpec {
  const absolute = resolve(configPath);
  const { data, lines } = parseSource(text, configPath);
  const ctx = new ConfigContext(configPath, lines);
  const resolver = new Resolver(data, ctx, {
    ...(options.stage !== undefined ? { stage: options.stage } : {}),
    ...(options.region !== undefined ? { region: options.region } : {}),
    env: options.env ?? {},
  });
  const spec = buildServiceSpec({
    ctx,
    resolver,
    configPath: absolute,
    dir: dirname(absolute),
    checkHandlers: options.checkHandlers ?? true,
    validateSchedule: (expression) => { parseSchedule(expression); },
  });
  return deepFreeze(spec);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
