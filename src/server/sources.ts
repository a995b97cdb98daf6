/**
 * The event sources of a platform, wired together: the durable asynchronous
 * invocation queue (retries, destinations, dead-letter queue) and the
 * schedules that feed it. Used by `nimbus server` and `nimbus dev` alike;
 * every accepted event is in the store before it is acknowledged.
 */
import type { InvocationResult, QueueSpec, ScheduleSpec, TopicSpec } from '../core/index.js';
import {
  AsyncQueue, compileTargetInput, destinationDelivery, QueueBroker, ruleArn, scheduledEvent, scheduledEventId, Scheduler, TopicBroker,
  type AsyncInvokeConfig, type QueueMapping, type ScheduleRule, type TargetInputBuilder, type TopicSubscription,
} from '../events/index.js';
import type { Store } from '../store/index.js';
import { MessagingError, type MessagingBackend, type NimbusApiBackend } from '../control/index.js';
import { ACCOUNT_ID, NimbusError } from '../core/index.js';
import type { QueueEventSpec, TopicEventSpec } from '../core/index.js';

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

/** The queues, topics and their subscribers of one service, functions by name. */
export interface ServiceMessaging {
  readonly queues: readonly QueueSpec[];
  readonly mappings: readonly QueueMapping[];
  readonly topics: readonly TopicSpec[];
  readonly subscriptions: readonly TopicSubscription[];
}

/** The async queue, the scheduler, the queues and the topics of one platform. */
export class EventSources {
  readonly queue: AsyncQueue;
  readonly queues: QueueBroker;
  readonly topics: TopicBroker;
  private readonly scheduler: Scheduler<Rule>;
  private readonly rules = new Map<string, Rule[]>();
  private readonly messaging = new Map<string, ServiceMessaging>();

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
    // A queue's batch is a synchronous invocation; the broker deletes or keeps messages by its result.
    this.queues = new QueueBroker({
      store, region: options.region, reclaimOnStart: options.reclaimOnStart ?? false,
      invoke: (fn, payload, qualifier) => options.invoke(fn, qualifier, payload, globalThis.crypto.randomUUID()),
      onError: (message) => options.log(`queue: ${message}\n`),
    });
    // SNS invokes its subscribers asynchronously: each delivery is an event in the async queue.
    this.topics = new TopicBroker({
      store, region: options.region,
      enqueueAsync: (fn, payload, requestId, qualifier) => this.queue.enqueue(fn, payload, qualifier, requestId),
      onError: (message) => options.log(`topic: ${message}\n`),
    });
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

  /** Starts delivering queued events, messages and fan-outs (those a previous run left included). */
  start(): void {
    this.queue.start();
    this.queues.start();
    this.topics.start();
  }

  /**
   * Replaces the queues, topics and subscribers of one service (`key`:
   * service and stage). Queues and topics are shared by name across services.
   */
  setMessaging(key: string, m: ServiceMessaging | undefined): void {
    if (m) this.messaging.set(key, m); else this.messaging.delete(key);
    const all = [...this.messaging.values()];
    const queues = new Map(all.flatMap((x) => x.queues).map((q) => [q.name, q]));
    const topics = new Map(all.flatMap((x) => x.topics).map((t) => [t.name, t]));
    this.queues.ensureQueues([...queues.values()]);
    this.queues.setMappings(all.flatMap((x) => x.mappings));
    this.topics.ensureTopics([...topics.values()]);
    this.topics.setSubscriptions(all.flatMap((x) => x.subscriptions));
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
    await Promise.all([this.queues.stop(deadlineMs), this.topics.stop()]);
    await this.queue.stop(deadlineMs);
  }
}

/**
 * A service's queues, topics and subscribers with functions by name:
 * `target(key)` gives the function name and the version or alias to invoke.
 */
