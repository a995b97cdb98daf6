/**
 * The dispatcher of one function: the only way in to its instances.
 *
 * Invocations are handed to an idle instance when there is one, else queued
 * (FIFO) while a new instance cold-starts; an instance that becomes free
 * takes the head of the queue, so a queued invocation is served by whichever
 * instance is ready first. One invocation at a time per instance, as on
 * Lambda; idle instances retire after a keep-alive.
 * https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html
 */
import { newRequestId, type FunctionSpec, type InvocationResult, type Outcome } from '../core/index.js';
import { Instance, type InstanceLaunch, type LimitEnforcer } from '../sandbox/index.js';

/** Settings of a dispatcher. */
export interface DispatcherOptions {
  /** Most instances at once (reserved concurrency, else the account limit). */
  readonly maxInstances: number;
  /** An idle instance retires after this many ms without work. */
  readonly keepAliveMs: number;
  /** Makes the launch of a new instance (interpreter, env, code file). */
  readonly launch: () => InstanceLaunch;
  readonly limits: LimitEnforcer;
  /** Receives each invocation's whole log text (START … REPORT) when it ends, and init logs. */
  readonly onLog?: (spec: FunctionSpec, text: string) => void;
}

/** One invocation to run. */
export interface InvokeRequest {
  /** JSON text (or bytes) of the event. */
  readonly event: string | Buffer;
  /** Defaults to a new UUID. */
  readonly requestId?: string;
  readonly invokedFunctionArn?: string;
}

interface Pending {
  readonly request: InvokeRequest;
  readonly requestId: string;
  readonly resolve: (r: InvocationResult) => void;
}

/** Counts for the scaler and for tests. */
export interface DispatcherStats {
  readonly instances: number;
  readonly starting: number;
  readonly busy: number;
  readonly idle: number;
  readonly queued: number;
}

export class FunctionDispatcher {
  private readonly idle: Instance[] = [];
  private readonly all = new Set<Instance>();
  private readonly queue: Pending[] = [];
  private starting = 0;
  private generation = 0;
  private readonly generationOf = new WeakMap<Instance, number>();
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;

  constructor(public spec: FunctionSpec, private options: DispatcherOptions) {
    this.sweeper = setInterval(() => this.retireIdle(), Math.min(1000, options.keepAliveMs)).unref();
  }

  /**
   * Runs one invocation and resolves with its result; never rejects. The
   * outcome is one of `ok`, `error`, `timeout`, `oom`, `crashed`, `init_error`.
   */
  invoke(request: InvokeRequest): Promise<InvocationResult> {
    const requestId = request.requestId ?? newRequestId();
    return new Promise((resolve) => {
      const pending: Pending = { request, requestId, resolve };
      const inst = this.idle.pop();
      if (inst) { this.run(inst, pending); return; }
      this.queue.push(pending);
      if (this.starting < this.queue.length && this.all.size < this.options.maxInstances) this.startInstance();
    });
  }

  /** New invocations get new code: idle instances retire now, busy ones when they finish. */
  reload(spec: FunctionSpec, launch: () => InstanceLaunch): void {
    this.spec = spec;
    this.options = { ...this.options, launch };
    this.generation++;
    for (const inst of this.idle.splice(0)) inst.retire();
  }

  stats(): DispatcherStats {
    let busy = 0;
    for (const i of this.all) if (i.state === 'busy') busy++;
    return { instances: this.all.size, starting: this.starting, busy, idle: this.idle.length, queued: this.queue.length };
  }

