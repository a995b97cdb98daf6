/** `nimbus dev`: serve a serverless.yml locally, reloading on change. */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { DevServer, describeService } from '../server/index.js';
import { paint, reportError, type Io, logLines } from './output.js';
import { intOption, msList, numberOption, portOption } from './options.js';

/** Registers `dev` on `program`; `done` receives the exit code when the server stops. */
export function registerDev(program: Command, io: Io, done: (code: number) => void): void {
  program
    .command('dev')
    .description('Serve the functions of a serverless.yml behind a local API gateway, reloading on file change')
    .option('-c, --config <file>', 'path of the serverless.yml', 'serverless.yml')
    .option('-p, --port <port>', 'gateway port', portOption('--port'), 3000)
    .option('--control-port <port>', 'control API port (Invoke API, health)', portOption('--control-port'), 3001)
    .option('--host <address>', 'gateway bind address', '127.0.0.1')
    .option('-s, --stage <stage>', 'stage (default: provider.stage or dev)')
    .option('-r, --region <region>', 'region (default: provider.region or us-east-1)')
    .option('--no-watch', 'do not reload on file change')
    .option('--keep-alive <seconds>', 'an idle instance retires after this long', numberOption('--keep-alive'), 300)
    .option('--warm-pool <count>', 'pre-warmed runtime processes kept per language (0: none)', intOption('--warm-pool'), 2)
    .option('--host-memory-share <share>', 'share of host memory the memorySize of live instances may add up to (above 1 overcommits)', numberOption('--host-memory-share'), 0.8)
    .option('--max-queue-wait <ms>', 'longest an invocation waits for an instance at a limit before it is throttled', intOption('--max-queue-wait'), 3000)
    .option('--account-concurrency <count>', 'most instances of a function without reservedConcurrency', intOption('--account-concurrency'), 1000)
    .option('--async-retry-delays <ms,...>', 'waits before retries of failed asynchronous invocations (default Lambda\'s 60000,120000)', msList('--async-retry-delays'))
    .option('--quiet', 'do not print invocation logs')
    .action(async (opts: {
      config: string; port: number; controlPort: number; host: string; stage?: string; region?: string; watch: boolean; quiet?: boolean;
      asyncRetryDelays?: number[];
      keepAlive: number; warmPool: number; hostMemoryShare: number; maxQueueWait: number; accountConcurrency: number;
    }) => {
      let server: DevServer;
      try {
        server = await DevServer.start({
          configPath: resolve(opts.config),
          stage: opts.stage,
          region: opts.region,
          env: io.env,
          port: opts.port,
          controlPort: opts.controlPort,
          bind: opts.host,
          watch: opts.watch,
          keepAliveMs: opts.keepAlive * 1000,
          warmPoolSize: opts.warmPool,
          hostMemoryShare: opts.hostMemoryShare,
          maxQueueWaitMs: opts.maxQueueWait,
          accountConcurrency: opts.accountConcurrency,
          ...(opts.asyncRetryDelays ? { asyncRetryDelaysMs: opts.asyncRetryDelays } : {}),
          pythonCommand: io.env.NIMBUS_PYTHON ?? 'python3',
          log: (text, spec) => {
            if (opts.quiet && spec) return;
            if (!spec) { io.err(text); return; }
            const prefix = paint(io, 'cyan', `[${spec.key}] `);
            io.out(logLines(text).replace(/^(?=.)/gm, prefix));
          },
        });
      } catch (e) {
        done(reportError(io, e));
        return;
      }
      for (const w of server.platform.warnings()) io.err(`${paint(io, 'yellow', 'Warning:')} ${w}\n`);
      io.err(`${paint(io, 'gray', `Limits: ${server.platform.limits.description}`)}\n`);
      io.err(`${paint(io, 'gray', `Isolation: ${server.platform.isolation.description}`)}\n`);
      io.out(`${paint(io, 'green', `nimbus dev: ${server.spec.service} (stage ${server.spec.stage})`)} at http://${opts.host}:${server.port}\n`);
      for (const line of describeService(server.spec, server.port, server.controlPort, opts.host)) io.out(line + '\n');
      let stopping = false;
      const stop = async (signal: string) => {
        if (stopping) return;
        stopping = true;
        io.err(`${signal}: stopping\n`);
        await server.close();
        done(0);
      };
      process.once('SIGINT', () => void stop('SIGINT'));
      process.once('SIGTERM', () => void stop('SIGTERM'));
    });
}
