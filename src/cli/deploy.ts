/**
 * `nimbus deploy` and `nimbus deploy function -f NAME`: package the service
 * (esbuild bundles for TypeScript, the folder filtered by package.patterns),
 * upload what the server lacks, then activate: the server publishes a
 * version of each function and switches routes and code together. A failed
 * step changes nothing that serves. Same command and flags as the
 * Serverless Framework's `deploy`.
 */
import type { Command } from 'commander';
import { join, resolve } from 'node:path';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import type { ServiceSpec } from '../core/index.js';
import { NimbusError } from '../core/index.js';
import { loadServiceConfig } from '../config/index.js';
import { packageService, type DeployManifest, type DeployResult } from '../control/index.js';
import { ControlClient, remoteOptions, type RemoteOptions } from './client.js';
import { paint, reportError, type Io } from './output.js';

/** The largest package the control API takes in one upload (its `/_/` body limit). */
const MAX_UPLOAD_BYTES = 70 * 1024 * 1024;

interface DeployOptions extends RemoteOptions { config: string; stage?: string; region?: string; function?: string }

/** Registers `deploy` (and `deploy function`) on `program`. */
export function registerDeploy(program: Command, io: Io, done: (code: number) => void): void {
  const deploy = remoteOptions(program
    .command('deploy')
    .description('Package the service and deploy it to a nimbus server: a new version of each function, routes switched atomically')
    .option('-c, --config <file>', 'path of the serverless.yml', 'serverless.yml')
    .option('-s, --stage <stage>', 'stage (default: provider.stage or dev)')
    .option('-r, --region <region>', 'region (default: provider.region or us-east-1)'))
    .action(async (opts: DeployOptions) => done(await runDeploy(opts, io)));
  remoteOptions(deploy
    .command('function')
    .description('Deploy the code and configuration of one function only; routes stay as deployed')
    .requiredOption('-f, --function <name>', 'the function: its key under functions: or its name')
    .option('-c, --config <file>', 'path of the serverless.yml', 'serverless.yml')
    .option('-s, --stage <stage>', 'stage (default: provider.stage or dev)')
    .option('-r, --region <region>', 'region'))
    .action(async (opts: DeployOptions) => done(await runDeploy(opts, io)));
}

/** Progress lines: a spinner on a terminal, plain lines otherwise (CI logs), nothing with --json. */
class Progress {
  private spinner: { text: string; succeed(t?: string): void; fail(t?: string): void; stop(): void } | null = null;
  private constructor(private readonly io: Io, private readonly quiet: boolean, private readonly tty: boolean) {}

  static create(io: Io, json: boolean): Progress {
    return new Progress(io, json, io.color && Boolean(process.stderr.isTTY));
  }

  async step<T>(text: string, work: () => Promise<T>, done?: (value: T) => string): Promise<T> {
    if (this.quiet) return work();
    if (this.tty) {
      const { default: ora } = await import('ora');
      this.spinner = ora({ text, stream: process.stderr }).start();
    } else {
      this.io.err(`${text}...\n`);
    }
    try {
      const value = await work();
      const doneText = done ? done(value) : text;
      if (this.spinner) this.spinner.succeed(doneText); else if (done) this.io.err(`  ${doneText}\n`);
      return value;
    } catch (e) {
      this.spinner?.fail(text);
      throw e;
    } finally {
      this.spinner = null;
    }
  }
}

async function runDeploy(opts: DeployOptions, io: Io): Promise<number> {
  let buildDir: string | undefined;
  try {
    const client = ControlClient.from(opts, io.env);
    const progress = Progress.create(io, Boolean(opts.json));
    const spec = await progress.step('Reading the configuration', async () =>
      loadServiceConfig(resolve(opts.config), { stage: opts.stage, region: opts.region, env: io.env }),
    (s) => `${s.service} (stage ${s.stage}): ${s.functions.length} function(s), ${s.routes.length} route(s)`);
    let only: string[] | undefined;
    if (opts.function !== undefined) {
      const f = spec.functions.find((x) => x.key === opts.function || x.name === opts.function);
      if (!f) {
        throw new NimbusError('NIMBUS_ERR_INVOKE_FUNCTION_NOT_FOUND', { function: `${opts.function} (functions in this service: ${spec.functions.map((x) => x.key).join(', ') || 'none'})` });
      }
      only = [f.key];
    }
    // Bundles are built where nimbus dev builds them, so their source maps point at /var/task/src/… in the package.
    mkdirSync(join(spec.dir, '.nimbus'), { recursive: true });
    buildDir = mkdtempSync(join(spec.dir, '.nimbus', 'deploy-'));
    const pkg = await progress.step('Packaging', () => packageService(spec, buildDir!),
      (p) => `Packaged ${p.files.length} file(s), ${formatBytes(p.size)} (sha256 ${p.sha256.slice(0, 12)})`);
    if (pkg.size > MAX_UPLOAD_BYTES) {
      throw new NimbusError('NIMBUS_ERR_PACKAGE_TOO_LARGE', { service: spec.service, limit: `${MAX_UPLOAD_BYTES / 1024 / 1024} MB zipped (this package: ${formatBytes(pkg.size)})` });
    }
    await progress.step('Uploading', async () => {
      if (await client.hasArtifact(pkg.sha256)) return false;
      await client.call('the upload', 'PUT', '/_/artifacts', pkg.zip, 'application/zip');
      return true;
    }, (sent) => (sent ? `Uploaded ${formatBytes(pkg.size)}` : 'The server has this package already'));
    const result = await progress.step('Activating', () => client.call<DeployResult>('the deploy', 'POST', '/_/deploy', manifest(spec, pkg.sha256, only)),
      (r) => (r.changed ? `Deployment ${r.deployment} serving` : `No change: deployment ${r.deployment} keeps serving`));
    if (opts.json) { io.out(JSON.stringify(result, null, 2) + '\n'); return 0; }
    printResult(io, result);
    return 0;
  } catch (e) {
    return reportError(io, e);
  } finally {
    if (buildDir) rmSync(buildDir, { recursive: true, force: true });
  }
}

/** The deploy request: every function's configuration (without its local folder), the routes and API settings. */
export function manifest(spec: ServiceSpec, codeSha256: string, only?: string[]): DeployManifest {
  return {
    service: spec.service, stage: spec.stage, region: spec.region, codeSha256,
    functions: spec.functions.map(({ codeDir: _local, ...config }) => config),
    routes: spec.routes,
    ...(spec.httpApiCors ? { httpApiCors: spec.httpApiCors } : {}),
    binaryMediaTypes: spec.binaryMediaTypes,
    schedules: spec.schedules, queues: spec.queues, queueEvents: spec.queueEvents, topics: spec.topics, topicEvents: spec.topicEvents,
    ...(only ? { only } : {}),
  };
}

/** Prints what a deploy or rollback left serving. */
export function printResult(io: Io, r: DeployResult): void {
  io.out(`${paint(io, 'green', `${r.service}`)} (stage ${r.stage}), deployment ${r.deployment}\n`);
  if (r.endpoints.length) io.out('Endpoints:\n' + r.endpoints.map((e) => `  ${e}\n`).join(''));
  io.out('Functions:\n' + Object.entries(r.functions).map(([key, f]) => `  ${key}: ${f.name} (version ${f.version})\n`).join(''));
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}
