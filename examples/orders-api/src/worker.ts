/**
 * The queue's consumer: a batch of up to 5 orders per invocation. Each
 * processed order is announced on the order-events topic; an order that
 * cannot be processed is reported as a batch item failure, so only it comes
 * back (and after 2 receives goes to the dead-letter queue).
 */
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';

const sns = new SNSClient({});

interface SqsRecord { messageId: string; body: string; attributes: { ApproximateReceiveCount: string } }

export const processOrders = async (event: { Records: SqsRecord[] }, context: { invokedFunctionArn: string }) => {
  const [, , , region, account] = context.invokedFunctionArn.split(':');
  const topicArn = `arn:aws:sns:${region}:${account}:${process.env.ORDER_EVENTS_TOPIC}`;
  const batchItemFailures: Array<{ itemIdentifier: string }> = [];
  for (const record of event.Records) {
    const order = JSON.parse(record.body) as { orderId: string; item: string; quantity: number };
    if (order.item === 'unobtainium') {
      console.log(`cannot process order ${order.orderId} (receive ${record.attributes.ApproximateReceiveCount})`);
      batchItemFailures.push({ itemIdentifier: record.messageId });
      continue;
    }
    await sns.send(new PublishCommand({
      TopicArn: topicArn,
      Subject: 'order processed',
      Message: JSON.stringify({ ...order, status: 'processed' }),
      MessageAttributes: { status: { DataType: 'String', StringValue: 'processed' } },
    }));
  }
  console.log(`batch of ${event.Records.length}: ${event.Records.length - batchItemFailures.length} processed`);
  return { batchItemFailures };
};
