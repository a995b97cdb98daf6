import { it } from 'node:test';
import assert from 'node:assert/strict';
import { BootGate } from './gate.js';

const tick = () => new Promise((r) => setImmediate(r));

it('runs boots up to its limit at once, then instance starts before pool refills, each off the tick that freed a slot', async () => {
  const gate = new BootGate(2);
  const ran: string[] = [];
  gate.acquire(() => ran.push('a'), true);
  gate.acquire(() => ran.push('b'), false);
  gate.acquire(() => ran.push('refill'), false);
  gate.acquire(() => ran.push('c'), true);
  assert.deepEqual(ran, ['a', 'b'], 'two at once');
  assert.equal(gate.waiting, 2);
  gate.release();
  assert.deepEqual(ran, ['a', 'b'], 'not in the releasing tick');
  await tick();
  assert.deepEqual(ran, ['a', 'b', 'c'], 'the instance start first');
  gate.release();
  await tick();
  assert.deepEqual(ran, ['a', 'b', 'c', 'refill']);
  assert.equal(gate.booting, 2);
});

it('a refill never jumps ahead of a waiting instance start, and a cancelled wait never runs', async () => {
  const gate = new BootGate(1);
  const ran: string[] = [];
  gate.acquire(() => ran.push('a'), true);
  const cancel = gate.acquire(() => ran.push('cancelled'), true);
  gate.acquire(() => ran.push('refill'), false);
  assert.equal(cancel(), true);
  assert.equal(cancel(), false);
  gate.release();
  await tick();
  assert.deepEqual(ran, ['a', 'refill']);
  const gate2 = new BootGate(2);
  gate2.acquire(() => {}, true);
  gate2.acquire(() => {}, true);
  gate2.acquire(() => ran.push('x'), true);
  gate2.acquire(() => ran.push('late refill'), false);
  gate2.release();
  gate2.release();
  await tick();
  assert.deepEqual(ran.slice(2), ['x', 'late refill']);
});
