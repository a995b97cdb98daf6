/** Subscribed to order-events: one line per announcement. */
export const handler = async (event: { Records: Array<{ Sns: { Subject: string; Message: string } }> }) => {
  for (const r of event.Records) {
    const order = JSON.parse(r.Sns.Message) as { orderId: string; item: string; quantity: number; status: string };
    console.log(`ORDER ${order.orderId} ${order.status}: ${order.quantity} x ${order.item}`);
  }
};
