/**
 * The dispatcher of one function: the only way in to its instances.
 *
 * Hot path: an invocation takes an idle instance (the most recently used,
 * so the others can age out) and runs at once. Otherwise it waits in a FIFO
 * queue and the scaler (`src/scaler`) decides how many instances to start;
 * concurrent arrivals at a function with none share that one decision. An
 * instance that becomes free takes the head of the queue, so a queued
 * invocation is served by whichever instance is ready first. One invocation
 * at a time per instance, as on Lambda, unless `concurrency` says more (an
 * opt-in: then invocations pack onto instances with room before idle ones).
 * https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html
 */
import { newRequestId, type FunctionSpec, type InvocationResult, type Outcome } from '../core/index.js';
import { Instance, type InstanceLaunch, type LimitEnforcer } from '../sandbox/index.js';
import { decide, type ScalingPolicy } from '../scaler/index.js';
import { billedDuration } from '../telemetry/index.js';
import type { Capacity, CapacityMember } from './capacity.js';

/** Settings of a dispatcher. */
export interface DispatcherOptions {
  /** Most instances at once (reserved concurrency, else the account limit). */
  readonly maxInstances: number;
  /** Instances kept initialised even when idle (provisioned concurrency). Default 0. */
  readonly minInstances?: number;
  /** An idle instance retires after this many ms without work. */
  readonly keepAliveMs: number;
  /** Most invocations waiting for an instance at a limit; more are throttled. Default 100. */
  readonly maxQueued?: number;
  /** Longest wait for an instance at a limit, in ms, before throttling. Default 3000. */
  readonly maxQueueWaitMs?: number;
  /** Makes the launch of a new instance (interpreter, env, code file). */
  readonly launch: () => InstanceLaunch;
  readonly limits: LimitEnforcer;
  /** The host's memory budget shared with other functions; unlimited when absent. */
  readonly capacity?: Capacity;
  /** Receives each invocation's whole log text (START … REPORT) when it ends, and init logs. */
  readonly onLog?: (spec: FunctionSpec, text: string) => void;
  /** The clock (epoch ms); injected by tests. */
  readonly now?: () => number;
  /**
   * Invocations one instance may run at once: an opt-in for Node.js
   * functions whose code allows it (as Lambda Managed Instances do); default
   * 1, Lambda's. Log lines still name their own request (the runtime keeps
   * each invocation's id with AsyncLocalStorage), but the instance's memory,
   * CPU, globals and /tmp are shared, and a timeout or crash of one
   * invocation ends the others running on that instance.
   */
  readonly concurrency?: number;
  /** Starts an instance (default `Instance.start` on a new process); the platform passes one that uses its warm pools. */
  readonly startInstance?: (launch: InstanceLaunch, limits: LimitEnforcer, spec: FunctionSpec) => Instance;
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
  /** Epoch ms it arrived. */
  readonly at: number;
}

/** Counts for metrics and tests. */
export interface DispatcherStats {
  readonly instances: number;
  readonly starting: number;
  readonly busy: number;
  readonly idle: number;
  readonly queued: number;
  /** The most instances this function had at once. */
  readonly peakInstances: number;
  /** Invocations throttled so far. */
  readonly throttled: number;
}

/**
 * Log text kept per invocation: a function printing without end must not eat
 * the platform's memory. Past the cap, the start and the end are kept.
 */
const MAX_LOG_CHARS = 1024 * 1024;
const LOG_HEAD_CHARS = 64 * 1024;
const LOG_TAIL_CHARS = 512 * 1024;

/** Lambda's throttling error (Invoke API: 429 TooManyRequestsException). */
const THROTTLED_PAYLOAD = (reserved: boolean) => JSON.stringify({
  errorType: 'TooManyRequestsException',
  errorMessage: 'Rate Exceeded.',
  Reason: reserved ? 'ReservedFunctionConcurrentInvocationLimitExceeded' : 'ConcurrentInvocationLimitExceeded',
});

/**
 * One function's instances and queue. `invoke()` resolves with an
 * InvocationResult (never rejects); `reload()` swaps code for new invocations;
 * `drain()` / `close()` stop it. Scaling decisions come from `src/scaler`.
 */
