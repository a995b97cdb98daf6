// A burst of 100 concurrent requests at a quick function with no instance (`nimbus dev`, warm pool 2),
// then, 3 s later, how many runtime processes the server still has, alive or booting: the scaler calls
// off the starts a burst made before the function was known to be quick (docs/scaling.md). Prints one
// line per run; asserts nothing. Servers are started and stopped with bench/peers/lib.mjs.
// Usage: node bench/burst/run.mjs [NIMBUS_ROOT (default: this checkout)] [PORT (4810)] [RUNS (3)]
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as C from '../peers/lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(process.argv[2] ?? join(here, '..', '..'));
const port = Number(process.argv[3] ?? 4810);
const runs = Number(process.argv[4] ?? 3);
const server = {
  cmd: process.execPath, cwd: here, env: {},
  args: [join(root, 'bin/nimbus'), 'dev', '--config', join(here, 'serverless.yml'), '--port', String(port), '--control-port', String(port + 1), '--quiet', '--no-watch'],
};
/** Runtime processes (the interpreters, not their bwrap wrappers) under the server. */
const runtimes = (pid) => C.tree(pid).filter((p) => C.procStat(p)?.comm === 'node' && C.cmdline(p).some((a) => a.endsWith('bootstrap.mjs'))).length;

for (let run = 0; run < runs; run++) {
  const child = C.startServer(server, join(tmpdir(), `nimbus-burst-${port}.log`), { pin: false });
  try {
    await C.waitStatus200(port + 1, '/_/health', 30_000, child);
    await C.sleep(1500); // the pool fills
    const t = C.now();
    const replies = await Promise.all(Array.from({ length: 100 }, () => C.get(port, '/q')));
    const ms = C.now() - t;
    await C.sleep(3000);
    console.log(`${root}: ${replies.filter((r) => r.status === 200).length}/100 answered 200 in ${ms.toFixed(0)} ms; runtime processes 3 s later: ${runtimes(child.pid)}`);
  } finally {
    await C.stopServer(child);
  }
}
