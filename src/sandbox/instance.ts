/**
 * One function instance: a child process running `runtimes/<language>/bootstrap`,
 * initialised once (the cold start) and then given one invocation at a time.
 *
 * The instance enforces the function's timeout (a wall-clock timer that
 * SIGKILLs the process) and memory size (see limits.ts); a timed-out,
 * crashed or killed instance is never reused, as on Lambda.
 * https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import type { Socket } from 'node:net';
import type { Outcome } from '../core/index.js';
import { bootGate, type BootGate } from './gate.js';
import { FrameReader, FrameType, encodeFrame, type Frame } from './protocol.js';
import { peakResidentMB, RSS_SAMPLE_MS, residentBytes, type InstanceLimits, type LimitEnforcer, type PreparedLimits } from './limits.js';

/** How to start an instance process. */
export interface InstanceLaunch {
  /** Absolute path of the interpreter. */
  readonly command: string;
  readonly args: readonly string[];
  /** The complete environment of the process (nothing is inherited). */
  readonly env: Readonly<Record<string, string>>;
  /** Working directory (the function's code folder). */
  readonly cwd: string;
  /** The INIT frame's header (runtimes/PROTOCOL.md). */
  readonly init: Readonly<Record<string, unknown>>;
  readonly memoryMB: number;
  /** Longest time the init phase may take, in ms (Lambda: 10 s). */
  readonly initTimeoutMs: number;
  /**
   * Invocations the instance may run at once (an opt-in, as Lambda Managed
   * Instances allow; default 1, Lambda's). In force only when the runtime
   * accepts it in READY (the Node.js runtime does; Python stays at 1).
   */
  readonly concurrency?: number;
  /**
   * True when `command` is a sandbox wrapper (bwrap) around the interpreter:
   * the wrapper reports the interpreter's death by a signal N as exit status 128 + N.
   */
  readonly wrapped?: boolean;
}

/** How an instance's init ended. */
export type InitResult =
  | { readonly ok: true; readonly initDurationMs: number }
  | { readonly ok: false; readonly outcome: Outcome; readonly payload: string; readonly initDurationMs: number };

/** What the instance returned for one invocation. */
export interface InstanceAnswer {
  readonly outcome: Outcome;
  /** JSON text: the result (`ok`) or a Lambda error document. */
  readonly payload: string;
  readonly durationMs: number;
  /** Peak resident memory of the instance in MB, when known. */
  readonly maxMemoryUsedMB?: number;
}

/** One invocation handed to an instance. */
export interface InstanceRequest {
  readonly requestId: string;
  /** Event JSON text or bytes. */
  readonly event: string | Buffer;
  /** Epoch ms by which the invocation must end. */
  readonly deadlineMs: number;
  /** The configured timeout in seconds, for Lambda's message. */
  readonly timeoutSeconds: number;
  readonly invokedFunctionArn?: string;
  /** Called with every piece of log text the function writes. */
  readonly onLog: (text: string) => void;
}

type State = 'starting' | 'idle' | 'busy' | 'dead';

/** One invocation running on an instance. */
interface InFlight {
  readonly request: InstanceRequest;
  /** performance.now() when it was sent. */
  readonly started: number;
  readonly resolve: (a: InstanceAnswer) => void;
}

/**
 * Largest synchronous response, in bytes, and Lambda's error past it.
 * https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
 */
export const MAX_RESPONSE_BYTES = 6_291_556;
const RESPONSE_TOO_LARGE = {
  errorType: 'Function.ResponseSizeTooLarge',
  errorMessage: `Response payload size exceeded maximum allowed payload size (${MAX_RESPONSE_BYTES} bytes).`,
};

/** A runtime process: the child and its control channel (fd 3). */
export interface RuntimeProcess {
  readonly child: ChildProcess;
  readonly channel: Socket;
  /** Cgroups made while it waited in a warm pool: `Instance.start` claims them. */
  prepared?: PreparedLimits;
  /** Bytes a warm pool read from the channel that are not a whole frame yet. */
  leftover?: Buffer;
  /** The warm pool it came from, which learns the limit enforcer from its first claim. */
  pool?: { useLimits(limits: LimitEnforcer): void };
}

