// A burst of 100 concurrent requests at a quick function with no instance (`nimbus dev`, warm pool 2),
// then, 3 s later, how many runtime processes are still alive or booting: the scaler calls off the starts
// a burst made before the function was known to be quick (docs/scaling.md). Prints one line per run;
// asserts nothing. Usage: node bench/burst/run.mjs [NIMBUS_ROOT (default: this checkout)] [PORT (4810)] [RUNS (3)]
import { execSync, spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(process.argv[2] ?? join(here, '..', '..'));
const port = Number(process.argv[3] ?? 4810);
const runs = Number(process.argv[4] ?? 3);
const env = { ...process.env };
delete env.NODE_EXTRA_CA_CERTS;
delete env.NODE_OPTIONS;
const runtimes = () => execSync("ps -eo args | grep -c '^/usr/bin/node .*bootstrap.mjs' || true").toString().trim();

for (let run = 0; run < runs; run++) {
  const child = spawn(process.execPath, [join(root, 'bin/nimbus'), 'dev', '--config', join(here, 'serverless.yml'), '--port', String(port),
    '--control-port', String(port + 1), '--quiet', '--no-watch'], { env, stdio: 'ignore' });
  try {
    for (let i = 0; ; i++) {
      try { await fetch(`http://127.0.0.1:${port + 1}/_/health`); break; } catch { if (i > 400) throw new Error('nimbus dev did not start'); await new Promise((r) => setTimeout(r, 50)); }
    }
    await new Promise((r) => setTimeout(r, 1500)); // the pool fills
    const t = performance.now();
    const statuses = await Promise.all(Array.from({ length: 100 }, () => fetch(`http://127.0.0.1:${port}/q`).then((r) => r.status)));
    const ms = performance.now() - t;
    await new Promise((r) => setTimeout(r, 3000));
    console.log(`${root}: ${statuses.filter((s) => s === 200).length}/100 answered 200 in ${ms.toFixed(0)} ms; runtime processes 3 s later: ${runtimes()}`);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.on('exit', r));
  }
}
