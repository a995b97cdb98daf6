import { it } from 'node:test';
import assert from 'node:assert/strict';
import { BootGate } from './gate.js';

const tick = () => new Promise((r) => setImmediate(r));

it('runs up to its limit of instance starts at once, each next one off the tick that freed a slot', async () => {
  const gate = new BootGate(2);
  const ran: string[] = [];
  gate.acquire(() => ran.push('a'), true);
  gate.acquire(() => ran.push('b'), true);
  gate.acquire(() => ran.push('c'), true);
  assert.deepEqual(ran, ['a', 'b']);
  assert.equal(gate.waiting, 1);
  gate.release(true);
  assert.deepEqual(ran, ['a', 'b'], 'not in the releasing tick');
  await tick();
  assert.deepEqual(ran, ['a', 'b', 'c']);
  assert.equal(gate.booting, 2);
});

it('never makes an instance start wait for pool refills; refills run only in the room left', async () => {
  const gate = new BootGate(2);
  const ran: string[] = [];
  gate.acquire(() => ran.push('refill 1'), false);
  gate.acquire(() => ran.push('refill 2'), false);
  gate.acquire(() => ran.push('refill 3'), false);
  gate.acquire(() => ran.push('start 1'), true);
  gate.acquire(() => ran.push('start 2'), true);
  assert.deepEqual(ran, ['refill 1', 'refill 2', 'start 1', 'start 2'], 'starts do not wait for refills');
  gate.release(false);
  gate.release(false);
  await tick();
  assert.deepEqual(ran.length, 4, 'no room for a refill while the starts run');
  gate.release(true);
  await tick();
  assert.deepEqual(ran.at(-1), 'refill 3', 'room again once a start is done');
});

it('a cancelled wait never runs', async () => {
  const gate = new BootGate(1);
  const ran: string[] = [];
  gate.acquire(() => ran.push('a'), true);
  const cancel = gate.acquire(() => ran.push('cancelled'), true);
  gate.acquire(() => ran.push('b'), true);
  assert.equal(cancel(), true);
  assert.equal(cancel(), false);
  gate.release(true);
  await tick();
  assert.deepEqual(ran, ['a', 'b']);
});
