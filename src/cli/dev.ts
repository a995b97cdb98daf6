/** `nimbus dev`: serve a serverless.yml locally, reloading on change. */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { DevServer, describeService } from '../server/index.js';
import { paint, reportError, type Io, logLines } from './output.js';
import { instanceOptions, instanceSettings, portOption, type InstanceCliOptions } from './options.js';

/** Registers `dev` on `program`; `done` receives the exit code when the server stops. */
export function registerDev(program: Command, io: Io, done: (code: number) => void): void {
  instanceOptions(program
    .command('dev'), 2)
    .description('Serve the functions of a serverless.yml behind a local API gateway, reloading on file change')
    .option('-c, --config <file>', 'path of the serverless.yml', 'serverless.yml')
    .option('-p, --port <port>', 'gateway port', portOption('--port'), 3000)
    .option('--control-port <port>', 'control API port (Invoke API, health)', portOption('--control-port'), 3001)
    .option('--host <address>', 'gateway bind address', '127.0.0.1')
    .option('-s, --stage <stage>', 'stage (default: provider.stage or dev)')
    .option('-r, --region <region>', 'region (default: provider.region or us-east-1)')
    .option('--no-watch', 'do not reload on file change')
    .option('--quiet', 'do not print invocation logs')
    .action(async (opts: {
      config: string; port: number; controlPort: number; host: string; stage?: string; region?: string; watch: boolean; quiet?: boolean;
    } & InstanceCliOptions) => {
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
          ...instanceSettings(opts),
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
