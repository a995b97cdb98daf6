/**
 * Turns a FunctionSpec into the launch of an instance: which interpreter,
 * which bootstrap, which environment, which code file.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, realpathSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lambdaFunctionArn, NimbusError, type FunctionSpec } from '../core/index.js';
import type { InstanceLaunch } from './instance.js';
import type { PoolRuntime } from './pool.js';
import { NO_ISOLATION, SANDBOX_RUNTIME_DIR, type Isolation } from './isolation.js';

/** The repository root (where `runtimes/` lives), found from this file's location. */
export const packageRoot: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'runtimes', 'PROTOCOL.md'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the Nimbus runtimes/ folder');
    dir = up;
  }
  return dir;
})();

/** Interpreters found on the host, resolved once. */
export interface HostRuntimes {
  /** Absolute path of node (the platform's own). */
  readonly node: string;
  readonly nodeVersion: string;
  /** Absolute path of the real python3 executable (not a pyenv shim), or null. */
  readonly python: string | null;
  readonly pythonVersion: string | null;
  /** `sys.prefix` and `sys.base_prefix` of that Python (differ in a virtualenv): what a sandbox must show it. */
  readonly pythonPrefixes: readonly string[];
}

/**
 * Finds the interpreters. Python: `pythonCommand` (default `python3` on PATH) is
 * asked for `sys.executable` once, so a pyenv shim (a shell script costing
 * 50–110 ms per start here) is not on every cold start.
 */
export function detectHostRuntimes(pythonCommand = 'python3', env: NodeJS.ProcessEnv = process.env, withPython = true): HostRuntimes {
  let python: string | null = null;
  let pythonVersion: string | null = null;
  let pythonPrefixes: string[] = [];
  if (withPython) try {
    const out = execFileSync(pythonCommand, ['-c', 'import sys; print(sys.executable); print("%d.%d" % sys.version_info[:2]); print(sys.prefix); print(sys.base_prefix)'], {
      encoding: 'utf8', env, timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'],
    }).trim().split('\n');
    if (out[0] && existsSync(out[0])) {
      python = out[0];
      pythonVersion = out[1] ?? null;
      pythonPrefixes = [...new Set([out[2], out[3]].filter((p): p is string => Boolean(p)))];
    }
  } catch { /* no python */ }
  return { node: process.execPath, nodeVersion: process.versions.node, python, pythonVersion, pythonPrefixes };
}

/** One warning when the configured runtime's version differs from the host's interpreter. */
export function runtimeVersionWarning(spec: FunctionSpec, host: HostRuntimes): string | null {
  if (spec.language === 'node') {
    const want = /^nodejs(\d+)/.exec(spec.runtime)?.[1];
    const have = host.nodeVersion.split('.')[0];
    if (want && want !== have) return `${spec.runtime} runs on this host's Node.js ${host.nodeVersion}`;
  } else {
    const want = /^python(\d+\.\d+)/.exec(spec.runtime)?.[1];
    if (want && host.pythonVersion && want !== host.pythonVersion) return `${spec.runtime} runs on this host's Python ${host.pythonVersion}`;
  }
  return null;
}

/** Lambda's function ARN of a function spec (its region and name). */
export function functionArn(spec: FunctionSpec): string {
  return lambdaFunctionArn(spec.region, spec.name);
}

/**
 * The environment an instance sees: Lambda's reserved variables plus the
 * function's own, and nothing of the platform's (no NODE_OPTIONS, no
 * NODE_EXTRA_CA_CERTS, no credentials of the host).
 * https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime
 */