/** Spawns a runtime process with fd 3 as its control channel; nothing of the parent's environment is inherited. */
export function spawnRuntime(command: string, args: readonly string[], env: Readonly<Record<string, string>>, cwd: string): RuntimeProcess {
  const child = spawn(command, args as string[], {
    cwd,
    env: env as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
  });
  return { child, channel: child.stdio[3] as Socket };
}

let sequence = 0;

/**
 * A running instance. Create with `Instance.start()`, await `ready`, then
 * `invoke()` one request at a time (up to `concurrency` at once when the
 * launch asked for more and the runtime accepted); `kill()` to retire it.
 */
export class Instance {
  readonly id: string;
  readonly ready: Promise<InitResult>;
  state: State = 'starting';
  /** Init duration in ms once `ready` resolved. */
  initDurationMs: number | undefined;
  /** True when the instance started on a pre-warmed runtime process. */
  readonly prewarmed: boolean;
  /** Epoch ms of the end of the last invocation (for keep-alive decisions). */
  lastUsedMs = Date.now();
  /** Number of invocations this instance served. */
  invocations = 0;
  /** Invocations it runs at once, once ready (see InstanceLaunch.concurrency). */
  concurrency = 1;

  /** The process; null while a fresh instance waits for a boot slot (see gate.ts). */
  private child: ChildProcess | null = null;
  private channel: Socket | null = null;
  private limits: InstanceLimits = NO_LIMITS;
  /** Cancels the wait for a boot slot, while there is one. */
  private cancelBoot: (() => boolean) | null = null;
  /** True from the boot slot's grant until init ends: it holds one of the gate's slots. */
  private holdsBootSlot = false;
  private stderrTail = '';
  /** Invocations running now, by request id (at most `concurrency`). */
  private readonly inflight = new Map<string, InFlight>();
  /** The timeout timer, shared by successive invocations (see armDeadline). */
  private deadlineTimer: NodeJS.Timeout | null = null;
  /** Epoch ms at which deadlineTimer fires. */
  private deadlineAt = 0;
  private resolveInit!: (r: InitResult) => void;
  private initStarted = performance.now();
  private exitListeners: Array<() => void> = [];
  private killedByPlatform: 'timeout' | 'memory' | 'retire' | null = null;
  private maxRssKB = 0;
  private exited = false;
  /** The runtime said it is exiting (its last answers carried `exiting`): it takes nothing more. */
  private exitingByRuntime = false;
  private idleLogs = '';

  private constructor(
    private readonly launch: InstanceLaunch,
    limitEnforcer: LimitEnforcer,
    prespawned: RuntimeProcess | undefined,
    private readonly gate: BootGate,
  ) {
    this.id = `i${process.pid}-${++sequence}`;
    this.ready = new Promise((resolve) => { this.resolveInit = resolve; });
    this.prewarmed = prespawned !== undefined;
    if (prespawned) {
      prespawned.pool?.useLimits(limitEnforcer);
      // Wired at once: its exit while it waits for a slot must not go unseen.
      this.wire(prespawned, limitEnforcer);
    }
    // Booting an interpreter, or initialising a pooled one, waits for one of the host's boot slots (gate.ts).
    const cancel = gate.acquire(() => {
      this.cancelBoot = null;
      this.holdsBootSlot = true;
      if (this.exited) { this.releaseBootSlot(); return; }
      try {
        if (!prespawned) this.wire(spawnRuntime(launch.command, launch.args, launch.env, launch.cwd), limitEnforcer);
        this.sendInit();
      } catch (e) {
        this.onExit(null, null, e as Error);
      }
    }, true);
    if (!this.holdsBootSlot && !this.exited) this.cancelBoot = cancel;
  }

  /** Wires the process up and puts it under its limits. */
  private wire(proc: RuntimeProcess, limitEnforcer: LimitEnforcer): void {
    this.child = proc.child;
    this.channel = proc.channel;
    if (this.child.pid !== undefined) {
      this.limits = claimOrAttach(limitEnforcer, proc, this.child.pid, this.id, this.launch.memoryMB);
      sampler.watch(this, limitEnforcer.kind === 'rss-sampling');
    }

    const reader = new FrameReader((f) => this.onFrame(f));
    const push = (chunk: Buffer) => {
      try { reader.push(chunk); } catch { this.kill('retire'); }
    };
    if (proc.leftover) push(proc.leftover);
    this.channel.on('data', push);
    this.channel.resume();
    this.channel.on('error', () => {});
    this.child.stdout!.on('data', (d: Buffer) => this.onRawOutput(d));
    this.child.stderr!.on('data', (d: Buffer) => {
      this.stderrTail = (this.stderrTail + d.toString('utf8')).slice(-4096);
      this.onRawOutput(d);
    });
    this.child.on('error', (e) => this.onExit(null, null, e));
    this.child.on('exit', (code, signal) => this.onExit(code, signal));
  }

