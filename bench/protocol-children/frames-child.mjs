/**
 * Child for bench/protocol.ts: Nimbus's wire format (runtimes/PROTOCOL.md,
 * `u32 length | u8 type | u32 headerLen | header JSON | body`) on fd 3, with
 * nothing of the runtime around it: no context object, no log capture, no
 * getrusage. Answers each INVOKE with RESULT `{requestId}` + the result JSON.
 * It isolates the cost of the framing from the cost of bootstrap.mjs.
 */
import net from 'node:net';
import { handler } from './handler.mjs';

const INVOKE = 4, RESULT = 5;
const EMPTY = Buffer.alloc(0);
const channel = new net.Socket({ fd: 3, readable: true, writable: true });

function send(type, header, body) {
  const hlen = Buffer.byteLength(header);
  const blen = Buffer.byteLength(body);
  const frame = Buffer.allocUnsafe(9 + hlen + blen);
  frame.writeUInt32BE(5 + hlen + blen, 0);
  frame[4] = type;
  frame.writeUInt32BE(hlen, 5);
  frame.write(header, 9);
  frame.write(body, 9 + hlen);
  channel.write(frame);
}

let pending = EMPTY;
channel.on('data', (chunk) => {
  pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
  while (pending.length >= 4) {
    const len = pending.readUInt32BE(0);
    if (pending.length < 4 + len) break;
    const type = pending[4];
    const hlen = pending.readUInt32BE(5);
    const header = JSON.parse(pending.toString('utf8', 9, 9 + hlen));
    const body = pending.toString('utf8', 9 + hlen, 4 + len);
    pending = pending.length === 4 + len ? EMPTY : pending.subarray(4 + len);
    if (type === INVOKE) void invoke(header.requestId, body);
  }
});
channel.on('end', () => process.exit(0));
channel.on('error', () => process.exit(0));

async function invoke(requestId, body) {
  const result = await handler(JSON.parse(body));
  send(RESULT, `{"requestId":${JSON.stringify(requestId)}}`, JSON.stringify(result));
}
