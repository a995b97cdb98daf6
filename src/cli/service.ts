/**
 * Commands about a deployed service, with the Serverless Framework's names
 * and flags: `nimbus info`, `nimbus remove`, `nimbus rollback [--version N]`,
 * `nimbus logs -f NAME [--tail] [--startTime]`, `nimbus metrics [-f NAME]
 * [--since]`. The service and stage come from the serverless.yml (`--config`)
 * unless `--service` is given.
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { NimbusError } from '../core/index.js';
import { loadServiceConfig } from '../config/index.js';
import type { DeployResult, ServiceInfo } from '../control/index.js';
import { ControlClient, remoteOptions, type RemoteOptions } from './client.js';
import { printResult } from './deploy.js';
import { paint, reportError, type Io } from './output.js';

interface ServiceOptions extends RemoteOptions { config: string; service?: string; stage?: string; function?: string }

/** The service, stage and function names a command is about. */
interface Target {
  readonly service: string;
  readonly stage: string;
  /** Function key → Lambda name, when the serverless.yml was read. */
  readonly names: ReadonlyMap<string, string>;
}

function targetOf(opts: ServiceOptions, io: Io): Target {
  if (opts.service) return { service: opts.service, stage: opts.stage ?? 'dev', names: new Map() };
  const path = resolve(opts.config);
  if (!existsSync(path)) {
    throw new NimbusError('NIMBUS_ERR_CLI_USAGE', { reason: `no ${opts.config} here: run the command in the service's folder, or name it with --service NAME [--stage STAGE]` });
  }
  const spec = loadServiceConfig(path, { stage: opts.stage, env: io.env });
  return { service: spec.service, stage: spec.stage, names: new Map(spec.functions.map((f) => [f.key, f.name])) };
}

function withService(cmd: Command): Command {
  return remoteOptions(cmd
    .option('-c, --config <file>', 'path of the serverless.yml', 'serverless.yml')
    .option('--service <name>', 'the service, instead of reading the serverless.yml')
    .option('-s, --stage <stage>', 'stage (default: provider.stage or dev)'));
}

/** Runs `work`, printing its error the CLI way; resolves with the exit code. */
async function run(io: Io, work: () => Promise<void>): Promise<number> {
  try {
    await work();
    return 0;
  } catch (e) {
    return reportError(io, e);
  }
}

const path = (t: Target) => `/_/services/${encodeURIComponent(t.service)}/${encodeURIComponent(t.stage)}`;