  /** Sends INIT; the init timeout counts from here. */
  private sendInit(): void {
    const launch = this.launch;
    this.initStarted = performance.now();
    const initTimer = setTimeout(() => {
      if (this.state !== 'starting') return;
      this.finishInit({
        ok: false, outcome: 'init_error', initDurationMs: performance.now() - this.initStarted,
        payload: JSON.stringify({ errorType: 'Runtime.InitTimeout', errorMessage: `Init phase exceeded ${launch.initTimeoutMs} ms` }),
      });
      this.kill('retire');
    }, launch.initTimeoutMs);
    initTimer.unref();
    const init = (launch.concurrency ?? 1) > 1 ? { ...launch.init, concurrency: launch.concurrency } : launch.init;
    this.channel!.write(encodeFrame(FrameType.INIT, JSON.stringify(init)));
  }

  /**
   * Starts an instance: on `prespawned` (a generic runtime process from a
   * warm pool, waiting for INIT) when given, else on a new process. Never
   * throws: spawn failures resolve `ready` with `ok: false`.
   */
  static start(launch: InstanceLaunch, limits: LimitEnforcer, prespawned?: RuntimeProcess, gate: BootGate = bootGate): Instance {
    return new Instance(launch, limits, prespawned, gate);
  }

  /**
   * Log text written outside any invocation (during init, or by timers
   * between invocations); Lambda shows it with the next invocation's logs.
   */
  takeIdleLogs(): string {
    const t = this.idleLogs;
    this.idleLogs = '';
    return t;
  }

  get pid(): number | undefined { return this.child?.pid; }

  /** True while a fresh instance waits for a boot slot: it has no process yet, so stopping it wastes nothing. */
  get awaitingBoot(): boolean { return this.cancelBoot !== null && this.child === null && !this.exited; }

  /** Invocations it could take now: 0 unless ready and not being stopped. */
  get free(): number {
    if (this.killedByPlatform !== null || this.exitingByRuntime || !(this.state === 'idle' || this.state === 'busy')) return 0;
    return this.concurrency - this.inflight.size;
  }

  /** Invocations running now. */
  get running(): number { return this.inflight.size; }

  /**
   * Runs one invocation. Resolves (never rejects) with the outcome: `ok`,
   * `error` (the handler failed), `timeout`, `oom` or `crashed`.
   * Must only be called when `free > 0`. A timeout kills the instance, so
   * the other invocations running on it then end as `crashed`.
   */
  invoke(request: InstanceRequest): Promise<InstanceAnswer> {
    if (this.free <= 0) throw new Error(`instance ${this.id} is ${this.state} with ${this.inflight.size} of ${this.concurrency} invocations running`);
    if (this.inflight.has(request.requestId)) throw new Error(`request ${request.requestId} is already running on instance ${this.id}`);
    this.state = 'busy';
    const started = performance.now();
    return new Promise((resolve) => {
      this.inflight.set(request.requestId, { request, started, resolve });
      this.armDeadline(request.deadlineMs);
      this.channel!.write(encodeFrame(
        FrameType.INVOKE,
        `{"requestId":${JSON.stringify(request.requestId)},"deadlineMs":${request.deadlineMs}${request.invokedFunctionArn ? `,"invokedFunctionArn":${JSON.stringify(request.invokedFunctionArn)}` : ''}}`,
        request.event,
      ));
    });
  }

  /** Registers a callback for when the process has exited. */
  onExited(listener: () => void): void {
    if (this.state === 'dead') listener(); else this.exitListeners.push(listener);
  }

  /** Stops the instance at once (SIGKILL to every process of it). */
  kill(reason: 'timeout' | 'memory' | 'retire' = 'retire'): void {
    // Not `state`: an instance whose init failed is 'dead' before its process is.
    if (this.exited) return;
    this.killedByPlatform ??= reason;
    if (!this.child) {
      // Still waiting for a boot slot: there is no process to kill.
      this.onExit(null, 'SIGKILL');
      return;
    }
    try { this.child.kill('SIGKILL'); } catch { /* gone */ }
    this.limits.killAll();
  }

