/**
 * The event sources of a platform, wired together: the durable asynchronous
 * invocation queue (retries, destinations, dead-letter queue) and the
 * schedules that feed it. Used by `nimbus server` and `nimbus dev` alike;
 * every accepted event is in the store before it is acknowledged.
 */
import type { InvocationResult, ScheduleSpec } from '../core/index.js';
import {
  AsyncQueue, compileTargetInput, destinationDelivery, ruleArn, scheduledEvent, scheduledEventId, Scheduler,
  type AsyncInvokeConfig, type ScheduleRule, type TargetInputBuilder,
} from '../events/index.js';
import type { Store } from '../store/index.js';

/** The account id in ARNs. */
const ACCOUNT_ID = '000000000000';
/** EventBridge's limit on a rule name. */
const RULE_NAME_MAX = 64;

/** One schedule rule of a service, with what it invokes. */
export interface ScheduleTarget {
  readonly spec: ScheduleSpec;
  readonly service: string;
  readonly stage: string;
  readonly functionName: string;
  /** The version or alias the rule invokes (the one the service's routes serve); undefined: `$LATEST`. */
  readonly qualifier?: string;
}

interface Rule extends ScheduleRule {
  readonly name: string;
  readonly arn: string;
  readonly functionName: string;
  readonly qualifier?: string;
  readonly input: TargetInputBuilder;
}

/** Settings of the event sources. */
export interface SourcesOptions {
  readonly store: Store;
  readonly region: string;
  /** One invocation (the async queue's attempt), with the request id kept across retries. */
  readonly invoke: (functionName: string, qualifier: string | undefined, payload: string, requestId: string) => Promise<InvocationResult & { executedVersion?: string }>;
  /** A function's asynchronous invocation settings (retries, event age, destinations). */
  readonly config: (functionName: string, qualifier?: string) => AsyncInvokeConfig | undefined;
  readonly arnFor: (functionName: string) => string;
  /** Platform messages (a failed fire, a refused destination). */
  readonly log: (text: string) => void;
  /** Waits before retries, ms (default Lambda's ~1 and ~2 minutes). */
  readonly retryDelaysMs?: readonly number[];
  /** True when this process owns the store alone (a server holding its lock): leases of a crashed run are taken back at once. */
  readonly reclaimOnStart?: boolean;
}

/** The async queue and the scheduler of one platform. */
export class EventSources {
  readonly queue: AsyncQueue;
  private readonly scheduler: Scheduler<Rule>;
  private readonly rules = new Map<string, Rule[]>();

  constructor(private readonly options: SourcesOptions) {
    this.queue = new AsyncQueue({
      store: options.store,
      invoke: options.invoke,
      config: options.config,
      deliver: destinationDelivery({ invokeAsync: async (fn, payload, qualifier) => { this.queue.enqueue(fn, payload, qualifier); } }),
      functionArn: options.arnFor,
      ...(options.retryDelaysMs ? { retryDelaysMs: options.retryDelaysMs } : {}),
      reclaimOnStart: options.reclaimOnStart ?? false,
      onError: (message) => options.log(`asynchronous invocation: ${message}\n`),
    });
    const store = options.store;
    this.scheduler = new Scheduler<Rule>({
      now: Date.now,
      setTimer: (fn, ms) => setTimeout(fn, ms).unref(),
      clearTimer: (h) => clearTimeout(h as NodeJS.Timeout),
      // A fire is an asynchronous invocation: accepted into the store, retried by the queue.
      fire: async (rule, at) => {
        const event = scheduledEvent({ time: at, region: options.region, account: ACCOUNT_ID, ruleArn: rule.arn, id: scheduledEventId(rule.arn, at) });
        this.queue.enqueue(rule.functionName, rule.input(event, { name: rule.name, arn: rule.arn }), rule.qualifier, event.id);
      },
      lastFired: (id) => {
        const v = store.getSetting(`schedule-fired:${id}`);
        return v === undefined ? undefined : Number(v);
      },
      recordFired: (id, at) => store.setSetting(`schedule-fired:${id}`, String(at)),
      onError: (rule, _at, e) => options.log(`schedule ${rule.name}: ${(e as Error)?.message ?? String(e)}\n`),
    });
  }

  /** Starts delivering queued events (those a previous run left included). */
  start(): void {
    this.queue.start();
  }

  /**
   * Replaces the schedule rules of one service (`key`: service and stage).
   * @throws Error when an input cannot be compiled (the config part checked it already).
   */
  setSchedules(key: string, targets: readonly ScheduleTarget[]): void {
    const rules = targets.map((t): Rule => {
      const name = `${t.service}-${t.stage}-${t.spec.id}`.slice(0, RULE_NAME_MAX);
      return {
        id: name, name, expression: t.spec.expression, enabled: t.spec.enabled,
        arn: ruleArn(this.options.region, ACCOUNT_ID, name),
        functionName: t.functionName,
        ...(t.qualifier ? { qualifier: t.qualifier } : {}),
        input: compileTargetInput({ input: t.spec.input, inputPath: t.spec.inputPath }),
      };
    });
    if (rules.length) this.rules.set(key, rules); else this.rules.delete(key);
    this.scheduler.set([...this.rules.values()].flat());
  }

  /** Fires every schedule rule of `functionName` now (`nimbus schedule run`); resolves with the rule names fired. */
  async runSchedules(functionName: string): Promise<string[]> {
    const fired: string[] = [];
    for (const rule of [...this.rules.values()].flat()) {
      if (rule.functionName !== functionName) continue;
      await this.scheduler.runNow(rule.id);
      fired.push(rule.name);
    }
    return fired;
  }

  /** The rules with their next fire times. */
  schedules(): Array<{ name: string; functionName: string; expression: string; enabled: boolean; next: string | null }> {
    const byId = new Map([...this.rules.values()].flat().map((r) => [r.id, r]));
    return this.scheduler.status().map((s) => ({
      name: s.id, functionName: byId.get(s.id)?.functionName ?? '', expression: s.expression, enabled: s.enabled,
      next: s.next === null ? null : new Date(s.next).toISOString(),
    }));
  }

  /** Accepts one asynchronous invocation (in the store when it returns); returns its request id. */
  enqueue(functionName: string, payload: string, qualifier?: string, requestId?: string): string {
    return this.queue.enqueue(functionName, payload, qualifier, requestId);
  }

  /** Stops firing and lets deliveries in flight finish (up to `deadlineMs`). */
  async stop(deadlineMs = 10_000): Promise<void> {
    await this.scheduler.close();
    await this.queue.stop(deadlineMs);
  }
}
