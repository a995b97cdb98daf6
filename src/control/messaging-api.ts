/**
 * The SQS and SNS APIs a function calls to send to Nimbus's queues and
 * topics, so handler code written for AWS runs unchanged: instances get
 * `AWS_ENDPOINT_URL_SQS` / `AWS_ENDPOINT_URL_SNS` pointing at the control
 * port (the AWS SDKs read them) and credentials to sign with.
 *
 * - SQS, AWS JSON 1.0 protocol (`X-Amz-Target: AmazonSQS.<Action>`), as the
 *   AWS SDKs speak it: SendMessage, SendMessageBatch, ReceiveMessage, DeleteMessage,
 *   GetQueueUrl, ListQueues (a dead-letter queue is read with ReceiveMessage).
 *   https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html
 * - SNS, the query protocol (`Action=Publish`, form-encoded, XML answers): Publish,
 *   ListTopics. https://docs.aws.amazon.com/sns/latest/api/API_Publish.html
 *
 * Queue URLs are `<endpoint>/000000000000/<queue name>`; topic ARNs
 * `arn:aws:sns:<region>:000000000000:<topic name>`.
 */
import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import { ACCOUNT_ID } from '../core/index.js';


/** An SQS message attribute as the API carries it. */
export interface MessageAttributeValue {
  readonly DataType: string;
  readonly StringValue?: string;
  /** Base64 in the JSON protocol. */
  readonly BinaryValue?: string;
}

/** A refusal in the service's terms: `type` is SQS's `__type` short name or SNS's error code. */
export class MessagingError extends Error {
  constructor(readonly type: string, message: string, readonly status = 400) {
    super(message);
    this.name = 'MessagingError';
  }
}

/** What the APIs need: the queues and topics of the platform. Methods throw MessagingError. */
export interface MessagingBackend {
  readonly region: string;
  queueNames(): string[];
  sendMessage(queue: string, body: string, options: {
    readonly messageAttributes?: Readonly<Record<string, MessageAttributeValue>>;
    readonly delaySeconds?: number;
    readonly messageGroupId?: string;
    readonly messageDeduplicationId?: string;
  }): Promise<{ messageId: string; md5OfBody: string; md5OfMessageAttributes?: string }>;
  /** Messages received for a consumer outside Lambda (SQS's ReceiveMessage shape); hidden for the visibility timeout. */
  receiveMessages(queue: string, options: { readonly maxNumberOfMessages?: number; readonly visibilityTimeout?: number }): Promise<unknown[]>;
  /** Deletes a received message; false when the receipt handle is stale. */
  deleteMessage(queue: string, receiptHandle: string): Promise<boolean>;
  topicNames(): string[];
  publish(topic: string, message: string, options: {
    readonly subject?: string;
    readonly messageAttributes?: Readonly<Record<string, MessageAttributeValue>>;
  }): Promise<{ messageId: string }>;
}

/** True for a request to the SQS or SNS API (rather than Lambda's or Nimbus's). */
export function isMessagingRequest(req: http.IncomingMessage, path: string): boolean {
  if (req.method !== 'POST') return false;
  const target = String(req.headers['x-amz-target'] ?? '');
  if (target.startsWith('AmazonSQS.')) return true;
  const type = String(req.headers['content-type'] ?? '');
  return (path === '/' || path.startsWith(`/${ACCOUNT_ID}/`)) && type.startsWith('application/x-www-form-urlencoded');
}

/** Answers one SQS or SNS API request. */
export async function handleMessagingApi(backend: MessagingBackend, req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): Promise<void> {
  const target = String(req.headers['x-amz-target'] ?? '');
  if (target.startsWith('AmazonSQS.')) return sqs(backend, req, res, target.slice('AmazonSQS.'.length), body);
  return sns(backend, res, new URLSearchParams(body.toString('utf8')));
}

// ── SQS ───────────────────────────────────────────────────────────────────