  /** Closes the control channel: the runtime exits by itself (a graceful retire). */
  retire(): void {
    if (this.exited) return;
    this.killedByPlatform ??= 'retire';
    if (!this.channel) { this.kill('retire'); return; }
    this.channel.end();
    setTimeout(() => this.kill('retire'), 2000).unref();
  }

  /** Peak memory in MB, as last reported by the runtime. */
  get maxMemoryUsedMB(): number { return Math.ceil(this.maxRssKB / 1024); }

  // ---- internals ----------------------------------------------------------

  private onFrame(frame: Frame): void {
    switch (frame.type) {
      case FrameType.LOG: {
        const text = frame.body.toString('utf8');
        const id = frame.header.requestId;
        const inv = typeof id === 'string' ? this.inflight.get(id) : this.sole();
        if (inv) inv.request.onLog(text); else this.addIdleLog(text);
        return;
      }
      case FrameType.READY:
        // The runtime says how many invocations at once it accepted (absent: one).
        this.concurrency = Math.max(1, Math.min(this.launch.concurrency ?? 1, Number(frame.header.concurrency ?? 1) || 1));
        this.finishInit({ ok: true, initDurationMs: Number(frame.header.initDurationMs ?? performance.now() - this.initStarted) });
        return;
      case FrameType.INIT_ERROR:
        this.finishInit({ ok: false, outcome: 'init_error', payload: frame.body.toString('utf8'), initDurationMs: performance.now() - this.initStarted });
        return;
      case FrameType.RESULT:
      case FrameType.ERROR: {
        // The runtime's last answer before it exits (an uncaught error): no invocation may be sent to it any more.
        if (frame.header.exiting === true) this.exitingByRuntime = true;
        const cur = this.inflight.get(frame.header.requestId as string);
        if (!cur) return;
        if (typeof frame.header.maxRssKB === 'number') this.maxRssKB = Math.max(this.maxRssKB, frame.header.maxRssKB);
        if (frame.type === FrameType.RESULT && frame.body.length > MAX_RESPONSE_BYTES) {
          // Lambda refuses a synchronous response over 6 MB as a function error.
          cur.request.onLog(`${RESPONSE_TOO_LARGE.errorType}: ${RESPONSE_TOO_LARGE.errorMessage}\n`);
          this.settle(cur, 'error', JSON.stringify(RESPONSE_TOO_LARGE));
        } else {
          this.settle(cur, frame.type === FrameType.RESULT ? 'ok' : 'error', frame.body.toString('utf8'));
        }
        if (this.state === 'busy' && this.inflight.size === 0) this.state = 'idle';
        return;
      }
    }
  }

  private releaseBootSlot(): void {
    if (!this.holdsBootSlot) return;
    this.holdsBootSlot = false;
    this.gate.release(true);
  }

  private finishInit(result: InitResult): void {
    if (this.state !== 'starting') return;
    this.releaseBootSlot();
    this.state = result.ok ? 'idle' : 'dead';
    this.initDurationMs = result.initDurationMs;
    if (result.ok) {
      this.limits.adopt?.();
      this.limits.startCpuQuota?.();
    }
    if (!result.ok) this.kill('retire');
    this.resolveInit(result);
  }

  /** The invocation running now when there is exactly one (output without a request id is its). */
  private sole(): InFlight | undefined {
    if (this.inflight.size !== 1) return undefined;
    for (const inv of this.inflight.values()) return inv;
    return undefined;
  }

  private settle(cur: InFlight, outcome: Outcome, payload: string): void {
    if (!this.inflight.delete(cur.request.requestId)) return;
    this.invocations++;
    this.lastUsedMs = Date.now();
    cur.resolve({
      outcome, payload,
      durationMs: performance.now() - cur.started,
      maxMemoryUsedMB: this.maxRssKB ? this.maxMemoryUsedMB : undefined,
    });
  }