export function messagingOf(
  s: { readonly queues?: readonly QueueSpec[]; readonly queueEvents?: readonly QueueEventSpec[]; readonly topics?: readonly TopicSpec[]; readonly topicEvents?: readonly TopicEventSpec[] },
  target: (functionKey: string) => { functionName: string; qualifier?: string } | undefined,
): ServiceMessaging {
  const mappings: QueueMapping[] = [];
  for (const { functionKey, ...e } of s.queueEvents ?? []) {
    const t = target(functionKey);
    if (t) mappings.push({ ...e, functionName: t.functionName, ...(t.qualifier ? { qualifier: t.qualifier } : {}) });
  }
  const subscriptions: TopicSubscription[] = [];
  for (const { functionKey, ...e } of s.topicEvents ?? []) {
    const t = target(functionKey);
    if (t) subscriptions.push({ ...e, functionName: t.functionName, ...(t.qualifier ? { qualifier: t.qualifier } : {}) });
  }
  return { queues: s.queues ?? [], mappings, topics: s.topics ?? [], subscriptions };
}

/** The SQS and SNS APIs' view of the event sources (their refusals in the services' terms). */
export function messagingBackend(sources: EventSources, region: string): MessagingBackend {
  const refusal = (e: unknown): never => {
    const err = e as Error & { code?: string; status?: number };
    if (err?.name === 'EventSourceError' && err.code) throw new MessagingError(err.code, err.message, err.status ?? 400);
    throw e;
  };
  return {
    region,
    queueNames: () => sources.queues.queueNames(),
    topicNames: () => sources.topics.topicNames(),
    sendMessage: async (queue, body, options) => {
      try { return sources.queues.sendMessage(queue, body, options); } catch (e) { return refusal(e); }
    },
    publish: async (topic, message, options) => {
      try { return sources.topics.publish(topic, message, options); } catch (e) { return refusal(e); }
    },
    receiveMessages: async (queue, options) => {
      try { return sources.queues.receiveMessages(queue, options); } catch (e) { return refusal(e); }
    },
    deleteMessage: async (queue, handle) => {
      try { return sources.queues.deleteMessage(queue, handle); } catch (e) { return refusal(e); }
    },
  };
}

/** Runs a broker call, turning its refusal into the Nimbus error the CLI explains. */
export function asNimbusError<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    const err = e as Error & { code?: string; status?: number };
    if (err?.name !== 'EventSourceError') throw e;
    if (err.status === 404) throw new NimbusError(err.code === 'NotFound' ? 'NIMBUS_ERR_TOPIC_NOT_FOUND' : 'NIMBUS_ERR_QUEUE_NOT_FOUND', { reason: err.message });
    throw new NimbusError('NIMBUS_ERR_MESSAGE_INVALID', { reason: err.message });
  }
}

/** The `/_/` endpoints' view of the queues, topics, schedules and dead letters. */
export function eventsApi(sources: EventSources, functionName: (nameOrKey: string) => string): Pick<NimbusApiBackend,
  'runSchedules' | 'schedules' | 'deadLetters' | 'redrive' | 'sendMessage' | 'publish' | 'queueStats' | 'topicStats' | 'receiveMessages'> {
  return {
    runSchedules: (name) => sources.runSchedules(functionName(name)),
    schedules: () => sources.schedules(),
    deadLetters: (name) => sources.queue.deadLetters(name),
    redrive: (id) => sources.queue.redrive(id) !== undefined,
    sendMessage: (queue, body, options) => asNimbusError(() => sources.queues.sendMessage(queue, body, options)),
    publish: (topic, message, options) => asNimbusError(() => sources.topics.publish(topic, message, options)),
    receiveMessages: (queue, max, remove) => asNimbusError(() => {
      const messages = sources.queues.receiveMessages(queue, { maxNumberOfMessages: max });
      if (remove) for (const m of messages) sources.queues.deleteMessage(queue, m.ReceiptHandle);
      return messages;
    }),
    queueStats: () => sources.queues.stats(),
    topicStats: () => sources.topics.subscriptions(),
  };
}
