import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { errorCatalogue, NimbusError, isNimbusError } from './errors.js';

const docs = readFileSync(fileURLToPath(new URL('../../../docs/errors.md', import.meta.url)), 'utf8');

it('documents every error code in docs/errors.md with its status', () => {
  for (const [code, entry] of Object.entries(errorCatalogue)) {
    const row = docs.split('\n').find((l) => l.startsWith(`| \`${code}\``));
    assert.ok(row, `${code} is missing from docs/errors.md`);
    assert.ok(row.includes(String(entry.status)), `${code}: docs/errors.md does not give status ${entry.status}`);
    assert.ok(row.includes(`| ${entry.fault} |`), `${code}: docs/errors.md does not give fault ${entry.fault}`);
  }
});

it('documents no code that does not exist', () => {
  const documented = [...docs.matchAll(/^\| `(NIMBUS_ERR_[A-Z_]+)`/gm)].map((m) => m[1]);
  assert.deepEqual([...new Set(documented)].sort(), Object.keys(errorCatalogue).sort());
  assert.equal(documented.length, new Set(documented).size, 'a code is documented twice');
});

it('fills the message template and chains the cause', () => {
  const cause = new Error('ENOENT');
  const e = new NimbusError('NIMBUS_ERR_CONFIG_NOT_FOUND', { file: 'a.yml', reason: 'no such file' }, { cause });
  assert.equal(e.message, 'Cannot read a.yml: no such file');
  assert.equal(e.status, 400);
  assert.equal(e.fault, 'user');
  assert.equal(e.cause, cause);
  assert.ok(isNimbusError(e));
  assert.ok(!isNimbusError(new Error('x')));
});