export class FunctionDispatcher implements CapacityMember {
  /** Idle instances (nothing running); the most recently used last. */
  private readonly idle: Instance[] = [];
  /** With concurrency above 1: instances running some invocations, with room for more. */
  private readonly partial: Instance[] = [];
  /** Instances whose cold start was reported (the first invocation of each). */
  private readonly coldReported = new WeakSet<Instance>();
  private readonly all = new Set<Instance>();
  /** Instances retired on purpose: their memory was given back to the host budget already. */
  private readonly retiring = new Set<Instance>();
  private queue: Pending[] = [];
  private starting = 0;
  private busy = 0;
  private peak = 0;
  private throttledCount = 0;
  private generation = 0;
  private readonly generationOf = new WeakMap<Instance, number>();
  /** Instances whose start was called off before they booted (ScalingDecision.cancel). */
  private readonly cancelled = new WeakSet<Instance>();
  /** Instances started with no invocation waiting (the provisioned minimum): their init is not a cold start. */
  private readonly startedAhead = new WeakSet<Instance>();
  private readonly ticker: NodeJS.Timeout;
  private queueTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private draining = false;
  private readonly now: () => number;
  private policy: ScalingPolicy;
  /** Moving averages (ms) the scaler weighs a wait for a busy instance with: time per invocation, time to start an instance. */
  private serviceMs: number | undefined;
  private coldStartMs: number | undefined;
  /** From the last scaling decision: when waiting invocations should be weighed again (epoch ms). */
  private recheckAt = Infinity;

  constructor(public spec: FunctionSpec, private options: DispatcherOptions) {
    this.now = options.now ?? Date.now;
    this.policy = policyOf(options);
    options.capacity?.join(this);
    // The ticker retires idle instances past the keep-alive and keeps the minimum.
    this.ticker = setInterval(() => this.scale(), Math.max(50, Math.min(1000, options.keepAliveMs / 2))).unref();
    if (this.policy.minInstances > 0) this.scale();
  }

  /**
   * Runs one invocation and resolves with its result; never rejects. The
   * outcome is one of `ok`, `error`, `timeout`, `oom`, `crashed`,
   * `init_error` or `throttled`.
   */
  invoke(request: InvokeRequest): Promise<InvocationResult> {
    const requestId = request.requestId ?? newRequestId();
    return new Promise((resolve) => {
      const pending: Pending = { request, requestId, resolve, at: this.now() };
      const inst = this.takeInstance();
      if (inst) { this.run(inst, pending); return; }
      this.queue.push(pending);
      this.scale();
    });
  }

  /** New invocations get new code: idle instances retire now, busy ones when they finish. */
  reload(spec: FunctionSpec, launch: () => InstanceLaunch, limits?: { maxInstances: number; minInstances?: number; concurrency?: number }): void {
    this.spec = spec;
    this.options = { ...this.options, launch, ...limits };
    this.policy = policyOf(this.options);
    this.generation++;
    for (const inst of this.idle.splice(0)) this.retire(inst);
    this.partial.splice(0); // retired once their invocations end (release)
    this.scale();
  }

  stats(): DispatcherStats {
    return {
      instances: this.all.size, starting: this.starting, busy: this.busy, idle: this.idle.length,
      queued: this.queue.length, peakInstances: this.peak, throttled: this.throttledCount,
    };
  }