export function instanceEnvironment(spec: FunctionSpec, host: HostRuntimes, logStreamName: string): Record<string, string> {
  const interpreterDir = dirname(spec.language === 'node' ? host.node : (host.python ?? '/usr/bin/python3'));
  return {
    PATH: `${interpreterDir}:/usr/local/bin:/usr/bin:/bin`,
    LANG: 'en_US.UTF-8',
    TZ: ':UTC',
    LAMBDA_TASK_ROOT: spec.codeDir,
    LAMBDA_RUNTIME_DIR: join(packageRoot, 'runtimes', spec.language),
    _HANDLER: spec.handler,
    AWS_EXECUTION_ENV: `AWS_Lambda_${spec.runtime}`,
    AWS_REGION: spec.region,
    AWS_DEFAULT_REGION: spec.region,
    AWS_LAMBDA_FUNCTION_NAME: spec.name,
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(spec.memorySize),
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${spec.name}`,
    AWS_LAMBDA_LOG_STREAM_NAME: logStreamName,
    ...(spec.language === 'python' ? { PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' } : {}),
    // Set by Lambda Managed Instances for a function that runs several invocations per instance.
    ...(spec.perExecutionEnvironmentMaxConcurrency ? { AWS_LAMBDA_MAX_CONCURRENCY: String(spec.perExecutionEnvironmentMaxConcurrency) } : {}),
    ...spec.environment,
  };
}

const TS_EXTENSIONS = ['.ts', '.mts', '.cts'];

/**
 * For a Node function, the file the runtime should import: undefined for
 * JavaScript (the runtime resolves .js/.mjs/.cjs itself), or an esbuild
 * bundle (ESM) for a TypeScript handler, written under `buildDir`.
 *
 * @throws NimbusError NIMBUS_ERR_BUILD_FAILED with esbuild's first error.
 */
export async function prepareModule(spec: FunctionSpec, buildDir: string): Promise<string | undefined> {
  if (spec.language !== 'node') return undefined;
  const slash = spec.handler.lastIndexOf('/');
  const dot = spec.handler.indexOf('.', slash + 1);
  const moduleName = spec.handler.slice(0, dot < 0 ? undefined : dot);
  for (const ext of ['.js', '.mjs', '.cjs']) if (existsSync(join(spec.codeDir, moduleName + ext))) return undefined;
  const source = TS_EXTENSIONS.map((ext) => join(spec.codeDir, moduleName + ext)).find((f) => existsSync(f));
  if (!source) return undefined;
  const outfile = resolve(buildDir, `${spec.key}.mjs`);
  mkdirSync(dirname(outfile), { recursive: true });
  try {
    // Loaded only when there is TypeScript to bundle: esbuild costs ~70 ms of start-up.
    const { build } = await import('esbuild');
    await build({
      entryPoints: [source],
      outfile,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: `node${process.versions.node.split('.')[0]}`,
      sourcemap: 'inline',
      logLevel: 'silent',
      // CommonJS dependencies inside an ESM bundle still call require().
      banner: { js: "import { createRequire as __nimbusCreateRequire } from 'node:module'; const require = __nimbusCreateRequire(import.meta.url);" },
      absWorkingDir: spec.codeDir,
    });
  } catch (e) {
    const first = (e as { errors?: Array<{ text: string; location?: { file: string; line: number; column: number } }> }).errors?.[0];
    const reason = first
      ? `${first.location ? `${first.location.file}:${first.location.line}:${first.location.column}: ` : ''}${first.text}`
      : String(e);
    throw new NimbusError('NIMBUS_ERR_BUILD_FAILED', { function: spec.key, file: source, reason }, { cause: e });
  }
  return outfile;
}

/** Latest modification time (ms) of a file, or 0. */
export function mtimeMs(file: string): number {
  try { return statSync(file).mtimeMs; } catch { return 0; }
}

/** The runtime shim's folder on the host. */
function runtimeDir(language: 'node' | 'python'): string {
  return join(packageRoot, 'runtimes', language);
}

/** The interpreter's folders a sandbox must show (the runtime shim is bound on its own). */
function interpreterPaths(language: 'node' | 'python', host: HostRuntimes): string[] {
  return runtimeReadPaths(language, host).slice(1);
}

/** runtimeReadPaths' answers by language and host (every instance start asks; realpath is a system call). */
const readPathsCache = new WeakMap<HostRuntimes, Map<string, readonly string[]>>();

/** Folders an instance of `language` must read besides its code: the runtime shim, then the interpreter's prefixes. */
export function runtimeReadPaths(language: 'node' | 'python', host: HostRuntimes): string[] {
  let byLanguage = readPathsCache.get(host);
  if (!byLanguage) readPathsCache.set(host, byLanguage = new Map());
  let paths = byLanguage.get(language);
  if (!paths) byLanguage.set(language, paths = findReadPaths(language, host));
  return [...paths];
}

function findReadPaths(language: 'node' | 'python', host: HostRuntimes): string[] {
  const interpreter = language === 'node' ? host.node : host.python;
  const paths = [runtimeDir(language)];
  if (interpreter) {
    // The folder the interpreter sits in (a virtualenv's bin/ is a link there), and where it really lives.
    const prefixes = new Set([dirname(dirname(interpreter)), dirname(dirname(realpathSync(interpreter)))]);
    if (language === 'python') for (const p of host.pythonPrefixes) prefixes.add(p);
    for (const p of prefixes) if (p !== '/usr' && p !== '/' && !p.startsWith('/usr/')) paths.push(p);
  }
  return paths;
}

/**
 * How to start a generic, pre-warmed process of `language` for functions
 * whose code is in `codeDir` (see pool.ts), or null when the host has no
 * interpreter for it.
 */
export function poolRuntimeFor(language: 'node' | 'python', host: HostRuntimes, isolation: Isolation, codeDir: string): PoolRuntime | null {
  const interpreter = language === 'node' ? host.node : host.python;
  if (!interpreter) return null;
  const env = { PATH: `${dirname(interpreter)}:/usr/local/bin:/usr/bin:/bin`, LANG: 'en_US.UTF-8', TZ: ':UTC' };
  const bootstrap = join(packageRoot, 'runtimes', language, language === 'node' ? 'bootstrap.mjs' : 'bootstrap.py');
  // --pooled: the Node runtime warms its own code up while it waits (runtimes/PROTOCOL.md, HELLO).
  const args = language === 'node' ? [bootstrap, '--pooled'] : ['-S', bootstrap];
  const wrapped = isolation.wrap(interpreter, args, codeDir, runtimeDir(language), interpreterPaths(language, host));
  return { language, command: wrapped.command, args: wrapped.args, env, cwd: codeDir };
}

/**
 * Everything needed to start one instance of `spec`, sandboxed by `isolation`.
 * @throws NimbusError NIMBUS_ERR_RUNTIME_UNAVAILABLE when the host lacks the interpreter.
 */
export function launchFor(spec: FunctionSpec, host: HostRuntimes, modulePath: string | undefined, instanceTag: string, isolation: Isolation = NO_ISOLATION): InstanceLaunch {
  const logStreamName = `${new Date().toISOString().slice(0, 10).replace(/-/g, '/')}/[$LATEST]${instanceTag}`;
  const taskRoot = isolation.inside(spec.codeDir, spec.codeDir);
  const env = {
    ...instanceEnvironment(spec, host, logStreamName),
    LAMBDA_TASK_ROOT: taskRoot,
    ...(isolation.kind === 'bwrap' ? { LAMBDA_RUNTIME_DIR: SANDBOX_RUNTIME_DIR } : {}),
  };
  const init = {
    handler: spec.handler,
    taskRoot,
    env,
    functionName: spec.name,
    functionVersion: '$LATEST',
    memorySize: spec.memorySize,
    invokedFunctionArn: functionArn(spec),
    logGroupName: `/aws/lambda/${spec.name}`,
    logStreamName,
    ...(modulePath ? { modulePath: isolation.inside(modulePath, spec.codeDir) } : {}),
  };
  const initTimeoutMs = 10_000 + spec.timeout * 1000;
  let interpreter: string;
  let args: string[];
  if (spec.language === 'node') {
    // V8's heap gets ~90% of the memory size (Lambda does the same); Buffers are held by the memory limit.
    const heapMB = Math.max(64, Math.floor(spec.memorySize * 0.9));
    interpreter = host.node;
    args = [`--max-old-space-size=${heapMB}`, join(packageRoot, 'runtimes', 'node', 'bootstrap.mjs')];
  } else {
    if (!host.python) {
      throw new NimbusError('NIMBUS_ERR_RUNTIME_UNAVAILABLE', { language: 'Python', runtime: spec.runtime, reason: 'python3 is not on PATH' });
    }
    interpreter = host.python;
    // -S: no site module nor .pth files (see bootstrap.py); the runtime adds site-packages itself.
    args = ['-S', join(packageRoot, 'runtimes', 'python', 'bootstrap.py')];
  }
  const wrapped = isolation.wrap(interpreter, args, spec.codeDir, runtimeDir(spec.language), interpreterPaths(spec.language, host));
  return {
    command: wrapped.command, args: wrapped.args, env, cwd: spec.codeDir, init, memoryMB: spec.memorySize, initTimeoutMs,
    wrapped: isolation.kind !== 'none',
  };
}