/** Registers info, remove, rollback, logs and metrics on `program`. */
export function registerServiceCommands(program: Command, io: Io, done: (code: number) => void): void {
  withService(program.command('info').description('Show a deployed service: endpoints, functions, versions, aliases, deployments'))
    .option('--all', 'list every service the server has')
    .action(async (opts: ServiceOptions & { all?: boolean }) => done(await run(io, async () => {
      const client = ControlClient.from(opts, io.env);
      if (opts.all) {
        const all = await client.call<ServiceInfo[]>('info', 'GET', '/_/services');
        if (opts.json) { io.out(JSON.stringify(all, null, 2) + '\n'); return; }
        if (!all.length) io.out('No services deployed.\n');
        for (const s of all) printInfo(io, s);
        return;
      }
      const info = await client.call<ServiceInfo>('info', 'GET', path(targetOf(opts, io)));
      if (opts.json) io.out(JSON.stringify(info, null, 2) + '\n'); else printInfo(io, info);
    })));

  withService(program.command('remove').description('Remove a deployed service: its routes and functions, with their versions and aliases'))
    .action(async (opts: ServiceOptions) => done(await run(io, async () => {
      const t = targetOf(opts, io);
      const r = await ControlClient.from(opts, io.env).call<{ removed: string }>('the removal', 'DELETE', path(t));
      io.out(opts.json ? JSON.stringify(r) + '\n' : `Removed ${t.service} (stage ${t.stage})\n`);
    })));

  withService(program.command('rollback').description('Serve an earlier deployment again (default: the one before the current)'))
    .option('-v, --version <deployment>', 'the deployment number to roll back to (`nimbus info` lists them)')
    .action(async (opts: ServiceOptions & { version?: string }) => done(await run(io, async () => {
      const n = opts.version === undefined ? undefined : Number(opts.version);
      if (n !== undefined && (!Number.isInteger(n) || n < 1)) {
        throw new NimbusError('NIMBUS_ERR_CLI_USAGE', { reason: `--version takes a deployment number (1, 2, …), got "${opts.version}"` });
      }
      const t = targetOf(opts, io);
      const r = await ControlClient.from(opts, io.env).call<DeployResult>('the rollback', 'POST', `${path(t)}/rollback`, n === undefined ? {} : { deployment: n });
      if (opts.json) { io.out(JSON.stringify(r, null, 2) + '\n'); return; }
      io.out(`Rolled back: serving the versions of the chosen deployment as deployment ${r.deployment}\n`);
      printResult(io, r);
    })));

  withService(program.command('logs').description('Print the logs of a function (START … REPORT per invocation)'))
    .requiredOption('-f, --function <name>', 'the function: its key under functions: or its name')
    .option('-t, --tail', 'keep printing new logs until interrupted')
    .option('--startTime <time>', 'from when: 30m, 2h, 1d ago, or a date (default: 10m ago)', '10m')
    .option('--interval <ms>', 'how often --tail asks for new logs', '1000')
    .action(async (opts: ServiceOptions & { tail?: boolean; startTime: string; interval: string }) => done(await run(io, async () => {
      const name = functionName(opts, io);
      const client = ControlClient.from(opts, io.env);
      let since = parseSince(opts.startTime);
      const seen = new Set<string>();
      const interval = Math.max(100, Number(opts.interval) || 1000);
      for (;;) {
        const r = await client.call<{ events: Array<{ timeMs: number; requestId: string; text: string }> }>('logs', 'GET',
          `/_/logs?function=${encodeURIComponent(name)}&since=${since}&limit=1000`);
        for (const e of r.events) {
          // Retries of an asynchronous invocation share the request id: an event is its id and time.
          const key = `${e.requestId}@${e.timeMs}`;
          if (seen.has(key)) continue;
          seen.add(key);
          since = Math.max(since, e.timeMs);
          io.out(opts.json ? JSON.stringify(e) + '\n' : e.text.endsWith('\n') ? e.text : `${e.text}\n`);
        }
        if (!opts.tail) return;
        await new Promise((r) => setTimeout(r, interval));
      }
    })));

  withService(program.command('metrics').description('Invocations, errors, throttles, cold starts, durations, scale and cost'))
    .option('-f, --function <name>', 'one function (default: all)')
    .option('--since <time>', 'from when: 30m, 2h, 1d ago, or a date (default: 1h ago)', '1h')
    .action(async (opts: ServiceOptions & { since: string }) => done(await run(io, async () => {
      const name = opts.function === undefined ? undefined : functionName(opts, io);
      const since = parseSince(opts.since);
      const query = `since=${since}${name ? `&function=${encodeURIComponent(name)}` : ''}`;
      const m = await ControlClient.from(opts, io.env).call<Record<string, unknown>>('metrics', 'GET', `/_/metrics?${query}`);
      if (opts.json) { io.out(JSON.stringify(m, null, 2) + '\n'); return; }
      io.out(`${paint(io, 'green', name ?? 'All functions')} since ${new Date(since).toISOString()}\n`);
      for (const [k, v] of Object.entries(m)) {
        if (k === 'function' || v === undefined || typeof v === 'object') continue;
        io.out(`  ${k.padEnd(20)} ${typeof v === 'number' && !Number.isInteger(v) ? Number(v.toPrecision(6)) : String(v)}\n`);
      }
    })));
}