async function sqs(backend: MessagingBackend, req: http.IncomingMessage, res: http.ServerResponse, action: string, body: Buffer): Promise<void> {
  const base = `http://${req.headers.host ?? '127.0.0.1'}`;
  try {
    let input: Record<string, unknown>;
    try {
      input = JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>;
    } catch {
      throw new MessagingError('InvalidParameterValue', 'The request body is not JSON');
    }
    switch (action) {
      case 'GetQueueUrl': {
        const name = String(input.QueueName ?? '');
        if (!backend.queueNames().includes(name)) throw noQueue(backend, name);
        return sqsJson(res, { QueueUrl: `${base}/${ACCOUNT_ID}/${name}` });
      }
      case 'ListQueues': {
        const prefix = String(input.QueueNamePrefix ?? '');
        return sqsJson(res, { QueueUrls: backend.queueNames().filter((n) => n.startsWith(prefix)).map((n) => `${base}/${ACCOUNT_ID}/${n}`) });
      }
      case 'SendMessage': {
        const queue = queueOf(backend, input.QueueUrl);
        return sqsJson(res, await send(backend, queue, input));
      }
      case 'SendMessageBatch': {
        const queue = queueOf(backend, input.QueueUrl);
        const entries = Array.isArray(input.Entries) ? input.Entries as Array<Record<string, unknown>> : [];
        if (entries.length === 0) throw new MessagingError('EmptyBatchRequest', 'There should be at least one SendMessageBatchRequestEntry in the request.');
        if (entries.length > 10) throw new MessagingError('TooManyEntriesInBatchRequest', `Maximum number of entries per request are 10. You have sent ${entries.length}.`);
        const Successful: unknown[] = [];
        const Failed: unknown[] = [];
        for (const e of entries) {
          try {
            Successful.push({ Id: e.Id, ...(await send(backend, queue, e)) });
          } catch (err) {
            if (!(err instanceof MessagingError)) throw err;
            Failed.push({ Id: e.Id, SenderFault: err.status < 500, Code: err.type, Message: err.message });
          }
        }
        return sqsJson(res, { Successful, Failed });
      }
      case 'ReceiveMessage': {
        const queue = queueOf(backend, input.QueueUrl);
        const max = input.MaxNumberOfMessages;
        const vis = input.VisibilityTimeout;
        const messages = await backend.receiveMessages(queue, {
          ...(typeof max === 'number' ? { maxNumberOfMessages: max } : {}), ...(typeof vis === 'number' ? { visibilityTimeout: vis } : {}),
        });
        return sqsJson(res, messages.length ? { Messages: messages } : {});
      }
      case 'DeleteMessage': {
        const queue = queueOf(backend, input.QueueUrl);
        if (typeof input.ReceiptHandle !== 'string') throw new MessagingError('MissingParameter', 'The request must contain the parameter ReceiptHandle.');
        if (!(await backend.deleteMessage(queue, input.ReceiptHandle))) throw new MessagingError('ReceiptHandleIsInvalid', `The input receipt handle "${input.ReceiptHandle}" is not a valid receipt handle.`);
        return sqsJson(res, {});
      }
      default:
        throw new MessagingError('UnsupportedOperation', `Nimbus's SQS API does not serve ${action}; it serves SendMessage, SendMessageBatch, ReceiveMessage, DeleteMessage, GetQueueUrl and ListQueues`);
    }
  } catch (e) {
    if (!(e instanceof MessagingError)) throw e;
    const text = JSON.stringify({ __type: `com.amazonaws.sqs#${e.type}`, message: e.message });
    res.writeHead(e.status, {
      'content-type': 'application/x-amz-json-1.0', 'content-length': Buffer.byteLength(text),
      'x-amzn-query-error': `AWS.SimpleQueueService.${e.type === 'QueueDoesNotExist' ? 'NonExistentQueue' : e.type};Sender`,
      'x-amzn-requestid': randomUUID(),
    });
    res.end(text);
  }
}

function noQueue(backend: MessagingBackend, name: string): MessagingError {
  const known = backend.queueNames();
  return new MessagingError('QueueDoesNotExist', `The specified queue does not exist. (${JSON.stringify(name)}; the queues are: ${known.length ? known.join(', ') : 'none'})`);
}

/** The queue name of a queue URL (`…/000000000000/<name>`), checked to exist. */
function queueOf(backend: MessagingBackend, url: unknown): string {
  if (typeof url !== 'string' || url === '') throw new MessagingError('MissingParameter', 'The request must contain the parameter QueueUrl.');
  const name = url.split('/').pop() ?? '';
  if (!backend.queueNames().includes(name)) throw noQueue(backend, name);
  return name;
}