  /** Stops every instance; in-flight invocations end as `crashed`, queued ones are answered as throttled-free errors. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    const exits = [...this.all].map((i) => new Promise<void>((r) => { i.onExited(r); i.kill('retire'); }));
    for (const p of this.queue.splice(0)) p.resolve(this.platformResult(p.requestId, 'crashed', 'Nimbus.ShuttingDown', 'The platform is shutting down'));
    await Promise.all(exits);
  }

  // ---- internals ----------------------------------------------------------

  private startInstance(): void {
    this.starting++;
    let launch: InstanceLaunch;
    try {
      launch = this.options.launch();
    } catch (e) {
      this.starting--;
      const p = this.queue.shift();
      if (p) p.resolve(this.platformResult(p.requestId, 'init_error', 'Runtime.Unavailable', (e as Error).message));
      return;
    }
    const inst = Instance.start(launch, this.options.limits);
    this.all.add(inst);
    this.generationOf.set(inst, this.generation);
    inst.onExited(() => {
      this.all.delete(inst);
      const at = this.idle.indexOf(inst);
      if (at >= 0) this.idle.splice(at, 1);
    });
    void inst.ready.then((init) => {
      this.starting--;
      if (!init.ok) {
        const p = this.queue.shift();
        const logs = inst.takeIdleLogs();
        if (p) {
          const report = `INIT_REPORT Init Duration: ${init.initDurationMs.toFixed(2)} ms\tPhase: init\tStatus: error\tError Type: ${errorTypeOf(init.payload)}\n`;
          this.finish(p, logs + report, { outcome: init.outcome, payload: init.payload, durationMs: 0, initDurationMs: init.initDurationMs });
        } else if (logs) {
          this.options.onLog?.(this.spec, logs);
        }
        if (this.starting < this.queue.length && !this.closed) this.startInstance();
        return;
      }
      this.release(inst);
    });
  }

  private run(inst: Instance, p: Pending): void {
    // The first invocation of an instance is its cold start and reports the init duration.
    const initDurationMs = inst.invocations === 0 ? inst.initDurationMs : undefined;
    const spec = this.spec;
    let logs = inst.takeIdleLogs();
    logs += `START RequestId: ${p.requestId} Version: $LATEST\n`;
    void inst.invoke({
      requestId: p.requestId,
      event: p.request.event,
      deadlineMs: Date.now() + spec.timeout * 1000,
      timeoutSeconds: spec.timeout,
      invokedFunctionArn: p.request.invokedFunctionArn,
      onLog: (text) => { logs += text; },
    }).then((answer) => {
      this.finish(p, logs, { ...answer, initDurationMs }, true);
      this.release(inst);
    });
  }

  /** An instance that is free again: serve the queue, or park it. */
  private release(inst: Instance): void {
    if (inst.state !== 'idle') return;
    if (this.closed || this.generationOf.get(inst) !== this.generation) { inst.retire(); this.maybeStartForQueue(); return; }
    const next = this.queue.shift();
    if (next) this.run(inst, next); else this.idle.push(inst);
  }

  private maybeStartForQueue(): void {
    if (!this.closed && this.starting < this.queue.length && this.all.size < this.options.maxInstances) this.startInstance();
  }

  private finish(
    p: Pending,
    logsSoFar: string,
    a: { outcome: Outcome; payload: string; durationMs: number; initDurationMs?: number; maxMemoryUsedMB?: number },
    started = false,
  ): void {
    const billed = Math.max(1, Math.ceil(a.durationMs));
    let logs = logsSoFar;
    if (started) {
      logs += `END RequestId: ${p.requestId}\n`;
      logs += `REPORT RequestId: ${p.requestId}\tDuration: ${a.durationMs.toFixed(2)} ms\tBilled Duration: ${billed} ms\t`
        + `Memory Size: ${this.spec.memorySize} MB\tMax Memory Used: ${a.maxMemoryUsedMB ?? this.spec.memorySize} MB`
        + `${a.initDurationMs !== undefined ? `\tInit Duration: ${a.initDurationMs.toFixed(2)} ms` : ''}`
        + `${a.outcome === 'timeout' ? '\tStatus: timeout' : a.outcome === 'oom' || a.outcome === 'crashed' ? '\tStatus: error\tError Type: Runtime.ExitError' : ''}\n`;
    }
    this.options.onLog?.(this.spec, logs);
    p.resolve({
      requestId: p.requestId,
      outcome: a.outcome,
      payload: a.payload,
      durationMs: a.durationMs,
      billedDurationMs: billed,
      initDurationMs: a.initDurationMs,
      maxMemoryUsedMB: a.maxMemoryUsedMB,
      logs,
    });
  }

  private platformResult(requestId: string, outcome: Outcome, errorType: string, message: string): InvocationResult {
    return {
      requestId, outcome, durationMs: 0, billedDurationMs: 0, logs: '',
      payload: JSON.stringify({ errorType, errorMessage: message }),
    };
  }

  private retireIdle(): void {
    const now = Date.now();
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const inst = this.idle[i];
      if (now - inst.lastUsedMs >= this.options.keepAliveMs) {
        this.idle.splice(i, 1);
        inst.retire();
      }
    }
  }
}

function errorTypeOf(payload: string): string {
  try { return String((JSON.parse(payload) as { errorType?: unknown }).errorType ?? 'Unknown'); } catch { return 'Unknown'; }
}
