/**
 * `nimbus dev`: one serverless.yml served from its folder, with the gateway,
 * the control API (Invoke API, health) and reload on file change.
 */
import { relative } from 'node:path';
import type { FSWatcher } from 'chokidar';
import type { FunctionSpec, ServiceSpec } from '../core/index.js';
import { isNimbusError } from '../core/index.js';
import { Gateway } from '../gateway/index.js';
import { ControlServer } from '../control/index.js';
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
  private asyncInFlight = new Set<Promise<unknown>>();
  port = 0;
  controlPort = 0;

  private constructor(
    readonly platform: Platform,
    private readonly gateway: Gateway,
    private readonly control: ControlServer,
    private readonly options: DevOptions,
  ) {}

  /**
   * Loads the config, prepares every function and starts both servers.
   * Throws NimbusError for a bad config or code, and the listen error for a busy port.
   */
  static async start(options: DevOptions): Promise<DevServer> {
    const platform = new Platform(options);
    let spec: ServiceSpec;
    try {
      spec = await platform.load();
    } catch (e) {
      await platform.close();
      throw e;
    }
    let self: DevServer | null = null;
    const gateway = new Gateway(spec, (key, event) => platform.invoke(key, event), {
      log: (key, text) => {
        const f = platform.find(key);
        options.log(text, f?.spec);
      },
      integrationTimeoutMs: options.integrationTimeoutMs,
    });
    const control = new ControlServer({
      ready: () => self?.loaded ?? false,
      resolve: (name) => {
        const d = platform.find(name);
        return d ? { arn: functionArn(d.spec) } : null;
      },
      arnFor: (name) => `arn:aws:lambda:${platform.spec.region}:000000000000:function:${name}`,
      metrics: (name) => (name !== undefined && !platform.find(name) ? null : platform.metrics(name)),
      invoke: (name, payload) => platform.invoke(platform.find(name)!.spec.key, payload),
      invokeAsync: async (name, payload) => {
        const d = platform.find(name)!;
        const p = platform.invoke(d.spec.key, payload).finally(() => self?.asyncInFlight.delete(p));
        self?.asyncInFlight.add(p);
      },
    });
    self = new DevServer(platform, gateway, control, options);
    try {
      self.port = await gateway.listen(options.port, options.bind ?? '127.0.0.1');
      self.controlPort = await control.listen(options.controlPort, '127.0.0.1');
    } catch (e) {
      await self.close();
      throw e;
    }
    if (options.watch !== false) await self.startWatching(spec);
    self.loaded = true;
    return self;
  }

  get spec(): ServiceSpec { return this.platform.spec; }

  /** Stops accepting requests, stops every instance. */
  async close(): Promise<void> {
    await this.watcher?.close();
    if (this.reloadTimer) clearTimeout(this.reloadTimer);
    await Promise.all([this.gateway.close(), this.control.close()]);
    await this.platform.close();
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
  lines.push(`Invoke API: http://127.0.0.1:${controlPort}/2015-03-31/functions/<name>/invocations`);
  return lines;
}