  /**
   * Makes sure the timeout timer fires by `deadlineMs`. One timer serves
   * successive invocations: it is left running when an invocation ends, and
   * re-armed only when it would fire after the new deadline; when it fires
   * early (the invocation it was armed for is over), it re-arms for the one
   * running now, if any. So a warm invocation costs no timer of its own.
   */
  private armDeadline(deadlineMs: number): void {
    if (this.deadlineTimer && this.deadlineAt <= deadlineMs) return;
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineAt = deadlineMs;
    this.deadlineTimer = setTimeout(() => this.onDeadline(), Math.max(0, deadlineMs - Date.now()));
    this.deadlineTimer.unref();
  }

  private onDeadline(): void {
    this.deadlineTimer = null;
    const now = Date.now();
    let next = Infinity;
    const expired: InFlight[] = [];
    for (const inv of this.inflight.values()) {
      if (inv.request.deadlineMs <= now) expired.push(inv);
      else next = Math.min(next, inv.request.deadlineMs);
    }
    if (expired.length > 0) this.onTimeout(expired);
    else if (next < Infinity) this.armDeadline(next);
  }

  /** Lambda's timeout: the invocations fail and the instance is killed (so any other running on it crashes). */
  private onTimeout(expired: readonly InFlight[]): void {
    // The runtime never reported its memory for these: read the peak before the kill.
    const peak = this.child?.pid !== undefined ? peakResidentMB(this.child.pid) : undefined;
    if (peak) this.maxRssKB = Math.max(this.maxRssKB, peak * 1024);
    this.kill('timeout');
    for (const cur of expired) {
      const seconds = cur.request.timeoutSeconds.toFixed(2);
      const id = cur.request.requestId;
      cur.request.onLog(`${new Date().toISOString()} ${id} Task timed out after ${seconds} seconds\n`);
      this.settle(cur, 'timeout', JSON.stringify({
        errorType: 'Sandbox.Timedout',
        errorMessage: `RequestId: ${id} Error: Task timed out after ${seconds} seconds`,
      }));
    }
  }

  /** Called by the fallback sampler when the resident set passes the memory size. */
  overMemory(): void {
    if (this.state === 'busy' || this.state === 'idle') this.kill('memory');
  }

  private onRawOutput(d: Buffer): void {
    const text = d.toString('utf8');
    const inv = this.sole();
    if (inv) inv.request.onLog(text); else this.addIdleLog(text);
  }

  /** Output between invocations is kept for the next one, at most the last 256 KB. */
  private addIdleLog(text: string): void {
    this.idleLogs += text;
    if (this.idleLogs.length > 256 * 1024) this.idleLogs = this.idleLogs.slice(-256 * 1024);
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null, error?: Error): void {
    if (this.exited) return;
    this.exited = true;
    // bubblewrap reports a child killed by signal N as exit status 128 + N; a runtime that said it is exiting chose its status.
    if (this.launch.wrapped && !this.exitingByRuntime && code !== null && code > 128 && code < 160) {
      const number = code - 128;
      signal = (Object.entries(osConstants.signals).find(([, n]) => n === number)?.[0] ?? null) as NodeJS.Signals | null;
      if (signal) code = null;
    }
    const oom = this.killedByPlatform === 'memory' || this.limits.wasOomKilled() || /JavaScript heap out of memory/.test(this.stderrTail);
    const how = error ? `spawn error: ${error.message}`
      : signal ? `signal: ${signalName(signal)}`
      : code === 0 ? 'exit status 0' : `exit status ${code}`;
    const peak = this.limits.peakMemoryMB?.();
    if (peak) this.maxRssKB = Math.max(this.maxRssKB, peak * 1024);
    if (this.state === 'starting') {
      const detail = this.stderrTail.trim();
      this.finishInit({
        ok: false, outcome: 'init_error', initDurationMs: performance.now() - this.initStarted,
        payload: JSON.stringify({ errorType: 'Runtime.ExitError', errorMessage: `Runtime exited with error: ${how}${detail ? `\n${detail}` : ''}` }),
      });
    }
    // Every invocation still running ends with the instance (a timed-out one was settled already).
    for (const cur of [...this.inflight.values()]) {
      // Lambda words a clean exit during an invocation "Runtime exited without providing a reason".
      // With several invocations at once, the others end with the one that timed out (the instance is stopped).
      const cause = this.killedByPlatform === 'timeout' ? ' (the instance was stopped: another invocation running on it timed out)' : '';
      const message = `RequestId: ${cur.request.requestId} Error: ${code === 0 && !signal && !error ? 'Runtime exited without providing a reason' : `Runtime exited with error: ${how}`}${cause}`;
      const errorType = oom ? 'Runtime.OutOfMemory' : 'Runtime.ExitError';
      cur.request.onLog(`${message}\n${errorType}\n`);
      this.settle(cur, oom ? 'oom' : 'crashed', JSON.stringify({ errorType, errorMessage: message }));
    }
    this.state = 'dead';
    this.cleanup();
  }