/** Registers `schedule run|list` and `dead-letters [redrive ID]` on `program`. */
export function registerEventCommands(program: Command, io: Io, done: (code: number) => void): void {
  const schedule = program.command('schedule').description('Schedule rules (schedule events) of a nimbus server');
  withService(schedule.command('run').description('Fire the schedule rules of a function now, as their time had come'))
    .requiredOption('-f, --function <name>', 'the function: its key under functions: or its name')
    .action(async (opts: ServiceOptions) => done(await run(io, async () => {
      const name = functionName(opts, io);
      const r = await ControlClient.from(opts, io.env).call<{ fired: string[] }>('the schedule run', 'POST', '/_/schedules/run', { function: name });
      io.out(opts.json ? JSON.stringify(r) + '\n' : `Fired ${r.fired.join(', ')} (an asynchronous invocation of ${name}; \`nimbus logs -f ${opts.function}\` shows it)\n`);
    })));
  remoteOptions(schedule.command('list').description('Every schedule rule with its next fire time'))
    .action(async (opts: RemoteOptions) => done(await run(io, async () => {
      const rules = await ControlClient.from(opts, io.env).call<Array<{ name: string; functionName: string; expression: string; enabled: boolean; next: string | null }>>('the schedule list', 'GET', '/_/schedules');
      if (opts.json) { io.out(JSON.stringify(rules, null, 2) + '\n'); return; }
      if (!rules.length) io.out('No schedule rules.\n');
      for (const r of rules) io.out(`${r.name}  ${r.expression}  → ${r.functionName}  ${r.enabled ? `next ${r.next ?? 'never'}` : 'disabled'}\n`);
    })));
  const dead = remoteOptions(program.command('dead-letters').description('Asynchronous events that exhausted their retries (the dead-letter queue)'))
    .option('-f, --function <name>', 'only this function (its name)')
    .action(async (opts: RemoteOptions & { function?: string }) => done(await run(io, async () => {
      const q = opts.function ? `?function=${encodeURIComponent(opts.function)}` : '';
      const rows = await ControlClient.from(opts, io.env).call<Array<Record<string, unknown>>>('the dead-letter list', 'GET', `/_/dead-letters${q}`);
      if (opts.json) { io.out(JSON.stringify(rows, null, 2) + '\n'); return; }
      if (!rows.length) io.out('The dead-letter queue is empty.\n');
      for (const r of rows) io.out(`${String(r.id)}  ${String(r.functionName)}  ${String(r.requestId)}  ${String(r.condition ?? r.reason ?? '')}\n`);
    })));
  remoteOptions(dead.command('redrive').description('Put a dead letter back on the queue (same request id)').argument('<id>', 'the dead letter\'s id'))
    .action(async (id: string, opts: RemoteOptions) => done(await run(io, async () => {
      if (!/^\d+$/.test(id)) throw new NimbusError('NIMBUS_ERR_CLI_USAGE', { reason: `a dead letter id is a number, got "${id}"` });
      await ControlClient.from(opts, io.env).call('the redrive', 'POST', `/_/dead-letters/${id}/redrive`);
      io.out(`Dead letter ${id} is queued again\n`);
    })));
}

/** A function's Lambda name: a key of the serverless.yml becomes its name; anything else is taken as a name. */
function functionName(opts: ServiceOptions, io: Io): string {
  const fn = opts.function!;
  if (opts.service) return fn.startsWith(`${opts.service}-`) ? fn : `${opts.service}-${opts.stage ?? 'dev'}-${fn}`;
  if (!existsSync(resolve(opts.config))) return fn;
  return targetOf(opts, io).names.get(fn) ?? fn;
}

/**
 * `30m`, `2h`, `1d`, `45s` ago, or a date `Date.parse` reads; epoch ms.
 * @throws NimbusError NIMBUS_ERR_CLI_USAGE for anything else.
 */
export function parseSince(text: string, now = Date.now()): number {
  const m = /^(\d+(?:\.\d+)?)\s*(s|m|h|d)$/.exec(text.trim());
  if (m) return Math.floor(now - Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd']);
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new NimbusError('NIMBUS_ERR_CLI_USAGE', { reason: `cannot read the time "${text}": use 30m, 2h, 1d or a date such as 2026-01-31T12:00:00Z` });
  return t;
}

function printInfo(io: Io, s: ServiceInfo): void {
  io.out(`${paint(io, 'green', s.service)} (stage ${s.stage}), deployment ${s.deployment} at ${s.deployedAt}\n`);
  if (s.endpoints.length) io.out('Endpoints:\n' + s.endpoints.map((e) => `  ${e}\n`).join(''));
  io.out('Functions:\n');
  for (const f of s.functions) {
    io.out(`  ${f.key}: ${f.name} version ${f.version} (${f.runtime}, ${f.memorySize} MB, ${f.timeout} s); versions ${f.versions.join(', ')}\n`);
    for (const a of f.aliases) {
      const extra = Object.entries(a.additionalVersionWeights).map(([v, w]) => `, ${Math.round(w * 100)}% to ${v}`).join('');
      io.out(`    alias ${a.name} → ${a.functionVersion}${extra}\n`);
    }
  }
  io.out('Deployments:\n' + s.deployments.map((d) => `  ${d.deployment}  ${d.deployedAt}  ${Object.entries(d.versions).map(([k, v]) => `${k}:${v}`).join(' ')}\n`).join(''));
}
