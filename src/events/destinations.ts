/**
 * Destinations of asynchronous invocations: where an invocation record goes
 * on success or final failure. Lambda sends it to a function (as an
 * asynchronous invocation whose event is the record), a queue (the record is
 * the message body), a topic (the record is the message) or an event bus
 * (the record is the event's `detail`, with detail-type "Lambda Function
 * Invocation Result - Success" or "- Failure" and source "lambda").
 * https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html
 */
import type { AsyncInvocationRecord, DeliverRecord } from './async-queue.js';

export type DestinationKind = 'function' | 'queue' | 'topic' | 'eventBus';

/** A destination, parsed (structurally a core `DestinationRef`, plus event buses and qualifiers). */
export interface Destination {
  readonly kind: DestinationKind;
  /** Function, queue, topic or event-bus name. */
  readonly name: string;
  /** Version or alias of a function destination, when given. */
  readonly qualifier?: string;
}

const LAMBDA_ARN = /^arn:[a-z-]+:lambda:[a-z0-9-]*:[0-9]*:function:([a-zA-Z0-9_-]{1,64})(?::([a-zA-Z0-9$_-]+))?$/;
const SQS_ARN = /^arn:[a-z-]+:sqs:[a-z0-9-]*:[0-9]*:([a-zA-Z0-9_-]{1,80}(?:\.fifo)?)$/;
const SNS_ARN = /^arn:[a-z-]+:sns:[a-z0-9-]*:[0-9]*:([a-zA-Z0-9_-]{1,256}(?:\.fifo)?)$/;
const BUS_ARN = /^arn:[a-z-]+:events:[a-z0-9-]*:[0-9]*:event-bus\/([a-zA-Z0-9._\-/]{1,256})$/;
const FUNCTION = /^([a-zA-Z0-9_-]{1,64})(?::([a-zA-Z0-9$_-]+))?$/;

/**
 * Parses a destination: a function name (optionally `name:qualifier`), or a
 * Lambda function, SQS queue, SNS topic or EventBridge event-bus ARN (the
 * region and account are not checked: Nimbus has one of each).
 *
 * Errors: throws for anything else, naming the value.
 */
export function parseDestination(destination: string): Destination {
  let m = LAMBDA_ARN.exec(destination) ?? (destination.startsWith('arn:') ? null : FUNCTION.exec(destination));
  if (m) return m[2] === undefined ? { kind: 'function', name: m[1] } : { kind: 'function', name: m[1], qualifier: m[2] };
  if ((m = SQS_ARN.exec(destination))) return { kind: 'queue', name: m[1] };
  if ((m = SNS_ARN.exec(destination))) return { kind: 'topic', name: m[1] };
  if ((m = BUS_ARN.exec(destination))) return { kind: 'eventBus', name: m[1] };
  throw new Error(`invalid destination ${JSON.stringify(destination)}: expected a function name or a lambda, sqs, sns or events ARN`);
}

/**
 * What the platform can send records to. `invokeAsync` is required (a
 * function destination is an asynchronous invocation: pass the AsyncQueue's
 * `enqueue`, so the record is as durable as any event); the others exist once
 * Nimbus has queues, topics and event buses. A missing one makes delivery to
 * that kind fail (the record then goes to the dead-letter queue).
 */
export interface DestinationTargets {
  invokeAsync(functionName: string, payload: string, qualifier?: string): unknown;
  sendMessage?(queueName: string, body: string): unknown;
  publish?(topicName: string, message: string): unknown;
  putEvent?(busName: string, event: { source: 'lambda'; detailType: string; detail: AsyncInvocationRecord }): unknown;
}

/**
 * The AsyncQueue's `deliver`: sends a record to a destination, in the
 * format Lambda uses for its kind. Rejects when the destination is of a kind
 * with no target, or the target throws.
 */
export function destinationDelivery(targets: DestinationTargets): DeliverRecord {
  return async (d, record) => {
    const text = JSON.stringify(record);
    switch (d.kind) {
      case 'function':
        await targets.invokeAsync(d.name, text, d.qualifier);
        return;
      case 'queue':
        if (!targets.sendMessage) throw new Error(`cannot send to queue ${d.name}: this Nimbus has no queues`);
        await targets.sendMessage(d.name, text);
        return;
      case 'topic':
        if (!targets.publish) throw new Error(`cannot publish to topic ${d.name}: this Nimbus has no topics`);
        await targets.publish(d.name, text);
        return;
      case 'eventBus': {
        if (!targets.putEvent) throw new Error(`cannot put an event on bus ${d.name}: this Nimbus has no event buses`);
        const outcome = record.requestContext.condition === 'Success' ? 'Success' : 'Failure';
        await targets.putEvent(d.name, { source: 'lambda', detailType: `Lambda Function Invocation Result - ${outcome}`, detail: record });
        return;
      }
    }
  };
}
