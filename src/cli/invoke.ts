/**
 * `nimbus invoke`: one invocation of one function, no server (like the
 * Serverless Framework's `serverless invoke local`). Prints the function's
 * logs (START … REPORT) on stderr and its result on stdout.
 */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { NimbusError } from '../core/index.js';
import { Platform } from '../server/index.js';
import { loadServiceConfig } from '../config/index.js';
import { paint, reportError, type Io } from './output.js';
import { ControlClient, remoteOptions, type RemoteOptions } from './client.js';

interface InvokeOptions extends RemoteOptions {
  function: string; data?: string; path?: string; config: string; stage?: string; region?: string; log: boolean; qualifier?: string;
}

/** Registers `invoke` on `program`; `done` receives the exit code (0, or 1 when the invocation or the command failed). */
export function registerInvoke(program: Command, io: Io, done: (code: number) => void): void {
  const invoke = program
    .command('invoke')
    .description('Invoke one function once, locally, and print its result and logs')
    .requiredOption('-f, --function <name>', 'the function: its key under functions: or its name:')
    .option('-d, --data <json>', 'the event, as JSON (a string that is not JSON is sent as a JSON string)')
    .option('-p, --path <file>', 'a file holding the event JSON')
    .option('-c, --config <file>', 'path of the serverless.yml', 'serverless.yml')
    .option('-s, --stage <stage>', 'stage (default: provider.stage or dev)')
    .option('-r, --region <region>', 'region')
    .option('--no-log', 'do not print the function\'s logs')
    .option('-q, --qualifier <version|alias>', 'a version or alias (with a server)')
    .addHelpText('after', '\nWith --endpoint (or NIMBUS_ENDPOINT) the function deployed on that nimbus server runs; without, the local one.')
    .action(async (opts: InvokeOptions) => {
      done(await (opts.endpoint ?? io.env.NIMBUS_ENDPOINT ? runRemoteInvoke(opts, io) : runInvoke(opts, io)));
    });
  remoteOptions(invoke);
}

/**
 * The Invoke API of a nimbus server, as `serverless invoke` calls Lambda's:
 * the result on stdout, the log tail (X-Amz-Log-Result) on stderr.
 */
async function runRemoteInvoke(opts: InvokeOptions, io: Io): Promise<number> {
  try {
    const event = readEvent(opts);
    const client = ControlClient.from(opts, io.env);
    let name = opts.function;
    try {
      const spec = loadServiceConfig(resolve(opts.config), { stage: opts.stage, region: opts.region, env: io.env });
      name = spec.functions.find((f) => f.key === opts.function)?.name ?? name;
    } catch { /* no serverless.yml here: the name is the function's name */ }
    const q = opts.qualifier ? `?Qualifier=${encodeURIComponent(opts.qualifier)}` : '';
    const r = await client.invoke(name, event, q);
    if (opts.log && r.logs) io.err(r.logs);
    let pretty = r.payload;
    try { pretty = JSON.stringify(JSON.parse(r.payload), null, 2); } catch { /* keep as is */ }
    io.out((opts.json ? JSON.stringify({ version: r.version, functionError: r.functionError, payload: JSON.parse(r.payload || 'null') }) : pretty) + '\n');
    if (!r.functionError) return 0;
    io.err(`${paint(io, 'red', `Invocation failed (${r.functionError})`)}\n`);
    return 1;
  } catch (e) {
    return reportError(io, e);
  }
}

async function runInvoke(opts: InvokeOptions, io: Io): Promise<number> {
  let platform: Platform | null = null;
  try {
    const event = readEvent(opts);
    platform = new Platform({
      configPath: resolve(opts.config), stage: opts.stage, region: opts.region, env: io.env,
      pythonCommand: io.env.NIMBUS_PYTHON ?? 'python3', log: () => {},
    });
    await platform.load();
    const fn = platform.find(opts.function);
    if (!fn) {
      const known = platform.spec.functions.map((f) => f.key).join(', ');
      throw new NimbusError('NIMBUS_ERR_INVOKE_FUNCTION_NOT_FOUND', { function: `${opts.function} (functions in this service: ${known || 'none'})` });
    }
    const result = await platform.invoke(fn.spec.key, event);
    if (opts.log) io.err(result.logs);
    let pretty = result.payload;
    try { pretty = JSON.stringify(JSON.parse(result.payload), null, 2); } catch { /* keep as is */ }
    if (result.outcome === 'ok') {
      io.out(pretty + '\n');
      return 0;
    }
    io.out(pretty + '\n');
    io.err(`${paint(io, 'red', `Invocation failed (${result.outcome})`)}\n`);
    return 1;
  } catch (e) {
    return reportError(io, e);
  } finally {
    await platform?.close();
  }
}

function readEvent(opts: InvokeOptions): string {
  if (opts.data !== undefined && opts.path !== undefined) {
    throw new NimbusError('NIMBUS_ERR_CLI_USAGE', { reason: 'give the event with --data or --path, not both' });
  }
  if (opts.path !== undefined) {
    let text: string;
    try { text = readFileSync(resolve(opts.path), 'utf8'); } catch (e) {
      throw new NimbusError('NIMBUS_ERR_CLI_USAGE', { reason: `cannot read the event file ${opts.path}: ${(e as Error).message}` });
    }
    try { JSON.parse(text); } catch (e) {
      throw new NimbusError('NIMBUS_ERR_CLI_USAGE', { reason: `the event file ${opts.path} is not valid JSON: ${(e as Error).message}` });
    }
    return text;
  }
  if (opts.data === undefined) return '{}';
  try { JSON.parse(opts.data); return opts.data; } catch { return JSON.stringify(opts.data); }
}
