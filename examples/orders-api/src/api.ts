/** POST /orders: checks the order and queues it for the worker; answers 202 with its id. */
import { randomUUID } from 'node:crypto';
import { GetQueueUrlCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';

const sqs = new SQSClient({});
let queueUrl: string | undefined;

interface Order { item: string; quantity: number }

export const createOrder = async (event: { body?: string; isBase64Encoded?: boolean }) => {
  let order: Partial<Order>;
  try {
    order = JSON.parse(event.isBase64Encoded ? Buffer.from(event.body ?? '', 'base64').toString() : event.body ?? '');
  } catch {
    return json(400, { message: 'the body must be JSON: {"item": "...", "quantity": 1}' });
  }
  if (typeof order.item !== 'string' || !order.item || !Number.isInteger(order.quantity) || (order.quantity as number) < 1) {
    return json(400, { message: 'an order needs an item (text) and a quantity (a whole number from 1)' });
  }
  const orderId = randomUUID();
  queueUrl ??= (await sqs.send(new GetQueueUrlCommand({ QueueName: process.env.ORDERS_QUEUE }))).QueueUrl;
  await sqs.send(new SendMessageCommand({
    QueueUrl: queueUrl,
    MessageBody: JSON.stringify({ orderId, item: order.item, quantity: order.quantity }),
    MessageAttributes: { source: { DataType: 'String', StringValue: 'api' } },
  }));
  return json(202, { orderId });
};

function json(statusCode: number, body: unknown) {
  return { statusCode, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}
