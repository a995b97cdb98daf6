/**
 * The composition root: wires config, sandbox, dispatchers, gateway and the
 * control API together. Only this folder knows every part.
 */
import { join } from 'node:path';
import type { FunctionSpec, InvocationResult, ServiceSpec } from '../core/index.js';
import { summarise, type InvocationRecord, type MetricsSummary } from '../telemetry/index.js';

/** Invocation records kept in memory by `nimbus dev` (the server keeps them in its store). */
const RECORDS_KEPT = 10_000;
import { loadServiceConfig } from '../config/index.js';
import { totalmem } from 'node:os';
import { Capacity, FunctionDispatcher } from '../invoke/index.js';
import {
  canUsePool, detectHostRuntimes, detectIsolation, detectLimitEnforcer, functionArn, Instance, launchFor, NO_ISOLATION,
  poolRuntimeFor, prepareModule, runtimeReadPaths, runtimeVersionWarning, WarmPool,
  type HostRuntimes, type Isolation, type LimitEnforcer,
} from '../sandbox/index.js';

/** Settings of a platform serving one serverless.yml. */
export interface PlatformOptions {
  readonly configPath: string;
  readonly stage?: string;
  readonly region?: string;
  /** Environment for `${env:...}` variables (the CLI passes process.env). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Receives log text: invocation logs (START … REPORT) and platform messages. */
  readonly log: (text: string, spec?: FunctionSpec) => void;
  /** An idle instance retires after this many ms (default 5 min). */
  readonly keepAliveMs?: number;
  /** Most instances per function when no reservedConcurrency is set (the account limit, default 1000). */
  readonly accountConcurrency?: number;
  /** Share of host memory (0–1) the sum of live instances' memorySize may use (default 0.8). */
  readonly hostMemoryShare?: number;
  /** Most invocations of one function waiting for an instance at a limit (default 100). */
  readonly maxQueued?: number;
  /** Longest wait for an instance at a limit before an invocation is throttled, ms (default 3000). */
  readonly maxQueueWaitMs?: number;
  /** `auto` (default): sandbox instances with bubblewrap where the host allows; `none`: plain child processes. */
  readonly isolation?: 'auto' | 'none';
  /** Pre-warmed runtime processes kept per language (default 2; 0 turns the pools off). */
  readonly warmPoolSize?: number;
  /** Python command to resolve once (default `python3`). */
  readonly pythonCommand?: string;
  /** Where TypeScript bundles go (default `<service dir>/.nimbus/build`). */
  readonly buildDir?: string;
  /** Shared host facts (tests pass them to skip detection). */
  readonly hostRuntimes?: HostRuntimes;
  readonly limits?: LimitEnforcer;
}

/**
 * The functions of one service, each behind its dispatcher. `load()` reads the
 * config and prepares code; `reload()` does it again and swaps atomically:
 * if anything fails, the previous config keeps serving.
 */
export class Platform {
  spec!: ServiceSpec;
  host: HostRuntimes;
  readonly limits: LimitEnforcer;
  readonly capacity: Capacity;
  /** Decided at the first load (it depends on the code folders). */
  isolation: Isolation = NO_ISOLATION;
  private isolationDecided = false;
  private readonly dispatchers = new Map<string, FunctionDispatcher>();
  private byName = new Map<string, string>();
  private readonly recent: InvocationRecord[] = [];
  /** Warm pools by language and code folder (a sandboxed process sees one folder). */
  private readonly pools = new Map<string, WarmPool>();

  constructor(private readonly options: PlatformOptions) {
    // Python is looked for once a service has a Python function (a pyenv shim costs ~0.4 s).
    this.host = options.hostRuntimes ?? detectHostRuntimes(options.pythonCommand ?? 'python3', options.env as NodeJS.ProcessEnv, false);
    this.limits = options.limits ?? detectLimitEnforcer();
    this.capacity = new Capacity(Math.floor((totalmem() / (1024 * 1024)) * (options.hostMemoryShare ?? 0.8)));
  }

