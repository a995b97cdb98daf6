import { it } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFrame, FrameReader, FrameType, type Frame } from './protocol.js';

function feed(bytes: Buffer, sizes: number[]): Frame[] {
  const got: Frame[] = [];
  const r = new FrameReader((f) => got.push({ ...f, body: Buffer.from(f.body) }));
  let at = 0;
  for (let i = 0; at < bytes.length; i++) {
    const n = sizes[i % sizes.length];
    r.push(bytes.subarray(at, at + n));
    at += n;
  }
  return got;
}

it('decodes frames however the stream is cut', () => {
  const big = Buffer.alloc(3 * 1024 * 1024, 'x');
  const stream = Buffer.concat([
    encodeFrame(FrameType.INVOKE, '{"requestId":"a"}', '{"k":1}'),
    encodeFrame(FrameType.LOG, '{}', 'line\n'),
    encodeFrame(FrameType.RESULT, '{"requestId":"b"}', big),
    encodeFrame(FrameType.READY, '{}'),
  ]);
  for (const sizes of [[stream.length], [1], [3, 7], [65536], [5, 100000]]) {
    const frames = feed(stream, sizes);
    assert.deepEqual(frames.map((f) => f.type), [FrameType.INVOKE, FrameType.LOG, FrameType.RESULT, FrameType.READY], String(sizes));
    assert.deepEqual(frames[0].header, { requestId: 'a' });
    assert.equal(frames[0].body.toString(), '{"k":1}');
    assert.equal(frames[1].body.toString(), 'line\n');
    assert.equal(frames[2].body.length, big.length);
    assert.ok(frames[2].body.equals(big));
    assert.equal(frames[3].body.length, 0);
  }
});

it('encodes UTF-8 headers and bodies by byte length', () => {
  const f = feed(encodeFrame(FrameType.RESULT, '{"requestId":"ü"}', 'héllo ✓'), [2]);
  assert.deepEqual(f[0].header, { requestId: 'ü' });
  assert.equal(f[0].body.toString(), 'héllo ✓');
});
