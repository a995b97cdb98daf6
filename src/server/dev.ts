/**
 * `nimbus dev`: one serverless.yml served from its folder, with the gateway,
 * the control API (Invoke API, health) and reload on file change.
 */
import { join, relative } from 'node:path';
import type { FSWatcher } from 'chokidar';
import type { FunctionSpec, ServiceSpec } from '../core/index.js';
import { isNimbusError } from '../core/index.js';
import { Gateway } from '../gateway/index.js';
import { ControlServer, handleNimbusApi, type MessagingBackend, type NimbusApiBackend } from '../control/index.js';
import { lambdaFunctionArn, NimbusError } from '../core/index.js';
import { openSqliteStore, type Store } from '../store/index.js';
import { EventSources, eventsApi, messagingBackend, messagingOf } from './sources.js';
import { functionArn } from '../sandbox/index.js';
import { Platform, type PlatformOptions } from './platform.js';

/** Settings of `nimbus dev`: the platform's, plus ports, bind address, watching and API Gateway's integration timeouts. */
export interface DevOptions extends PlatformOptions {
  readonly port: number;
  readonly controlPort: number;
  /** Gateway bind address (default 127.0.0.1). */
  readonly bind?: string;
  /** Reload on file change (default true). */
  readonly watch?: boolean;
  /** API Gateway's integration timeouts in ms (default REST 29,000, HTTP API 30,000). */
  readonly integrationTimeoutMs?: { readonly REST: number; readonly HTTP: number };
  /** Where the event queue lives (default `<service dir>/.nimbus`). */
  readonly dataDir?: string;
  /** Waits before retries of failed asynchronous invocations, ms (default Lambda's ~1 and ~2 minutes). */
  readonly asyncRetryDelaysMs?: readonly number[];
}

/** The `/_/` endpoints `nimbus dev` serves: schedules and the dead-letter queue (deploys are the server's). */
function devApi(platform: Platform, sources: EventSources): NimbusApiBackend {
  const serverOnly = (): never => {
    throw new NimbusError('NIMBUS_ERR_CLI_USAGE', { reason: 'nimbus dev serves its folder: deploys, services, logs and metrics are nimbus server\'s' });
  };
  return {
    hasArtifact: () => false, putArtifact: serverOnly, deploy: serverOnly, services: () => [], service: serverOnly,
    remove: serverOnly, rollback: serverOnly, logs: () => [],
    metrics: (name) => (name !== undefined && !platform.find(name) ? null : platform.metrics(name)),
    prometheusText: serverOnly,
    ...eventsApi(sources, (name) => platform.find(name)?.spec.name ?? name),
  };
}

/** What reload does not watch: build output, dependencies, VCS, caches. */
const IGNORED = /(^|[\\/])(\.nimbus|node_modules|\.git|__pycache__|\.serverless|\.venv|venv)([\\/]|$)/;

/**
 * Files whose change reloads: code, config and templates. Anything else the
 * project folder gains at run time (logs, databases, uploads) is not code and
 * must not reload (a log written there would reload for ever).
 */
const WATCHED = /\.(js|mjs|cjs|ts|mts|cts|jsx|tsx|py|json|ya?ml|env|html|graphql|sql)$/i;

/** A running `nimbus dev`. */
export class DevServer {
  private watcher: FSWatcher | null = null;
  private reloadTimer: NodeJS.Timeout | null = null;
  private loaded = false;
  port = 0;
  controlPort = 0;

  private constructor(
    readonly platform: Platform,
    private readonly gateway: Gateway,
    private readonly control: ControlServer,
    private readonly options: DevOptions,
    /** `<service>/.nimbus`: the asynchronous invocation queue and schedule state, so `kill -9` loses no accepted event. */
    readonly store: Store,
    readonly sources: EventSources,
  ) {}