async function send(backend: MessagingBackend, queue: string, input: Record<string, unknown>): Promise<Record<string, string>> {
  const body = input.MessageBody;
  if (typeof body !== 'string' || body === '') throw new MessagingError('MissingParameter', 'The request must contain the parameter MessageBody.');
  const attributes = input.MessageAttributes as Record<string, MessageAttributeValue> | undefined;
  const delay = input.DelaySeconds;
  if (delay !== undefined && (typeof delay !== 'number' || !Number.isInteger(delay) || delay < 0 || delay > 900)) {
    throw new MessagingError('InvalidParameterValue', `Value ${String(delay)} for parameter DelaySeconds is invalid. Reason: must be between 0 and 900, if provided.`);
  }
  const sent = await backend.sendMessage(queue, body, {
    ...(attributes ? { messageAttributes: attributes } : {}),
    ...(typeof delay === 'number' ? { delaySeconds: delay } : {}),
    ...(typeof input.MessageGroupId === 'string' ? { messageGroupId: input.MessageGroupId } : {}),
    ...(typeof input.MessageDeduplicationId === 'string' ? { messageDeduplicationId: input.MessageDeduplicationId } : {}),
  });
  return {
    MessageId: sent.messageId,
    MD5OfMessageBody: sent.md5OfBody,
    ...(sent.md5OfMessageAttributes ? { MD5OfMessageAttributes: sent.md5OfMessageAttributes } : {}),
  };
}

function sqsJson(res: http.ServerResponse, value: unknown): void {
  const text = JSON.stringify(value);
  res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0', 'content-length': Buffer.byteLength(text), 'x-amzn-requestid': randomUUID() });
  res.end(text);
}

// ── SNS ───────────────────────────────────────────────────────────────────

async function sns(backend: MessagingBackend, res: http.ServerResponse, q: URLSearchParams): Promise<void> {
  const action = q.get('Action') ?? '';
  const requestId = randomUUID();
  try {
    if (action === 'ListTopics') {
      const members = backend.topicNames().map((t) => `<member><TopicArn>${xml(topicArn(backend, t))}</TopicArn></member>`).join('');
      return snsXml(res, 'ListTopics', `<Topics>${members}</Topics>`, requestId);
    }
    if (action !== 'Publish') throw new MessagingError('InvalidAction', `Nimbus's SNS API does not serve ${action || 'this request'}; it serves Publish and ListTopics`);
    const arn = q.get('TopicArn') ?? q.get('TargetArn') ?? '';
    const topic = arn.split(':').pop() ?? '';
    if (!arn || !backend.topicNames().includes(topic)) throw new MessagingError('NotFound', 'Topic does not exist', 404);
    const message = q.get('Message');
    if (message === null || message === '') throw new MessagingError('InvalidParameter', 'Invalid parameter: Empty message');
    const attributes: Record<string, MessageAttributeValue> = {};
    for (let i = 1; q.has(`MessageAttributes.entry.${i}.Name`); i++) {
      const p = `MessageAttributes.entry.${i}`;
      const binary = q.get(`${p}.Value.BinaryValue`);
      attributes[q.get(`${p}.Name`)!] = {
        DataType: q.get(`${p}.Value.DataType`) ?? 'String',
        ...(binary !== null ? { BinaryValue: binary } : { StringValue: q.get(`${p}.Value.StringValue`) ?? '' }),
      };
    }
    const subject = q.get('Subject');
    const { messageId } = await backend.publish(topic, message, {
      ...(subject !== null ? { subject } : {}), ...(Object.keys(attributes).length ? { messageAttributes: attributes } : {}),
    });
    return snsXml(res, 'Publish', `<MessageId>${xml(messageId)}</MessageId>`, requestId);
  } catch (e) {
    if (!(e instanceof MessagingError)) throw e;
    const text = `<ErrorResponse xmlns="https://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type><Code>${xml(e.type)}</Code><Message>${xml(e.message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`;
    res.writeHead(e.status, { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(text), 'x-amzn-requestid': requestId });
    res.end(text);
  }
}

function topicArn(backend: MessagingBackend, topic: string): string {
  return `arn:aws:sns:${backend.region}:${ACCOUNT_ID}:${topic}`;
}

function snsXml(res: http.ServerResponse, action: string, result: string, requestId: string): void {
  const text = `<${action}Response xmlns="https://sns.amazonaws.com/doc/2010-03-31/"><${action}Result>${result}</${action}Result><ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></${action}Response>`;
  res.writeHead(200, { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(text), 'x-amzn-requestid': requestId });
  res.end(text);
}

function xml(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' }[c]!));
}