  /**
   * For a function that was removed: invocations already running or queued
   * finish (up to their timeout), then every instance stops.
   */
  async drain(): Promise<void> {
    // Idle instances give their memory back at once, busy ones when they finish: the version replacing this one needs it.
    this.draining = true;
    for (const inst of this.idle.splice(0)) this.retire(inst);
    this.partial.splice(0);
    const until = Date.now() + this.spec.timeout * 1000 + 10_000;
    while ((this.busy > 0 || this.queue.length > 0 || this.starting > 0) && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await this.close();
  }

  /** Stops every instance; queued invocations are answered with an error. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.ticker);
    if (this.queueTimer) clearTimeout(this.queueTimer);
    this.options.capacity?.leave(this);
    const exits = [...this.all].map((i) => new Promise<void>((r) => { i.onExited(r); i.kill('retire'); }));
    for (const p of this.queue.splice(0)) p.resolve(this.platformResult(p.requestId, 'crashed', 'Nimbus.ShuttingDown', 'The platform is shutting down'));
    await Promise.all(exits);
  }

  // ---- CapacityMember -------------------------------------------------------

  oldestIdleMs(): number | undefined { return this.idle[0]?.lastUsedMs; }
  idleMB(): number { return this.idle.length * this.spec.memorySize; }
  retireOldestIdle(): number {
    const inst = this.idle.shift();
    if (!inst) return 0;
    this.retire(inst);
    return this.spec.memorySize;
  }
  onCapacityFreed(): void {
    if (this.queue.length > 0) this.scale();
  }

  // ---- internals ------------------------------------------------------------

  /** Asks the scaler what to do now and does it. */
  private scale(): void {
    if (this.closed) return;
    const now = this.now();
    const capacity = this.options.capacity;
    const d = decide(this.policy, {
      starting: this.starting,
      busy: this.busyInstances(),
      freeSlots: this.freeSlots(),
      idleSince: this.idle.map((i) => i.lastUsedMs),
      queued: this.queue.length,
      queuedSince: this.queue.map((p) => p.at),
      hostRoom: capacity ? capacity.room(this.spec.memorySize) : undefined,
      serviceMs: this.serviceMs,
      coldStartMs: this.coldStartMs,
    }, now);
    this.recheckAt = d.recheckAt ?? Infinity;
    if (d.retire.length) {
      const doomed = new Set(d.retire.map((i) => this.idle[i]));
      for (let i = this.idle.length - 1; i >= 0; i--) if (doomed.has(this.idle[i])) this.idle.splice(i, 1);
      for (const inst of doomed) this.retire(inst);
    }
    if (d.throttle > 0) {
      const covered = this.freeSlots() + (this.starting + d.start) * this.concurrency;
      const throttled = this.queue.splice(covered, d.throttle);
      this.throttledCount += throttled.length;
      const payload = THROTTLED_PAYLOAD(this.spec.reservedConcurrency !== undefined);
      for (const p of throttled) {
        p.resolve({ requestId: p.requestId, outcome: 'throttled', payload, durationMs: 0, billedDurationMs: 0, logs: '' });
      }
    }
    if (d.cancel) this.cancelStarts(d.cancel);
    for (let i = 0; i < d.start; i++) {
      if (capacity && !capacity.tryReserve(this.spec.memorySize)) break;
      // No invocation waits for it: started ahead of demand (the provisioned minimum).
      this.startInstance(this.queue.length <= this.starting);
    }
    this.armQueueTimer(now);
  }

  /** Stops up to `n` starting instances that are still waiting for a boot slot, the most recent first. */
  private cancelStarts(n: number): void {
    const waiting = [...this.all].filter((i) => i.awaitingBoot).reverse();
    for (const inst of waiting) {
      if (n <= 0) break;
      // Stopping one may decide again (its exit wakes the scaler), which may have stopped this one already.
      if (!inst.awaitingBoot) continue;
      n--;
      this.cancelled.add(inst);
      this.starting--;
      this.retire(inst);
    }
  }

  /**
   * Wakes the scaler when the oldest waiting invocation reaches its wait
   * limit, or sooner when one waiting for a busy instance would now be
   * better off with a new one (ScalingDecision.recheckAt).
   */
  private armQueueTimer(now: number): void {
    if (this.queueTimer) { clearTimeout(this.queueTimer); this.queueTimer = null; }
    if (this.queue.length === 0) return;
    const due = Math.min(this.queue[0].at + this.policy.maxQueueWaitMs, this.recheckAt) - now;
    this.queueTimer = setTimeout(() => { this.queueTimer = null; this.scale(); }, Math.max(1, Math.ceil(due)));
    this.queueTimer.unref();
  }

  private startInstance(ahead = false): void {
    this.starting++;
    const startedAt = performance.now();
    let launch: InstanceLaunch;
    try {
      launch = this.options.launch();
      if (this.concurrency > 1) launch = { ...launch, concurrency: this.concurrency };
    } catch (e) {
      this.starting--;
      this.options.capacity?.release(this.spec.memorySize);
      const p = this.queue.shift();
      if (p) p.resolve(this.platformResult(p.requestId, 'init_error', 'Runtime.Unavailable', (e as Error).message));
      return;
    }
    const inst = this.options.startInstance
      ? this.options.startInstance(launch, this.options.limits, this.spec)
      : Instance.start(launch, this.options.limits);
    this.all.add(inst);
    if (ahead) this.startedAhead.add(inst);
    if (this.all.size > this.peak) this.peak = this.all.size;
    this.generationOf.set(inst, this.generation);
    inst.onExited(() => {
      // What it wrote after its last invocation (an error thrown after the response, say) is still shown.
      const late = inst.takeIdleLogs();
      if (late) this.options.onLog?.(this.spec, late);
      this.all.delete(inst);
      const at = this.idle.indexOf(inst);
      if (at >= 0) this.idle.splice(at, 1);
      this.unlist(inst);
      if (!this.retiring.delete(inst)) this.options.capacity?.release(this.spec.memorySize);
      if (this.queue.length > 0) this.scale();
    });
    void inst.ready.then((init) => {
      if (this.cancelled.has(inst)) return; // counted out of `starting` when it was called off
      this.starting--;
      if (!init.ok) {
        // Lambda runs init again for the next invocation; this one gets the init error.
        const p = this.queue.shift();
        const logs = inst.takeIdleLogs();
        if (p) {
          const report = `INIT_REPORT Init Duration: ${init.initDurationMs.toFixed(2)} ms\tPhase: init\tStatus: error\tError Type: ${errorTypeOf(init.payload)}\n`;
          this.finish(p, logs + report, { outcome: init.outcome, payload: init.payload, durationMs: 0, initDurationMs: init.initDurationMs });
        } else if (logs) {
          this.options.onLog?.(this.spec, logs);
        }
        this.scale();
        return;
      }
      this.coldStartMs = average(this.coldStartMs, performance.now() - startedAt);
      if (inst.concurrency < this.concurrency) {
        // The runtime took fewer at once than asked (Python takes one): plan with what it took.
        this.policy = { ...this.policy, concurrency: inst.concurrency };
        this.release(inst);
        if (this.queue.length > 0) this.scale();
        return;
      }
      this.release(inst);
    });
  }

  private retire(inst: Instance): void {
    if (this.retiring.has(inst)) return;
    this.retiring.add(inst);
    this.options.capacity?.release(this.spec.memorySize);
    inst.retire();
  }

  private run(inst: Instance, p: Pending): void {
    this.busy++;
    // The first invocation of an instance is its cold start and reports the init duration; an instance
    // initialised ahead of demand (provisioned concurrency) does not, as on Lambda.
    const cold = !this.coldReported.has(inst);
    if (cold) this.coldReported.add(inst);
    const initDurationMs = cold && !this.startedAhead.has(inst) ? inst.initDurationMs : undefined;
    const spec = this.spec;
    let logs = inst.takeIdleLogs();
    logs += `START RequestId: ${p.requestId} Version: ${this.spec.version ?? '$LATEST'}\n`;
    let dropped = 0;
    const ranAt = performance.now();
    void inst.invoke({
      requestId: p.requestId,
      event: p.request.event,
      deadlineMs: Date.now() + spec.timeout * 1000,
      timeoutSeconds: spec.timeout,
      invokedFunctionArn: p.request.invokedFunctionArn,
      onLog: (text) => {
        logs += text;
        if (logs.length > MAX_LOG_CHARS) {
          dropped += logs.length - LOG_HEAD_CHARS - LOG_TAIL_CHARS;
          logs = logs.slice(0, LOG_HEAD_CHARS) + logs.slice(-LOG_TAIL_CHARS);
        }
      },
    }).then((answer) => {
      this.busy--;
      this.serviceMs = average(this.serviceMs, performance.now() - ranAt);
      if (dropped > 0) {
        logs = `${logs.slice(0, LOG_HEAD_CHARS)}[nimbus: ${dropped} characters of log output dropped; an invocation keeps at most ${MAX_LOG_CHARS}]\n${logs.slice(LOG_HEAD_CHARS)}`;
      }
      this.finish(p, logs, { ...answer, initDurationMs, prewarmed: initDurationMs !== undefined ? inst.prewarmed : undefined }, true);
      this.release(inst);
    });
  }

  /**
   * An idle instance, or with concurrency above 1 one already running some
   * invocations with room for more (packing keeps the others idle, so they
   * can age out). The most recently used first.
   */
  private takeInstance(): Instance | undefined {
    const inst = this.partial.pop() ?? this.idle.pop();
    if (inst && inst.free > 1) this.partial.push(inst);
    return inst;
  }

  /** Invocations one instance runs at once (DispatcherOptions.concurrency). */
  private get concurrency(): number { return this.policy.concurrency ?? 1; }

  /** Instances running at least one invocation. */
  private busyInstances(): number {
    if (this.concurrency === 1) return this.busy;
    let n = 0;
    for (const inst of this.all) if (inst.running > 0) n++;
    return n;
  }

  /** Invocations that instances already running could take now. */
  private freeSlots(): number {
    if (this.concurrency === 1) return this.idle.length;
    let n = 0;
    for (const inst of this.idle) n += inst.free;
    for (const inst of this.partial) n += inst.free;
    return n;
  }

  /**
   * Takes `inst` off the lists it may be on. With several invocations per
   * instance, two that end together both release it after both settled: the
   * second must not park it twice.
   */
  private unlist(inst: Instance): void {
    if (this.concurrency === 1 && this.partial.length === 0) return;
    const at = this.partial.indexOf(inst);
    if (at >= 0) this.partial.splice(at, 1);
    const idle = this.idle.lastIndexOf(inst);
    if (idle >= 0) this.idle.splice(idle, 1);
  }

  /** An instance with room again (ready, or an invocation ended): serve the queue, or park it. */
  private release(inst: Instance): void {
    this.unlist(inst);
    // Full (released again when one of its invocations ends), dead, or being stopped (a timeout killed it).
    if (inst.free === 0) return;
    if (this.closed || this.generationOf.get(inst) !== this.generation) {
      if (inst.running === 0) this.retire(inst);
      if (this.queue.length > 0) this.scale();
      return;
    }
    let ran = false;
    while (inst.free > 0 && this.queue.length > 0) {
      this.run(inst, this.queue.shift()!);
      ran = true;
    }
    if (ran) this.armQueueTimer(this.now());
    if (inst.running > 0) {
      if (inst.free > 0) this.partial.push(inst);
    } else if (this.draining) {
      this.retire(inst);
    } else {
      inst.lastUsedMs = this.now();
      this.idle.push(inst);
    }
    // Instances still starting may no longer be needed (a burst answered by the first ones): decide again.
    if (this.starting > 0 && this.queue.length === 0 && this.serviceMs !== undefined) this.scale();
  }

  private finish(
    p: Pending,
    logsSoFar: string,
    a: { outcome: Outcome; payload: string; durationMs: number; initDurationMs?: number; maxMemoryUsedMB?: number; prewarmed?: boolean },
    started = false,
  ): void {
    const billed = billedDuration(a.durationMs);
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
      prewarmed: a.prewarmed,
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
}

function policyOf(o: DispatcherOptions): ScalingPolicy {
  return {
    concurrency: Math.max(1, Math.floor(o.concurrency ?? 1)),
    minInstances: Math.min(o.minInstances ?? 0, o.maxInstances),
    maxInstances: o.maxInstances,
    keepAliveMs: o.keepAliveMs,
    maxQueued: o.maxQueued ?? 100,
    maxQueueWaitMs: o.maxQueueWaitMs ?? 3000,
  };
}

/** An exponentially weighted moving average (weight 0.2 for the new sample). */
function average(mean: number | undefined, sample: number): number {
  return mean === undefined ? sample : mean + (sample - mean) * 0.2;
}

function errorTypeOf(payload: string): string {
  try { return String((JSON.parse(payload) as { errorType?: unknown }).errorType ?? 'Unknown'); } catch { return 'Unknown'; }
}
