/**
 * The composition root: wires config, sandbox, dispatchers, gateway and the
 * control API together. Only this folder knows every part.
 */
import { join } from 'node:path';
import type { FunctionSpec, InvocationResult, ServiceSpec } from '../core/index.js';
import { summarise, type InvocationRecord, type MetricsSummary } from '../telemetry/index.js';
import { loadServiceConfig } from '../config/index.js';
import type { FunctionDispatcher } from '../invoke/index.js';
import {
  detectHostRuntimes, detectLimitEnforcer, launchFor, prepareModule, runtimeReadPaths, runtimeVersionWarning,
  type HostRuntimes, type Isolation, type LimitEnforcer,
} from '../sandbox/index.js';
import { FunctionHost, type HostOptions } from './host.js';

/** Invocation records kept in memory by `nimbus dev` (the server keeps them in its store). */
const RECORDS_KEPT = 10_000;

/** Settings of a platform serving one serverless.yml. */
export interface PlatformOptions extends Omit<HostOptions, 'onLog'> {
  readonly configPath: string;
  readonly stage?: string;
  readonly region?: string;
  /** Environment for `${env:...}` variables (the CLI passes process.env). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Receives log text: invocation logs (START … REPORT) and platform messages. */
  readonly log: (text: string, spec?: FunctionSpec) => void;
  /** `auto` (default): sandbox instances with bubblewrap where the host allows; `none`: plain child processes. */
  readonly isolation?: 'auto' | 'none';
  /** Python command to resolve once (default `python3`). */
  readonly pythonCommand?: string;
  /** Where TypeScript bundles go (default `<service dir>/.nimbus/build`). */
  readonly buildDir?: string;
  /** Shared host facts (tests pass them to skip detection). */
  readonly hostRuntimes?: HostRuntimes;
  readonly limits?: LimitEnforcer;
  /** Environment every function of the service gets under its own (e.g. where the SQS and SNS APIs are). */
  readonly environment?: (spec: ServiceSpec) => Record<string, string>;
}

/**
 * The functions of one service, each behind its dispatcher. `load()` reads the
 * config and prepares code; `reload()` does it again and swaps atomically:
 * if anything fails, the previous config keeps serving.
 */
export class Platform {
  spec!: ServiceSpec;
  readonly functions: FunctionHost;
  private isolationDecided = false;
  private byName = new Map<string, string>();
  private readonly recent: InvocationRecord[] = [];

  constructor(private readonly options: PlatformOptions) {
    // Python is looked for once a service has a Python function (a pyenv shim costs ~0.4 s).
    const runtimes = options.hostRuntimes ?? detectHostRuntimes(options.pythonCommand ?? 'python3', options.env as NodeJS.ProcessEnv, false);
    this.functions = new FunctionHost(runtimes, options.limits ?? detectLimitEnforcer(), {
      ...options,
      onLog: (s, text) => options.log(text, s),
    });
  }

  /** The interpreters found on the host. */
  get host(): HostRuntimes { return this.functions.runtimes; }
  get limits(): LimitEnforcer { return this.functions.limits; }
  /** Decided at the first load (it depends on the code folders). */
  get isolation(): Isolation { return this.functions.isolation; }

  /** Reads the config and prepares every function. Throws NimbusError on bad config or code. */
  async load(): Promise<ServiceSpec> {
    const spec = loadServiceConfig(this.options.configPath, { stage: this.options.stage, region: this.options.region, env: this.options.env });
    if (!this.options.hostRuntimes && this.host.python === null && this.host.pythonPrefixes.length === 0
      && spec.functions.some((f) => f.language === 'python')) {
      this.functions.runtimes = detectHostRuntimes(this.options.pythonCommand ?? 'python3', this.options.env as NodeJS.ProcessEnv, true);
    }
    const launches = await this.prepare(spec);
    this.apply(spec, launches);
    return spec;
  }

  /** Reads the config and code again; new invocations get the new code, in-flight ones finish. */
  async reload(): Promise<ServiceSpec> {
    return this.load();
  }

  /** Warnings of the config plus runtime version mismatches, one line each. */
  warnings(): string[] {
    return serviceWarnings(this.spec, this.host);
  }

  /** The function with this key or name, or undefined. */
  find(nameOrKey: string): FunctionDispatcher | undefined {
    return this.functions.get(nameOrKey) ?? this.functions.get(this.byName.get(nameOrKey) ?? '');
  }

  /** Runs one synchronous invocation of the function with key `key` (`requestId`: kept across retries of an asynchronous one). */
  invoke(key: string, event: string, requestId?: string): Promise<InvocationResult> {
    return this.functions.invoke(key, event, undefined, requestId).then((r) => {
      const d = this.functions.get(key);
      if (d) this.record(d.spec, r);
      return r;
    });
  }

