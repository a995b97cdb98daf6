/**
 * The platform side of the instance protocol (`runtimes/PROTOCOL.md`):
 * length-prefixed frames with a JSON header and a raw body, on fd 3.
 *
 * ```
 * u32 BE length | u8 type | u32 BE headerLen | header JSON | body bytes
 * ```
 * Bodies (events, results) are raw JSON bytes, never escaped into a string,
 * so a 6 MB event costs one copy each way.
 */

export const FrameType = {
  INIT: 1,
  READY: 2,
  INIT_ERROR: 3,
  INVOKE: 4,
  RESULT: 5,
  ERROR: 6,
  LOG: 7,
  /** Runtime → platform, once, from a process started without INIT (a warm pool's): booted and warmed up, waiting for INIT. */
  HELLO: 8,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

const EMPTY = Buffer.alloc(0);

/**
 * Encodes one frame. `header` is JSON text; `body` a string (UTF-8) or bytes.
 * Returns a single buffer so one `write()` sends it.
 */
export function encodeFrame(type: FrameType, header: string, body: string | Buffer = EMPTY): Buffer {
  const hlen = Buffer.byteLength(header);
  const blen = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
  const frame = Buffer.allocUnsafe(9 + hlen + blen);
  frame.writeUInt32BE(5 + hlen + blen, 0);
  frame[4] = type;
  frame.writeUInt32BE(hlen, 5);
  frame.write(header, 9);
  if (typeof body === 'string') frame.write(body, 9 + hlen);
  else body.copy(frame, 9 + hlen);
  return frame;
}

/** One decoded frame; `body` is a view into the received bytes. */
export interface Frame {
  readonly type: number;
  readonly header: Record<string, unknown>;
  readonly body: Buffer;
}

/**
 * Splits a byte stream into frames. Feed it every chunk; it calls `onFrame`
 * for each complete frame, in order. Throws on a malformed header (the
 * instance is then treated as crashed).
 *
 * A large frame arrives in many chunks: they are kept in a list and joined
 * once, when the frame is complete (joining on every chunk would copy a
 * 6 MB event hundreds of times).
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Bytes the frame being collected needs in all (length field included), or 0 when unknown yet. */
  private need = 0;

  constructor(private readonly onFrame: (frame: Frame) => void) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    if (this.need === 0 && this.buffered >= 4) this.need = 4 + this.peekLength();
    if (this.need === 0 || this.buffered < this.need) return;
    let buf = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.buffered);
    this.chunks = [];
    this.buffered = 0;
    this.need = 0;
    while (buf.length >= 4) {
      const len = buf.readUInt32BE(0);
      if (buf.length < 4 + len) break;
      const hlen = buf.readUInt32BE(5);
      const header = hlen === 2 ? {} : (JSON.parse(buf.toString('utf8', 9, 9 + hlen)) as Record<string, unknown>);
      const frame: Frame = { type: buf[4], header, body: buf.subarray(9 + hlen, 4 + len) };
      buf = buf.subarray(4 + len);
      this.onFrame(frame);
    }
    if (buf.length > 0) {
      this.chunks.push(buf);
      this.buffered = buf.length;
      if (buf.length >= 4) this.need = 4 + buf.readUInt32BE(0);
    }
  }

  /** Bytes received but not yet part of a complete frame (handed over when another reader takes the stream). */
  leftover(): Buffer | undefined {
    if (this.buffered === 0) return undefined;
    return this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.buffered);
  }

  /** The length field of the frame at the start of the buffered chunks. */
  private peekLength(): number {
    const first = this.chunks[0];
    if (first.length >= 4) return first.readUInt32BE(0);
    return Buffer.concat(this.chunks, this.buffered).readUInt32BE(0);
  }
}