  /** Reads the config and prepares every function. Throws NimbusError on bad config or code. */
  async load(): Promise<ServiceSpec> {
    const spec = loadServiceConfig(this.options.configPath, { stage: this.options.stage, region: this.options.region, env: this.options.env });
    if (!this.options.hostRuntimes && this.host.python === null && this.host.pythonPrefixes.length === 0
      && spec.functions.some((f) => f.language === 'python')) {
      this.host = detectHostRuntimes(this.options.pythonCommand ?? 'python3', this.options.env as NodeJS.ProcessEnv, true);
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
    const out = [...this.spec.warnings];
    const seen = new Set<string>();
    for (const f of this.spec.functions) {
      const w = runtimeVersionWarning(f, this.host);
      if (w && !seen.has(w)) { seen.add(w); out.push(w); }
      // As the Serverless Framework warns: API Gateway stops waiting at 29 s (REST) / 30 s (HTTP API).
      for (const api of ['REST', 'HTTP'] as const) {
        const limit = api === 'REST' ? 29 : 30;
        if (f.timeout > limit && this.spec.routes.some((r) => r.api === api && r.functionKey === f.key)) {
          out.push(`functions.${f.key}.timeout is ${f.timeout} s, but API Gateway (${api === 'REST' ? 'http' : 'httpApi'} events) answers 504 after ${limit} s`);
        }
      }
    }
    return out;
  }

  /** The function with this key or name, or undefined. */
  find(nameOrKey: string): FunctionDispatcher | undefined {
    return this.dispatchers.get(nameOrKey) ?? this.dispatchers.get(this.byName.get(nameOrKey) ?? '');
  }

  /** Runs one synchronous invocation of the function with key `key`. */
  invoke(key: string, event: string): Promise<InvocationResult> {
    const d = this.dispatchers.get(key);
    if (!d) {
      return Promise.resolve({
        requestId: '', outcome: 'rejected', durationMs: 0, billedDurationMs: 0, logs: '',
        payload: JSON.stringify({ errorType: 'ResourceNotFoundException', errorMessage: `Function not found: ${key}` }),
      });
    }
    return d.invoke({ event, invokedFunctionArn: functionArn(d.spec) }).then((r) => {
      this.record(d.spec, r);
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
    this.recent.push({
      requestId: r.requestId, functionName: spec.name, version: '$LATEST', startMs: Date.now() - r.durationMs,
      durationMs: r.durationMs, billedDurationMs: r.billedDurationMs, memorySize: spec.memorySize,
      maxMemoryUsedMB: r.maxMemoryUsedMB, initDurationMs: r.initDurationMs, outcome: r.outcome,
    });
    if (this.recent.length > RECORDS_KEPT * 1.25) this.recent.splice(0, this.recent.length - RECORDS_KEPT);
  }

  /** Stops every instance. */
  async close(): Promise<void> {
    await Promise.all([...this.dispatchers.values()].map((d) => d.close()));
    this.dispatchers.clear();
    for (const p of this.pools.values()) p.close();
    this.pools.clear();
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
      this.isolation = detectIsolation(this.options.isolation ?? 'auto', [...readable]);
    }
    for (const f of spec.functions) launchFor(f, this.host, modules.get(f.key), 'check', this.isolation);
    return modules;
  }

  /** A warm pool for each language the service uses. */
  private ensurePools(spec: ServiceSpec): void {
    const size = this.options.warmPoolSize ?? 2;
    if (size <= 0) return;
    for (const f of spec.functions) {
      const key = poolKey(f);
      if (this.pools.has(key)) continue;
      const runtime = poolRuntimeFor(f.language, this.host, this.isolation, f.codeDir);
      if (runtime) this.pools.set(key, new WarmPool(runtime, size));
    }
  }

  /**
   * The host's AWS credentials, given to functions as Lambda gives its
   * execution role's (AWS_ACCESS_KEY_ID, …), so SDK calls work in dev; a
   * function's own `environment:` wins.
   */
  private credentials(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']) {
      const v = this.options.env[k];
      if (v) out[k] = v;
    }
    return out;
  }

  private apply(spec: ServiceSpec, modules: Map<string, string | undefined>): void {
    const credentials = this.credentials();
    if (Object.keys(credentials).length) {
      spec = { ...spec, functions: spec.functions.map((f) => ({ ...f, environment: { ...credentials, ...f.environment } })) };
    }
    this.spec = spec;
    this.ensurePools(spec);
    const byName = new Map<string, string>();
    const keep = new Set<string>();
    for (const f of spec.functions) {
      keep.add(f.key);
      byName.set(f.name, f.key);
      let seq = 0;
      const launch = () => launchFor(f, this.host, modules.get(f.key), `${f.key}-${++seq}`, this.isolation);
      const existing = this.dispatchers.get(f.key);
      const maxInstances = f.reservedConcurrency ?? this.options.accountConcurrency ?? 1000;
      const minInstances = f.provisionedConcurrency ?? 0;
      if (existing) {
        existing.reload(f, launch, { maxInstances, minInstances });
        continue;
      }
      this.dispatchers.set(f.key, new FunctionDispatcher(f, {
        maxInstances,
        minInstances,
        keepAliveMs: this.options.keepAliveMs ?? 5 * 60_000,
        maxQueued: this.options.maxQueued,
        maxQueueWaitMs: this.options.maxQueueWaitMs,
        launch,
        limits: this.limits,
        capacity: this.capacity,
        startInstance: (launch, limits, current) => {
          const pooled = canUsePool(current.environment) ? this.pools.get(poolKey(current))?.take() : undefined;
          return Instance.start(launch, limits, pooled);
        },
        onLog: (s, text) => this.options.log(text, s),
      }));
    }
    for (const [key, d] of this.dispatchers) {
      if (!keep.has(key)) { this.dispatchers.delete(key); void d.drain(); }
    }
    this.byName = byName;
  }
}

function poolKey(f: FunctionSpec): string {
  return `${f.language}:${f.codeDir}`;
}