  private cleanup(): void {
    if (this.deadlineTimer) { clearTimeout(this.deadlineTimer); this.deadlineTimer = null; }
    sampler.unwatch(this);
    this.limits.release();
    this.cancelBoot?.();
    this.cancelBoot = null;
    this.releaseBootSlot();
    this.channel?.destroy();
    const listeners = this.exitListeners;
    this.exitListeners = [];
    for (const l of listeners) l();
  }

  /** @internal for the sampler */
  get memoryLimitBytes(): number { return this.launch.memoryMB * 1024 * 1024; }

  /** @internal for the sampler: the cgroup says the instance is stuck at its memory limit. */
  atMemoryLimit(): boolean { return this.limits.atMemoryLimit?.() ?? false; }

  /** @internal for the sampler: ms the longest-running invocation has run, 0 when none. */
  busyForMs(now: number): number {
    let started = now;
    for (const inv of this.inflight.values()) started = Math.min(started, inv.started);
    return now - started;
  }
}

/** The limits of a new instance: its pool's prepared cgroups when it has them (one write), else a full attach. */
const NO_LIMITS: InstanceLimits = { wasOomKilled: () => false, killAll: () => {}, release: () => {} };

function claimOrAttach(enforcer: LimitEnforcer, proc: RuntimeProcess, pid: number, id: string, memoryMB: number): InstanceLimits {
  if (proc.prepared) {
    try {
      return proc.prepared.claim(memoryMB);
    } catch {
      proc.prepared.release();
    }
  }
  try {
    return enforcer.attach(pid, id, memoryMB);
  } catch {
    return NO_LIMITS;
  }
}

/** Go's names for signals, as Lambda prints them ("signal: killed"). */
function signalName(signal: NodeJS.Signals): string {
  switch (signal) {
    case 'SIGKILL': return 'killed';
    case 'SIGABRT': return 'aborted (core dumped)';
    case 'SIGSEGV': return 'segmentation fault (core dumped)';
    case 'SIGTERM': return 'terminated';
    case 'SIGINT': return 'interrupt';
    case 'SIGBUS': return 'bus error (core dumped)';
    default: return signal;
  }
}

/**
 * Samples busy instances' memory: without cgroups it is the memory limit
 * itself (resident set over the memory size, every RSS_SAMPLE_MS); with
 * cgroups it catches an instance stuck at its limit (every 5 samples), among
 * those busy for STUCK_AFTER_MS or more: a stuck instance is a slow one, and
 * reading a cgroup file for each of hundreds of short invocations costs the
 * platform more than the invocations.
 */
class RssSampler {
  private readonly watched = new Map<Instance, boolean>();
  private timer: NodeJS.Timeout | null = null;
  private tick = 0;

  watch(instance: Instance, byResidentSet: boolean): void {
    this.watched.set(instance, byResidentSet);
    if (!this.timer) {
      this.timer = setInterval(() => this.sample(), RSS_SAMPLE_MS);
      this.timer.unref();
    }
  }

  unwatch(instance: Instance): void {
    this.watched.delete(instance);
    if (this.watched.size === 0 && this.timer) { clearInterval(this.timer); this.timer = null; }
  }

  private sample(): void {
    const cgroupTurn = ++this.tick % 5 === 0;
    const now = performance.now();
    for (const [inst, byResidentSet] of this.watched) {
      if (inst.state !== 'busy' || inst.pid === undefined) continue;
      if (byResidentSet) {
        if (residentBytes(inst.pid) > inst.memoryLimitBytes) inst.overMemory();
      } else if (cgroupTurn && inst.busyForMs(now) >= STUCK_AFTER_MS && inst.atMemoryLimit()) {
        inst.overMemory();
      }
    }
  }
}

/** How long an invocation runs before the sampler checks whether its instance is stuck at its memory limit. */
const STUCK_AFTER_MS = 500;

const sampler = new RssSampler();
