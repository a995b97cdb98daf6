/**
 * Child for bench/protocol.ts: newline-delimited JSON over stdin/stdout.
 * Request line `{"requestId", "deadlineMs", "event": "<event JSON as a string>"}`,
 * answer line `{"requestId", "result": "<result JSON as a string>"}`: the
 * event and result are JSON text escaped into a JSON string (the
 * double encoding that Nimbus's binary frames avoid).
 */
import { handler } from './handler.mjs';

let parts = [];
process.stdin.on('data', (chunk) => {
  let start = 0;
  let nl;
  while ((nl = chunk.indexOf(10, start)) !== -1) {
    parts.push(chunk.subarray(start, nl));
    const line = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    parts = [];
    void onLine(line.toString('utf8'));
    start = nl + 1;
  }
  if (start < chunk.length) parts.push(chunk.subarray(start));
});
process.stdin.on('end', () => process.exit(0));

async function onLine(line) {
  const msg = JSON.parse(line);
  const result = await handler(JSON.parse(msg.event));
  process.stdout.write(JSON.stringify({ requestId: msg.requestId, result: JSON.stringify(result) }) + '\n');
}
