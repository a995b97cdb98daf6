/** `nimbus server`: the long-running platform that `nimbus deploy` deploys to. */
import type { Command } from 'commander';
import { NimbusServer } from '../server/index.js';
import { LAMBDA_X86_PRICES } from '../telemetry/index.js';
import { dataDirOf } from './client.js';
import { instanceOptions, instanceSettings, intOption, numberOption, portOption, type InstanceCliOptions } from './options.js';
import { paint, reportError, type Io, logLines } from './output.js';

interface ServerCliOptions extends InstanceCliOptions {
  dataDir?: string; port: number; controlPort: number; host: string; controlHost: string; quiet?: boolean;
  allowUnsandboxed?: boolean; retentionDays: number; pricePerRequest?: number; pricePerGbSecond?: number;
}

/** Registers `server` on `program`; `done` receives the exit code when the server stops. */
export function registerServer(program: Command, io: Io, done: (code: number) => void): void {
  instanceOptions(program
    .command('server'), 1)
    .description('Run the platform: serve every deployed service, take deploys on the control API, keep state in the data directory')
    .option('--data-dir <dir>', 'where state lives (default: NIMBUS_DATA_DIR or ~/.nimbus)')
    .option('-p, --port <port>', 'gateway port', portOption('--port'), 3000)
    .option('--control-port <port>', 'control API port', portOption('--control-port'), 3001)
    .option('--host <address>', 'gateway bind address (0.0.0.0 to serve other machines)', '127.0.0.1')
    .option('--control-host <address>', 'control API bind address (keep it on loopback unless a proxy with TLS is in front)', '127.0.0.1')
    .option('--price-per-request <usd>', 'price of one request in cost figures (default: Lambda\'s $0.0000002)', numberOption('--price-per-request'))
    .option('--price-per-gb-second <usd>', 'price of one GB-second in cost figures (default: Lambda\'s x86 $0.0000166667)', numberOption('--price-per-gb-second'))
    .option('--retention-days <days>', 'invocation records and logs are kept this long', numberOption('--retention-days'), 30)
    .option('--allow-unsandboxed', 'run functions as plain processes of this user when bubblewrap cannot sandbox them (they can then read the data directory)')
    .option('--quiet', 'do not print invocation logs')
    .action(async (opts: ServerCliOptions) => {
      const dataDir = dataDirOf(opts.dataDir, io.env);
      let server: NimbusServer;
      try {
        server = await NimbusServer.start({
          dataDir,
          port: opts.port,
          controlPort: opts.controlPort,
          host: opts.host,
          controlHost: opts.controlHost,
          env: io.env,
          ...instanceSettings(opts),
          allowUnsandboxed: opts.allowUnsandboxed ?? false,
          retentionDays: opts.retentionDays,
          ...(opts.pricePerRequest !== undefined || opts.pricePerGbSecond !== undefined ? {
            prices: { perRequest: opts.pricePerRequest ?? LAMBDA_X86_PRICES.perRequest, perGbSecond: opts.pricePerGbSecond ?? LAMBDA_X86_PRICES.perGbSecond },
          } : {}),
          pythonCommand: io.env.NIMBUS_PYTHON ?? 'python3',
          log: (text, spec) => {
            if (!spec) { io.err(text); return; }
            if (opts.quiet) return;
            io.out(logLines(text).replace(/^(?=.)/gm, paint(io, 'cyan', `[${spec.name}] `)));
          },
        });
      } catch (e) {
        done(reportError(io, e));
        return;
      }
      const c = server.credentials;
      if (c.created) {
        io.err(`${paint(io, 'yellow', 'First start: credentials made (shown once; kept 0600 in the data directory):')}\n`);
        io.err(`  admin token:        ${c.adminToken}\n`);
        for (const k of c.accessKeys) io.err(`  access key (SigV4): ${k.accessKeyId} / ${k.secretAccessKey}\n`);
      }
      io.err(`${paint(io, 'gray', `Data: ${dataDir}`)}\n`);
      io.err(`${paint(io, 'gray', `Limits: ${server.functions.limits.description}`)}\n`);
      const unsandboxed = server.functions.isolation.kind === 'none';
      io.err(`${paint(io, unsandboxed ? 'red' : 'gray', `Isolation: ${server.functions.isolation.description}${unsandboxed ? ' — UNSANDBOXED: any function can read this data directory, the admin token included' : ''}`)}\n`);
      const shown = (h: string) => (h === '0.0.0.0' || h === '::' ? '127.0.0.1' : h);
      io.out(`${paint(io, 'green', 'nimbus server')} gateway http://${shown(opts.host)}:${server.port}, control API http://${shown(opts.controlHost)}:${server.controlPort}\n`);
      const services = server.records();
      io.out(services.length ? `Serving ${services.map((s) => `${s.name} (${s.stage}, deployment ${s.deployment})`).join(', ')}\n` : 'No services deployed yet: run `nimbus deploy` in a project folder.\n');
      let stopping = false;
      const stop = async (signal: string) => {
        if (stopping) return;
        stopping = true;
        io.err(`${signal}: stopping (requests in flight get up to 10 s)\n`);
        await server.close();
        done(0);
      };
      process.once('SIGINT', () => void stop('SIGINT'));
      process.once('SIGTERM', () => void stop('SIGTERM'));
    });
}
