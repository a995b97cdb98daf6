/**
 * Commands about a deployed service, with the Serverless Framework's names
 * and flags: `nimbus info`, `nimbus remove`, `nimbus rollback [--version N]`,
 * `nimbus logs -f NAME [--tail] [--startTime]`, `nimbus metrics [-f NAME]
 * [--since]`. The service and stage come from the serverless.yml (`--config`)
 * unless `--service` is given.
 */
import type { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { NimbusError } from '../core/index.js';
import { loadServiceConfig } from '../config/index.js';
import type { DeployResult, ServiceInfo } from '../control/index.js';
import { ControlClient, remoteOptions, type RemoteOptions } from './client.js';
import { printResult } from './deploy.js';
import { paint, reportError, type Io, logLines } from './output.js';

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
      const n = opts.version === undefined ? undefined : /^\d+$/.test(opts.version) ? Number(opts.version) : NaN;
      if (n !== undefined && (!Number.isInteger(n) || n < 1)) {
        throw new NimbusError('NIMBUS_ERR_CLI_USAGE', { reason: `--version takes a deployment number (1, 2, …), got "${opts.version}"` });
      }
      const t = targetOf(opts, io);
      const r = await ControlClient.from(opts, io.env).call<DeployResult>('the rollback', 'POST', `${path(t)}/rollback`, n === undefined ? {} : { deployment: n });
      if (opts.json) { io.out(JSON.stringify(r, null, 2) + '\n'); return; }
      io.out(`Rolled back${n !== undefined ? ` to deployment ${n}` : ' to the previous deployment'}: its versions serve again, as deployment ${r.deployment}\n`);
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
          io.out(opts.json ? JSON.stringify(e) + '\n' : logLines(e.text.endsWith('\n') ? e.text : `${e.text}\n`));
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
      for (const line of metricsLines(m)) io.out(`  ${line}\n`);
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

/** `name=value` options, collected. */
function attribute(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const at = value.indexOf('=');
  if (at <= 0) throw new NimbusError('NIMBUS_ERR_CLI_USAGE', { reason: `--attribute takes name=value, got "${value}"` });
  return { ...previous, [value.slice(0, at)]: value.slice(at + 1) };
}

/** Reads a message from --body / --message, or from a file with --file. */
function messageText(text: string | undefined, file: string | undefined, flag: string): string {
  if ((text === undefined) === (file === undefined)) throw new NimbusError('NIMBUS_ERR_CLI_USAGE', { reason: `give the message with ${flag} TEXT or --file PATH (one of them)` });
  if (text !== undefined) return text;
  try { return readFileSync(resolve(file!), 'utf8'); } catch (e) {
    throw new NimbusError('NIMBUS_ERR_CLI_USAGE', { reason: `cannot read ${file}: ${(e as Error).message}` });
  }
}

/** Registers `queue send|list` and `topic publish|list` on `program`. */
export function registerMessagingCommands(program: Command, io: Io, done: (code: number) => void): void {
  const queue = program.command('queue').description('Queues of a nimbus server (sqs events, AWS::SQS::Queue resources)');
  remoteOptions(queue.command('send').description('Send a message to a queue (SQS\'s SendMessage)'))
    .requiredOption('-q, --queue <name>', 'the queue')
    .option('-b, --body <text>', 'the message body')
    .option('--file <path>', 'a file holding the message body')
    .option('-a, --attribute <name=value>', 'a string message attribute (repeatable)', attribute)
    .option('--delay <seconds>', 'seconds before the message can be received (0–900)')
    .action(async (opts: RemoteOptions & { queue: string; body?: string; file?: string; attribute?: Record<string, string>; delay?: string }) => done(await run(io, async () => {
      const body = messageText(opts.body, opts.file, '--body');
      const delay = opts.delay === undefined ? undefined : Number(opts.delay);
      const r = await ControlClient.from(opts, io.env).call<{ messageId: string }>('the message', 'POST', `/_/queues/${encodeURIComponent(opts.queue)}/messages`,
        { body, ...(opts.attribute ? { attributes: opts.attribute } : {}), ...(delay !== undefined ? { delaySeconds: delay } : {}) });
      io.out(opts.json ? JSON.stringify(r) + '\n' : `Sent message ${r.messageId} to ${opts.queue}\n`);
    })));
  remoteOptions(queue.command('receive').description('Receive messages of a queue, e.g. its dead-letter queue\'s (hidden for the visibility timeout unless deleted)'))
    .requiredOption('-q, --queue <name>', 'the queue')
    .option('-n, --max <count>', 'at most this many messages (1–10)', '10')
    .option('--delete', 'delete the messages received')
    .action(async (opts: RemoteOptions & { queue: string; max: string; delete?: boolean }) => done(await run(io, async () => {
      const rows = await ControlClient.from(opts, io.env).call<Array<{ MessageId: string; Body: string; Attributes: Record<string, string> }>>('the receive', 'POST',
        `/_/queues/${encodeURIComponent(opts.queue)}/receive`, { max: Number(opts.max), delete: opts.delete === true });
      if (opts.json) { io.out(JSON.stringify(rows, null, 2) + '\n'); return; }
      if (!rows.length) io.out(`No message visible in ${opts.queue}.\n`);
      for (const m of rows) io.out(`${m.MessageId}  (received ${m.Attributes.ApproximateReceiveCount ?? '?'}×)  ${m.Body}\n`);
      if (rows.length && opts.delete) io.out(`Deleted ${rows.length} message(s)\n`);
    })));
  remoteOptions(queue.command('list').description('Every queue with its messages: visible, in flight, delayed'))
    .action(async (opts: RemoteOptions) => done(await run(io, async () => {
      const rows = await ControlClient.from(opts, io.env).call<Array<Record<string, unknown>>>('the queue list', 'GET', '/_/queues');
      if (opts.json) { io.out(JSON.stringify(rows, null, 2) + '\n'); return; }
      if (!rows.length) io.out('No queues.\n');
      for (const q of rows) {
        io.out(`${String(q.queue)}  visible ${String(q.visible ?? 0)}  in flight ${String(q.inFlight ?? 0)}  delayed ${String(q.delayed ?? 0)}${q.deadLetterQueue ? `  → dead letters to ${String(q.deadLetterQueue)}` : ''}\n`);
      }
    })));
  const topic = program.command('topic').description('Topics of a nimbus server (sns events, AWS::SNS::Topic resources)');
  remoteOptions(topic.command('publish').description('Publish a message to every subscriber of a topic (SNS\'s Publish)'))
    .requiredOption('-t, --topic <name>', 'the topic')
    .option('-m, --message <text>', 'the message')
    .option('--file <path>', 'a file holding the message')
    .option('-s, --subject <text>', 'the subject')
    .option('-a, --attribute <name=value>', 'a string message attribute (repeatable; subscribers\' filter policies match on them)', attribute)
    .action(async (opts: RemoteOptions & { topic: string; message?: string; file?: string; subject?: string; attribute?: Record<string, string> }) => done(await run(io, async () => {
      const message = messageText(opts.message, opts.file, '--message');
      const r = await ControlClient.from(opts, io.env).call<{ messageId: string }>('the message', 'POST', `/_/topics/${encodeURIComponent(opts.topic)}/messages`,
        { message, ...(opts.subject !== undefined ? { subject: opts.subject } : {}), ...(opts.attribute ? { attributes: opts.attribute } : {}) });
      io.out(opts.json ? JSON.stringify(r) + '\n' : `Published message ${r.messageId} to ${opts.topic}\n`);
    })));
  remoteOptions(topic.command('list').description('Every topic subscription'))
    .action(async (opts: RemoteOptions) => done(await run(io, async () => {
      const rows = await ControlClient.from(opts, io.env).call<Array<Record<string, unknown>>>('the topic list', 'GET', '/_/topics');
      if (opts.json) { io.out(JSON.stringify(rows, null, 2) + '\n'); return; }
      if (!rows.length) io.out('No subscriptions.\n');
      for (const t of rows) io.out(`${String(t.topic)} → ${String(t.functionName)}${t.filterPolicy ? `  filter ${JSON.stringify(t.filterPolicy)}` : ''}\n`);
    })));
}

/** The metrics summary for people: labels, units, rates. */
function metricsLines(m: Record<string, unknown>): string[] {
  const n = (k: string) => (typeof m[k] === 'number' ? m[k] as number : 0);
  const ms = (k: string) => (typeof m[k] === 'number' ? `${(m[k] as number).toFixed(1)} ms` : '-');
  const invocations = n('invocations');
  const pct = (x: number) => (invocations ? ` (${((100 * x) / invocations).toFixed(1)}%)` : '');
  return [
    `invocations     ${invocations}`,
    `errors          ${n('errors')}${pct(n('errors'))}`,
    `throttles       ${n('throttles')}`,
    `cold starts     ${n('coldStarts')}${pct(n('coldStarts'))}`,
    `duration        p50 ${ms('p50Ms')}, p95 ${ms('p95Ms')}, p99 ${ms('p99Ms')}`,
    `throughput      ${n('throughputPerSecond').toFixed(3)} invocations/s over ${(n('elapsedMs') / 1000).toFixed(0)} s`,
    `instances       peak ${n('peakInstances')}, minimum ${n('minInstances')} (scale ratio ${n('scaleRatio').toFixed(1)})`,
    `compute         ${n('gbSeconds').toFixed(3)} GB-seconds`,
    `cost            $${n('costUsd').toFixed(8)} (Lambda's price model)`,
  ];
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