  /**
   * Loads the config, prepares every function and starts both servers.
   * Throws NimbusError for a bad config or code, and the listen error for a busy port.
   */
  static async start(options: DevOptions): Promise<DevServer> {
    // The control port is bound first: instances are told where the SQS and SNS APIs are.
    let endpoint = '';
    const platform = new Platform({
      ...options,
      environment: (spec): Record<string, string> => (spec.queues.length || spec.topics.length ? {
        AWS_ENDPOINT_URL_SQS: endpoint, AWS_ENDPOINT_URL_SNS: endpoint,
        // The SDK signs even when nothing checks: the host's own credentials, else placeholders.
        AWS_ACCESS_KEY_ID: options.env.AWS_ACCESS_KEY_ID ?? 'nimbus-dev', AWS_SECRET_ACCESS_KEY: options.env.AWS_SECRET_ACCESS_KEY ?? 'nimbus-dev',
      } : {}),
    });
    let self: DevServer | null = null;
    let sources: EventSources | undefined;
    let messaging: MessagingBackend | undefined;
    const control = new ControlServer({
      ready: () => self?.loaded ?? false,
      resolve: (name) => {
        const d = platform.find(name);
        return d ? { arn: functionArn(d.spec) } : null;
      },
      arnFor: (name) => lambdaFunctionArn(platform.spec.region, name),
      metrics: (name) => (name !== undefined && !platform.find(name) ? null : platform.metrics(name)),
      invoke: (name, payload) => platform.invoke(platform.find(name)!.spec.key, payload),
      // Stored before the 202, delivered with retries, as on the server.
      invokeAsync: async (name, payload) => sources!.enqueue(platform.find(name)!.spec.name, payload),
      routes: (req, res, body, path, query) => handleNimbusApi(devApi(platform, sources!), req, res, body, path, query),
      // Set once the event sources exist (the control port is bound before the service loads).
      get messaging() { return messaging; },
    });
    let controlPort: number;
    try {
      controlPort = await control.listen(options.controlPort, '127.0.0.1');
    } catch (e) {
      await platform.close();
      throw e;
    }
    endpoint = `http://127.0.0.1:${controlPort}`;
    let spec: ServiceSpec;
    try {
      spec = await platform.load();
    } catch (e) {
      await control.close();
      await platform.close();
      throw e;
    }
    let store: Store;
    try {
      store = openSqliteStore(options.dataDir ?? join(spec.dir, '.nimbus'));
    } catch (e) {
      await control.close();
      await platform.close();
      throw new NimbusError('NIMBUS_ERR_SERVER_DATA_DIR', { dir: options.dataDir ?? join(spec.dir, '.nimbus'), reason: (e as Error).message }, { cause: e });
    }
    sources = new EventSources({
      store,
      region: spec.region,
      invoke: async (name, _qualifier, payload, requestId) => {
        const d = platform.find(name);
        if (!d) return { requestId, outcome: 'rejected', durationMs: 0, billedDurationMs: 0, logs: '', payload: JSON.stringify({ errorType: 'ResourceNotFoundException', errorMessage: `Function not found: ${name}` }) };
        return { ...(await platform.invoke(d.spec.key, payload, requestId)), executedVersion: '$LATEST' };
      },
      config: (name) => platform.find(name)?.spec.eventInvokeConfig,
      arnFor: (name) => lambdaFunctionArn(platform.spec.region, name),
      log: (text) => options.log(text),
      retryDelaysMs: options.asyncRetryDelaysMs,
      reclaimOnStart: true,
    });
    messaging = messagingBackend(sources, spec.region);
    const gateway = new Gateway(spec, (key, event) => platform.invoke(key, event), {
      log: (key, text) => {
        const f = platform.find(key);
        options.log(text, f?.spec);
      },
      integrationTimeoutMs: options.integrationTimeoutMs,
    });
    self = new DevServer(platform, gateway, control, options, store, sources);
    self.controlPort = controlPort;
    self.setSources(spec);
    sources.start();
    try {
      self.port = await gateway.listen(options.port, options.bind ?? '127.0.0.1');
    } catch (e) {
      await self.close();
      throw e;
    }
    if (options.watch !== false) await self.startWatching(spec);
    self.loaded = true;
    return self;
  }

  get spec(): ServiceSpec { return this.platform.spec; }

  /** Stops accepting requests and events, lets those in flight finish, stops every instance. */
  async close(): Promise<void> {
    await this.watcher?.close();
    if (this.reloadTimer) clearTimeout(this.reloadTimer);
    await Promise.all([this.gateway.close(), this.control.close()]);
    await this.sources.stop();
    await this.platform.close();
    this.store.close();
  }

