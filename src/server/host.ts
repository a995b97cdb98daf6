/**
 * The instances side of a platform: one dispatcher per function version,
 * the warm runtime pools, the host memory budget, the limits and the
 * sandbox. `nimbus dev` hosts the functions of one serverless.yml (one id per
 * function key); `nimbus server` hosts every deployed version (one id per
 * `name:version`).
 */
import { totalmem } from 'node:os';
import type { FunctionSpec, InvocationResult } from '../core/index.js';
import { Capacity, FunctionDispatcher } from '../invoke/index.js';
import {
  canUsePool, detectIsolation, functionArn, Instance, launchFor, NO_ISOLATION, poolRuntimeFor, WarmPool,
  type HostRuntimes, type InstanceLaunch, type Isolation, type LimitEnforcer,
} from '../sandbox/index.js';

/** One function version to host. */
export interface HostedFunction {
  /** Unique among hosted functions: the key in dev, `name:version` on a server. */
  readonly id: string;
  readonly spec: FunctionSpec;
  /** `$LATEST` or a version number: what the instance reports (START line, context.functionVersion). */
  readonly version: string;
  /** A prebuilt module to import (a TypeScript bundle), when not the handler file itself. */
  readonly modulePath?: string;
}

/** Settings shared by every hosted function. */
export interface HostOptions {
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
  /** Pre-warmed runtime processes kept per language and code folder (default 2; 0 turns the pools off). */
  readonly warmPoolSize?: number;
  /** Receives each invocation's log text (START … REPORT) and init logs. */
  readonly onLog: (spec: FunctionSpec, text: string) => void;
}

/** Dispatchers of hosted function versions, their pools and the shared budget. */
export class FunctionHost {
  readonly capacity: Capacity;
  isolation: Isolation = NO_ISOLATION;
  private readonly dispatchers = new Map<string, FunctionDispatcher>();
  /** Warm pools by language and code folder (a sandboxed process sees one folder). */
  private readonly pools = new Map<string, WarmPool>();

  constructor(public runtimes: HostRuntimes, readonly limits: LimitEnforcer, private readonly options: HostOptions) {
    this.capacity = new Capacity(Math.floor((totalmem() / (1024 * 1024)) * (options.hostMemoryShare ?? 0.8)));
  }

  /** Decides the sandbox once: `auto` uses bubblewrap where the host allows and `readable` can be read by the sandbox's uid. */
  decideIsolation(mode: 'auto' | 'none', readable: readonly string[]): Isolation {
    this.isolation = detectIsolation(mode, [...readable]);
    return this.isolation;
  }

  get(id: string): FunctionDispatcher | undefined {
    return this.dispatchers.get(id);
  }

  ids(): string[] {
    return [...this.dispatchers.keys()];
  }

  /**
   * Hosts `fn`: starts its dispatcher, or, when `id` is hosted already with
   * another spec or module, swaps them (idle instances retire now, busy ones
   * when they finish).
   */
  ensure(fn: HostedFunction): FunctionDispatcher {
    this.ensurePool(fn.spec);
    let seq = 0;
    const launch = () => withVersion(launchFor(fn.spec, this.runtimes, fn.modulePath, `${fn.spec.key}-${++seq}`, this.isolation), fn.version);
    const maxInstances = fn.spec.reservedConcurrency ?? this.options.accountConcurrency ?? 1000;
    const minInstances = fn.spec.provisionedConcurrency ?? 0;
    const concurrency = fn.spec.perExecutionEnvironmentMaxConcurrency ?? 1;
    const existing = this.dispatchers.get(fn.id);
    if (existing) {
      if (existing.spec !== fn.spec || this.modules.get(fn.id) !== fn.modulePath) {
        existing.reload(fn.spec, launch, { maxInstances, minInstances, concurrency });
        this.modules.set(fn.id, fn.modulePath);
      }
      return existing;
    }
    const d = new FunctionDispatcher(fn.spec, {
      maxInstances,
      minInstances,
      concurrency,
      keepAliveMs: this.options.keepAliveMs ?? 5 * 60_000,
      maxQueued: this.options.maxQueued,
      maxQueueWaitMs: this.options.maxQueueWaitMs,
      launch,
      limits: this.limits,
      capacity: this.capacity,
      startInstance: (l, limits, current) => {
        const pooled = canUsePool(current.environment) ? this.pools.get(poolKey(current))?.take() : undefined;
        return Instance.start(l, limits, pooled);
      },
      onLog: (s, text) => this.options.onLog(s, text),
    });
    this.dispatchers.set(fn.id, d);
    this.modules.set(fn.id, fn.modulePath);
    return d;
  }