  /** The recent invocation records (at most RECORDS_KEPT), oldest first. */
  records(): readonly InvocationRecord[] { return this.recent; }

  /** Metrics of one function (by key or name) or of all, from the recent records. */
  metrics(nameOrKey?: string): MetricsSummary & { function?: string } {
    const d = nameOrKey ? this.find(nameOrKey) : undefined;
    const recs = d ? this.recent.filter((r) => r.functionName === d.spec.name) : this.recent;
    if (!d) return summarise(recs);
    const stats = d.stats();
    return { function: d.spec.name, ...summarise(recs, { instances: { peak: stats.peakInstances, min: d.spec.provisionedConcurrency ?? 0 } }) };
  }

  private record(spec: FunctionSpec, r: InvocationResult): void {
    this.recent.push(invocationRecord(spec, '$LATEST', r));
    if (this.recent.length > RECORDS_KEPT * 1.25) this.recent.splice(0, this.recent.length - RECORDS_KEPT);
  }

  /** Stops every instance. */
  async close(): Promise<void> {
    await this.functions.close();
    if (!this.options.limits) await this.limits.close();
  }

  private async prepare(spec: ServiceSpec): Promise<Map<string, string | undefined>> {
    const buildDir = this.options.buildDir ?? join(spec.dir, '.nimbus', 'build');
    const modules = new Map<string, string | undefined>();
    for (const f of spec.functions) modules.set(f.key, await prepareModule(f, buildDir));
    // Fail now, not at the first request, when an interpreter is missing.
    if (!this.isolationDecided) {
      this.isolationDecided = true;
      const readable = new Set<string>();
      for (const f of spec.functions) {
        readable.add(f.codeDir);
        for (const p of runtimeReadPaths(f.language, this.host)) readable.add(p);
      }
      this.functions.decideIsolation(this.options.isolation ?? 'auto', [...readable]);
    }
    for (const f of spec.functions) launchFor(f, this.host, modules.get(f.key), 'check', this.isolation);
    return modules;
  }

  private apply(spec: ServiceSpec, modules: Map<string, string | undefined>): void {
    const credentials = { ...hostCredentials(this.options.env), ...this.options.environment?.(spec) };
    if (Object.keys(credentials).length) {
      spec = { ...spec, functions: spec.functions.map((f) => ({ ...f, environment: { ...credentials, ...f.environment } })) };
    }
    this.spec = spec;
    this.functions.sync(spec.functions.map((f) => ({ id: f.key, spec: f, version: '$LATEST', modulePath: modules.get(f.key) })));
    this.byName = new Map(spec.functions.map((f) => [f.name, f.key]));
  }
}

/** The record of one invocation for metrics and cost (the REPORT line's fields and the outcome). */
export function invocationRecord(spec: FunctionSpec, version: string, r: InvocationResult): InvocationRecord {
  return {
    requestId: r.requestId, functionName: spec.name, version, startMs: Date.now() - r.durationMs,
    durationMs: r.durationMs, billedDurationMs: r.billedDurationMs, memorySize: spec.memorySize,
    maxMemoryUsedMB: r.maxMemoryUsedMB, initDurationMs: r.initDurationMs, outcome: r.outcome,
  };
}

/** Warnings of a service's config plus runtime version mismatches and timeouts past API Gateway's, one line each. */
export function serviceWarnings(spec: ServiceSpec, host: HostRuntimes): string[] {
  const out = [...spec.warnings];
  const seen = new Set<string>();
  for (const f of spec.functions) {
    const w = runtimeVersionWarning(f, host);
    if (w && !seen.has(w)) { seen.add(w); out.push(w); }
    // As the Serverless Framework warns: API Gateway stops waiting at 29 s (REST) / 30 s (HTTP API).
    for (const api of ['REST', 'HTTP'] as const) {
      const limit = api === 'REST' ? 29 : 30;
      if (f.timeout > limit && spec.routes.some((r) => r.api === api && r.functionKey === f.key)) {
        out.push(`functions.${f.key}.timeout is ${f.timeout} s, but API Gateway (${api === 'REST' ? 'http' : 'httpApi'} events) answers 504 after ${limit} s`);
      }
    }
  }
  return out;
}

/**
 * The host's AWS credentials, given to functions as Lambda gives its
 * execution role's (AWS_ACCESS_KEY_ID, …), so SDK calls work in dev; a
 * function's own `environment:` wins.
 */
export function hostCredentials(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']) {
    const v = env[k];
    if (v) out[k] = v;
  }
  return out;
}