  /** The schedules, queues and topics of the service, invoking `$LATEST`. */
  private setSources(spec: ServiceSpec): void {
    this.setSchedules(spec);
    try {
      this.sources.setMessaging('service', messagingOf(spec, (key) => {
        const f = spec.functions.find((x) => x.key === key);
        return f ? { functionName: f.name } : undefined;
      }));
    } catch (e) {
      this.options.log(`queues and topics not set: ${(e as Error).message}\n`);
    }
  }

  /** The schedule rules of the service, invoking `$LATEST`. */
  private setSchedules(spec: ServiceSpec): void {
    const targets = spec.schedules.flatMap((s) => {
      const f = spec.functions.find((x) => x.key === s.functionKey);
      return f ? [{ spec: s, service: spec.service, stage: spec.stage, functionName: f.name }] : [];
    });
    try {
      this.sources.setSchedules('service', targets);
    } catch (e) {
      this.options.log(`schedules not set: ${(e as Error).message}\n`);
    }
  }

  /**
   * Watches the service folder with chokidar, which also follows files
   * replaced by an atomic save (write a temporary file, rename it over).
   */
  private async startWatching(spec: ServiceSpec): Promise<void> {
    const { default: chokidar } = await import('chokidar');
    const ignored = (path: string, stats?: { isFile(): boolean }) => {
      const rel = relative(spec.dir, path);
      if (IGNORED.test(rel)) return true;
      return stats?.isFile() === true && !WATCHED.test(rel);
    };
    this.watcher = chokidar.watch(spec.dir, { ignored, ignoreInitial: true, atomic: true });
    this.watcher.on('all', (event, path) => {
      const rel = relative(spec.dir, path);
      if (event !== 'addDir' && event !== 'unlinkDir' && !WATCHED.test(rel)) return;
      if (this.reloadTimer) clearTimeout(this.reloadTimer);
      this.reloadTimer = setTimeout(() => void this.reload(rel), 150);
    });
    this.watcher.on('error', () => { /* a removed folder: keep serving */ });
  }

  private async reload(changed: string): Promise<void> {
    try {
      const before = describeService(this.platform.spec, this.port, this.controlPort, this.options.bind).join('\n');
      const spec = await this.platform.reload();
      this.gateway.reload(spec);
      this.setSources(spec);
      this.options.log(`reloaded after a change to ${changed}\n`);
      const after = describeService(spec, this.port, this.controlPort, this.options.bind).join('\n');
      if (after !== before) this.options.log(`${after}\n`);
    } catch (e) {
      const msg = isNimbusError(e) ? `${e.message}${e.hint ? `\n  ${e.hint}` : ''}` : String(e);
      this.options.log(`reload failed, still serving the previous version:\n  ${msg}\n`);
    }
  }
}

/** The lines `nimbus dev` prints at start: routes with their URLs, and functions. */
export function describeService(spec: ServiceSpec, port: number, controlPort: number, host = '127.0.0.1'): string[] {
  const lines: string[] = [];
  const base = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
  const byKey = new Map<string, FunctionSpec>(spec.functions.map((f) => [f.key, f]));
  if (spec.routes.length) lines.push('Routes:');
  for (const r of spec.routes) {
    const path = r.api === 'REST' ? `/${spec.stage}${r.path === '/' ? '' : r.path}` : r.path === '$default' ? '/*' : r.path;
    lines.push(`  ${r.method.padEnd(7)} ${base}${path}  → ${r.functionKey} (${r.api === 'REST' ? 'REST, payload 1.0' : `HTTP API, payload ${r.payloadFormatVersion}`})`);
  }
  lines.push('Functions:');
  for (const f of byKey.values()) {
    lines.push(`  ${f.key} (${f.name}): ${f.runtime}, ${f.memorySize} MB, ${f.timeout} s`);
  }
  const events = [
    ...spec.schedules.map((r) => `  ${r.functionKey}: schedule ${r.expression}${r.enabled ? '' : ' (disabled)'}`),
    ...spec.queueEvents.map((q) => `  ${q.functionKey}: queue ${q.queue} (batches of up to ${q.batchSize})`),
    ...spec.topicEvents.map((t) => `  ${t.functionKey}: topic ${t.topic}`),
  ];
  if (events.length) lines.push('Events:', ...events);
  lines.push(`Invoke API: http://127.0.0.1:${controlPort}/2015-03-31/functions/<name>/invocations`);
  return lines;
}