  private readonly modules = new Map<string, string | undefined>();

  /**
   * Hosts exactly `fns`: new ids start, changed ones swap, and ids not in
   * the list drain (running and queued invocations finish, then their
   * instances stop). Pools of code folders no longer used close.
   */
  sync(fns: readonly HostedFunction[]): void {
    const keep = new Set<string>();
    for (const fn of fns) { keep.add(fn.id); this.ensure(fn); }
    for (const id of [...this.dispatchers.keys()]) if (!keep.has(id)) this.retire(id);
    this.closeUnusedPools(fns.map((f) => f.spec));
  }

  /** Stops hosting `id`: its running and queued invocations finish first. */
  retire(id: string): void {
    const d = this.dispatchers.get(id);
    if (!d) return;
    this.dispatchers.delete(id);
    this.modules.delete(id);
    void d.drain();
  }

  /** Closes the pools of code folders none of `specs` uses. */
  closeUnusedPools(specs: readonly FunctionSpec[]): void {
    const used = new Set(specs.map(poolKey));
    for (const d of this.dispatchers.values()) used.add(poolKey(d.spec));
    for (const [key, pool] of this.pools) if (!used.has(key)) { pool.close(); this.pools.delete(key); }
  }

  /**
   * Runs one invocation of hosted function `id`; resolves with `rejected`
   * (ResourceNotFoundException) when it is not hosted. Never rejects.
   */
  invoke(id: string, event: string | Buffer, invokedFunctionArn?: string, requestId?: string): Promise<InvocationResult> {
    const d = this.dispatchers.get(id);
    if (!d) {
      return Promise.resolve({
        requestId: requestId ?? '', outcome: 'rejected', durationMs: 0, billedDurationMs: 0, logs: '',
        payload: JSON.stringify({ errorType: 'ResourceNotFoundException', errorMessage: `Function not found: ${id}` }),
      });
    }
    return d.invoke({ event, invokedFunctionArn: invokedFunctionArn ?? functionArn(d.spec), requestId });
  }

  /** Stops every instance and pool. */
  async close(): Promise<void> {
    await Promise.all([...this.dispatchers.values()].map((d) => d.close()));
    this.dispatchers.clear();
    for (const p of this.pools.values()) p.close();
    this.pools.clear();
  }

  private ensurePool(spec: FunctionSpec): void {
    const size = this.options.warmPoolSize ?? 2;
    const key = poolKey(spec);
    if (size <= 0 || this.pools.has(key)) return;
    const runtime = poolRuntimeFor(spec.language, this.runtimes, this.isolation, spec.codeDir);
    if (runtime) this.pools.set(key, new WarmPool(runtime, size, this.limits));
  }
}

function poolKey(f: FunctionSpec): string {
  return `${f.language}:${f.codeDir}`;
}

/** The launch of a published version: the instance reports `version`, as Lambda's do (START line, context, env). */
function withVersion(launch: InstanceLaunch, version: string): InstanceLaunch {
  if (version === '$LATEST') return launch;
  const logStreamName = String(launch.init.logStreamName).replace('[$LATEST]', `[${version}]`);
  const env = { ...launch.env, AWS_LAMBDA_FUNCTION_VERSION: version, AWS_LAMBDA_LOG_STREAM_NAME: logStreamName };
  return { ...launch, env, init: { ...launch.init, functionVersion: version, logStreamName, env: { ...(launch.init.env as Record<string, string>), ...env } } };
}
