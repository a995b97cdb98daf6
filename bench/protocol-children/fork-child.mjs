/**
 * Child for bench/protocol.ts: Node's fork() IPC channel. Receives
 * `{requestId, deadlineMs, event: "<event JSON text>"}` messages and answers
 * `{requestId, result: "<result JSON text>"}` with process.send() (Node
 * serialises each message as a JSON line, so the event is encoded twice).
 */
import { handler } from './handler.mjs';

process.on('message', async (msg) => {
  const result = await handler(JSON.parse(msg.event));
  process.send({ requestId: msg.requestId, result: JSON.stringify(result) });
});
process.on('disconnect', () => process.exit(0));
