/**
 * `nimbus server`: the long-running platform teams deploy to. State lives in
 * the store under the data directory (functions, versions, aliases, code,
 * services and their deployments, invocation records, logs); a restart
 * serves every deployed service again.
 *
 * Routing follows Lambda's versions: a deploy publishes a version of each
 * function and the service's routes invoke exactly those versions
 * (`name:version`), so routes and code switch together, and instances of the
 * previous versions finish their work and retire. `$LATEST` follows the
 * newest deploy, as it does for a stack the Serverless Framework deploys.
 * https://docs.aws.amazon.com/lambda/latest/dg/configuration-versions.html
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { FunctionSpec, InvocationResult, QueueEventSpec, QueueSpec, RouteSpec, ScheduleSpec, TopicEventSpec, TopicSpec } from '../core/index.js';
import { ACCOUNT_ID, LAMBDA_ALIAS_NAME, LAMBDA_FUNCTION_NAME, lambdaFunctionArn, MAX_INVOCATIONS_PER_INSTANCE, NimbusError, RESERVED_ENVIRONMENT } from '../core/index.js';
import {
  ControlServer, createAuthenticator, handleNimbusApi, LambdaManagementApi, type DeployManifest, type NimbusApiBackend, type DeployResult, type ServiceInfo,
} from '../control/index.js';
import { findHandlerFile, handlerCandidates, splitHandler } from '../config/index.js';
import { Gateway, type GatewayService } from '../gateway/index.js';
import {
  detectHostRuntimes, detectLimitEnforcer, launchFor, prepareModule, runtimeReadPaths,
  type HostRuntimes, type LimitEnforcer,
} from '../sandbox/index.js';
import { openSqliteStore, type AliasRecord, type FunctionConfig, type ServiceRecord, type Store } from '../store/index.js';
import { PrometheusMetrics, summarise, type Prices } from '../telemetry/index.js';
import { loadCredentials, lockDataDir, type ServerCredentials } from './credentials.js';
import { FunctionHost, type HostedFunction, type HostOptions } from './host.js';
import { invocationRecord } from './platform.js';
import { EventSources, eventsApi, messagingBackend, messagingOf, type ScheduleTarget } from './sources.js';

/** Settings of `nimbus server`. */
export interface ServerOptions extends Omit<HostOptions, 'onLog'> {
  /** Where state lives (created 0700). */
  readonly dataDir: string;
  /** Gateway port (0: any free one). */
  readonly port: number;
  /** Control API port (0: any free one). */
  readonly controlPort: number;
  /** Gateway bind address (default 127.0.0.1). */
  readonly host?: string;
  /** Control API bind address (default 127.0.0.1: the control plane stays on loopback unless asked). */
  readonly controlHost?: string;
  /** Receives platform messages, and invocation logs with their function. */
  readonly log: (text: string, spec?: FunctionSpec) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly isolation?: 'auto' | 'none';
  readonly pythonCommand?: string;
  readonly hostRuntimes?: HostRuntimes;
  readonly limits?: LimitEnforcer;
  /** API Gateway's integration timeouts in ms (default REST 29,000, HTTP API 30,000). */
  readonly integrationTimeoutMs?: { readonly REST: number; readonly HTTP: number };
  /** Prices of the cost figures (default: Lambda's x86 list prices, $0.20 per million requests, $0.0000166667 per GB-second). */
  readonly prices?: Prices;
  /** Invocation records and logs older than this many days are deleted (default 30). */
  readonly retentionDays?: number;
  /** Run functions as plain child processes when bubblewrap cannot sandbox them (default: refuse to start). */
  readonly allowUnsandboxed?: boolean;
  /** Region of ARNs and of functions created through the Lambda API (default us-east-1). */
  readonly region?: string;
  /** Waits before retries of failed asynchronous invocations, ms (default Lambda's ~1 and ~2 minutes; tests shorten them). */
  readonly asyncRetryDelaysMs?: readonly number[];
  /** How long in-flight requests get to finish on stop, ms (default 10,000). */
  readonly shutdownDeadlineMs?: number;
}


/** A running `nimbus server`. */
export class NimbusServer implements NimbusApiBackend {
  port = 0;
  controlPort = 0;
  private readonly active = new Map<string, ServiceRecord>();
  /** Resolved function versions by `name:version`; `$LATEST` entries are dropped when it changes. */
  private readonly resolved = new Map<string, Promise<HostedFunction | undefined>>();
  private ready = false;
  private gateway!: Gateway;
  private control!: ControlServer;
  /** The asynchronous invocation queue and the schedules. */
  sources!: EventSources;
  /** The Prometheus exposition (`GET /metrics` on the control port). */
  readonly prometheus: PrometheusMetrics;
  /**
   * The access key instances sign their SQS and SNS calls with: made at each
   * start, never stored, allowed those APIs only.
   */
  private readonly instanceKey = {
    accessKeyId: `NKIAFN${randomBytes(7).toString('hex').toUpperCase()}`,
    secretAccessKey: randomBytes(30).toString('base64'),
  };
  /** Aliases read from the store (null: none), by `name:alias`; dropped when the function changes. */
  private readonly aliases = new Map<string, AliasRecord | null>();
  /** Deploys, removes and rollbacks run one at a time. */
  private changes: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly options: ServerOptions,
    readonly store: Store,
    readonly credentials: ServerCredentials,
    readonly functions: FunctionHost,
    private readonly release: () => void,
  ) {
    this.prometheus = new PrometheusMetrics({ prices: options.prices });
  }

  /**
   * Opens the data directory, serves every deployed service again, and
   * starts the gateway and the control API.
   * @throws NimbusError NIMBUS_ERR_SERVER_DATA_DIR (cannot open or lock the data dir); the listen error for a busy port.
   */
  static async start(options: ServerOptions): Promise<NimbusServer> {
    let store: Store;
    try {
      store = openSqliteStore(options.dataDir);
    } catch (e) {
      throw new NimbusError('NIMBUS_ERR_SERVER_DATA_DIR', { dir: options.dataDir, reason: (e as Error).message }, { cause: e });
    }
    let release: () => void = () => {};
    let self: NimbusServer | undefined;
    try {
      release = lockDataDir(options.dataDir);
      const credentials = loadCredentials(options.dataDir);
      openCodeToSandbox(options.dataDir);
      const runtimes = options.hostRuntimes ?? detectHostRuntimes(options.pythonCommand ?? 'python3', options.env as NodeJS.ProcessEnv, true);
      const host = new FunctionHost(runtimes, options.limits ?? detectLimitEnforcer(), {
        ...options,
        onLog: (spec, text) => options.log(text, spec),
      });
      const readable = [join(options.dataDir, 'code'), ...runtimeReadPaths('node', runtimes), ...(runtimes.python ? runtimeReadPaths('python', runtimes) : [])];
      const isolation = host.decideIsolation(options.isolation ?? 'auto', readable);
      // Without a sandbox a function runs as the server's user and can read the data directory (the admin token).
      if (isolation.kind === 'none' && !options.allowUnsandboxed) {
        throw new NimbusError('NIMBUS_ERR_SERVER_UNSANDBOXED', { reason: isolation.description });
      }
      self = new NimbusServer(options, store, credentials, host, release);
      await self.listen();
      return self;
    } catch (e) {
      if (self) await self.close();
      else { store.close(); release(); }
      throw e;
    }
  }

  private housekeeper: NodeJS.Timeout | undefined;

  /**
   * Keeps the data directory from growing without end: records and logs past
   * the retention go, and code packages no version uses (an hour after upload,
   * so a deploy in progress keeps its own).
   */
  private housekeeping(): void {
    try {
      const now = Date.now();
      this.store.pruneRecords(now - (this.options.retentionDays ?? 30) * 86_400_000);
      this.store.collectArtifacts(now - 60 * 60_000);
    } catch (e) {
      this.options.log(`housekeeping: ${(e as Error).message}\n`);
    }
  }

  private async listen(): Promise<void> {
    for (const record of this.store.listServices()) this.active.set(serviceKey(record.name, record.stage), record);
    this.sources = new EventSources({
      store: this.store,
      region: this.region,
      invoke: (name, qualifier, payload, requestId) => this.invoke(name, qualifier, payload, requestId),
      config: (name) => this.store.getVersion(name, '$LATEST')?.config.eventInvokeConfig,
      arnFor: (name) => this.arnFor(name),
      log: (text) => this.options.log(text),
      retryDelaysMs: this.options.asyncRetryDelaysMs,
      // The data directory is locked: leases of a killed run are taken back at once.
      reclaimOnStart: true,
    });
    this.gateway = new Gateway(this.gatewayServices(), (target, event) => this.invokeTarget(target, event), {
      log: (target, text) => this.options.log(text, this.functions.get(target)?.spec),
      integrationTimeoutMs: this.options.integrationTimeoutMs,
    });
    this.control = new ControlServer({
      ready: () => this.ready,
      resolve: (name: string, qualifier?: string) => (this.resolveVersion(name, qualifier) ? { arn: this.arnFor(name) } : null),
      arnFor: (name: string) => this.arnFor(name),
      invoke: (name: string, payload: string, qualifier?: string) => this.invoke(name, qualifier, payload),
      // Accepted once in the store: a crash after the 202 loses nothing.
      invokeAsync: async (name: string, payload: string, qualifier?: string) => this.sources.enqueue(name, payload, qualifier),
      metrics: (name: string | undefined) => this.metrics(name, 0),
      routes: (req, res, body, path, query) => handleNimbusApi(this, req, res, body, path, query),
      auth: createAuthenticator({
        adminToken: this.credentials.adminToken,
        accessKeys: new Map([...this.credentials.accessKeys.map((k) => [k.accessKeyId, k.secretAccessKey] as const),
          [this.instanceKey.accessKeyId, this.instanceKey.secretAccessKey] as const]),
      }),
      messaging: messagingBackend(this.sources, this.region),
      messagingOnlyKeys: new Set([this.instanceKey.accessKeyId]),
      lambda: new LambdaManagementApi({
        store: this.store,
        region: this.region,
        accountId: ACCOUNT_ID,
        changed: (name) => this.changed(name),
      }),
    });
    // The control port first: instances are told where to send messages (AWS_ENDPOINT_URL_SQS / _SNS).
    this.controlPort = await this.control.listen(this.options.controlPort, this.options.controlHost ?? '127.0.0.1');
    for (const record of this.active.values()) {
      await this.warm(record);
      this.setSources(record);
    }
    this.sources.start();
    this.housekeeping();
    this.housekeeper = setInterval(() => this.housekeeping(), 60 * 60_000).unref();
    this.port = await this.gateway.listen(this.options.port, this.options.host ?? '127.0.0.1');
    this.ready = true;
  }

  /** The deployed services. */
  records(): ServiceRecord[] { return [...this.active.values()]; }

  /**
   * Stops taking requests, lets those in flight finish within the deadline,
   * stops every instance and closes the store.
   */
  async close(): Promise<void> {
    this.ready = false;
    if (this.housekeeper) clearInterval(this.housekeeper);
    const deadline = this.options.shutdownDeadlineMs ?? 10_000;
    await Promise.all([this.gateway?.close(deadline), this.control?.close(deadline)]);
    await this.sources?.stop(deadline);
    await this.functions.close();
    if (!this.options.limits) await this.functions.limits.close();
    try {
      this.store.close();
    } catch (e) {
      // A full disk, say: the records not yet written are lost, the events already stored are not.
      this.options.log(`closing the store: ${(e as Error).message}\n`);
    }
    this.release();
  }

  /** The server's region: in ARNs, and for functions created through the Lambda API. */
  get region(): string {
    return this.options.region ?? 'us-east-1';
  }

  arnFor(name: string): string {
    return lambdaFunctionArn(this.region, name);
  }

  // ── invocations ─────────────────────────────────────────────────────────

  /**
   * The version an invocation of `name` with `qualifier` runs: `$LATEST`
   * when none, the version itself, or the alias's version (with its
   * weighted routing). Undefined when the function, version or alias does not exist.
   * https://docs.aws.amazon.com/lambda/latest/dg/configuring-alias-routing.html
   */
  resolveVersion(name: string, qualifier?: string): string | undefined {
    const q = qualifier ?? '$LATEST';
    if (q === '$LATEST' || /^[0-9]+$/.test(q)) return this.store.getVersion(name, q) ? q : undefined;
    const key = `${name}:${q}`;
    let alias = this.aliases.get(key);
    if (alias === undefined) {
      alias = this.store.getAlias(name, q) ?? null;
      this.aliases.set(key, alias);
    }
    if (!alias) return undefined;
    let r = Math.random();
    for (const [version, weight] of Object.entries(alias.additionalVersionWeights)) {
      if (r < weight) return version;
      r -= weight;
    }
    return alias.functionVersion;
  }

  /** Runs one invocation of `name` at `qualifier`; resolves with the result and the version that ran. */
  async invoke(name: string, qualifier: string | undefined, payload: string, requestId?: string): Promise<InvocationResult & { executedVersion: string }> {
    const version = this.resolveVersion(name, qualifier);
    if (version === undefined) return { ...notFound(`${name}${qualifier ? `:${qualifier}` : ''}`), executedVersion: '' };
    const r = await this.invokeTarget(`${name}:${version}`, payload, qualifier ? `${this.arnFor(name)}:${qualifier}` : undefined, requestId);
    return { ...r, executedVersion: version };
  }

  /** Runs one invocation of `target` (`name:version`). The hot path: a hosted version is one Map lookup away. */
  private invokeTarget(target: string, event: string, arn?: string, requestId?: string): Promise<InvocationResult> {
    const d = this.functions.get(target);
    if (d) return d.invoke({ event, invokedFunctionArn: arn, requestId }).then((r) => this.record(d.spec, target, r));
    const at = target.lastIndexOf(':');
    const qualifier = target.slice(at + 1);
    if (qualifier !== '$LATEST' && !/^[0-9]+$/.test(qualifier)) {
      // A route to an alias: its version (weighted) for this request.
      const name = target.slice(0, at);
      const version = this.resolveVersion(name, qualifier);
      if (version === undefined) return Promise.resolve(notFound(target));
      return this.invokeTarget(`${name}:${version}`, event, arn ?? `${this.arnFor(name)}:${qualifier}`, requestId);
    }
    return this.hosted(target).then((fn) => {
      if (!fn) return notFound(target);
      const hosted = this.functions.get(target) ?? this.functions.ensure(fn);
      return hosted.invoke({ event, invokedFunctionArn: arn, requestId }).then((r) => this.record(hosted.spec, target, r));
    });
  }

  private record(spec: FunctionSpec, target: string, r: InvocationResult): InvocationResult {
    if (r.outcome !== 'rejected') {
      const version = target.slice(target.lastIndexOf(':') + 1);
      const record = invocationRecord(spec, version, r);
      this.store.recordInvocation(record, r.logs);
      this.prometheus.observe(record);
      const d = this.functions.get(target);
      if (d) this.prometheus.setInstances(spec.name, version, d.stats().instances);
    }
    return r;
  }

  /** The function version `name:version` as the host runs it: its stored config with its code folder. */
  private hosted(target: string): Promise<HostedFunction | undefined> {
    let p = this.resolved.get(target);
    if (!p) {
      p = this.load(target);
      this.resolved.set(target, p);
      p.then((fn) => { if (!fn) this.resolved.delete(target); }, () => this.resolved.delete(target));
    }
    return p;
  }

  private async load(target: string): Promise<HostedFunction | undefined> {
    const at = target.lastIndexOf(':');
    const [name, version] = [target.slice(0, at), target.slice(at + 1)];
    const v = this.store.getVersion(name, version);
    if (!v) return undefined;
    const codeDir = this.store.artifactDir(v.codeSha256);
    const { provisionedConcurrency, ...config } = v.config as FunctionConfig;
    // Provisioned concurrency applies to the version a deployment serves (its alias), not to every version.
    const provisioned = provisionedConcurrency && this.serving().has(target) ? { provisionedConcurrency } : {};
    const environment = { ...this.instanceEnvironment(), ...config.environment };
    const spec: FunctionSpec = { ...config, environment, ...provisioned, codeDir, ...(version === '$LATEST' ? {} : { version }) };
    const bundle = join(codeDir, '.nimbus', 'build', `${spec.key}.mjs`);
    // A package from `nimbus deploy` brings its TypeScript bundles; one from the Lambda API may bring sources.
    const modulePath = existsSync(bundle) ? bundle : await prepareModule(spec, join(this.options.dataDir, 'build', v.codeSha256));
    return { id: target, spec, version, modulePath };
  }

  /** Starts the dispatchers of a service's versions with provisioned concurrency, so their instances are warm. */
  private async warm(record: ServiceRecord): Promise<void> {
    for (const [key, name] of Object.entries(record.functions)) {
      const target = `${name}:${record.versions[key] ?? '$LATEST'}`;
      const fn = await this.hosted(target).catch(() => undefined);
      if (fn?.spec.provisionedConcurrency) this.functions.get(target) ?? this.functions.ensure(fn);
    }
  }

  /** Drops what is cached of `name`'s `$LATEST`: the next invocation reads it again. */
  changed(name: string): void {
    for (const key of [...this.aliases.keys()]) if (key.startsWith(`${name}:`)) this.aliases.delete(key);
    this.resolved.delete(`${name}:$LATEST`);
    this.functions.retire(`${name}:$LATEST`);
    for (const id of this.functions.ids()) {
      if (id.startsWith(`${name}:`) && !this.store.getVersion(name, id.slice(name.length + 1))) {
        this.resolved.delete(id);
        this.functions.retire(id);
      }
    }
  }

  // ── deploys ─────────────────────────────────────────────────────────────

  hasArtifact(sha256: string): boolean {
    return this.store.hasArtifact(sha256);
  }

  putArtifact(zip: Buffer): { sha256: string; size: number } {
    try {
      const stored = this.store.putArtifact(zip);
      this.store.artifactDir(stored.sha256);
      return stored;
    } catch (e) {
      throw new NimbusError('NIMBUS_ERR_DEPLOY_INVALID', { service: '(upload)', reason: `the package is not a valid zip: ${(e as Error).message}` });
    }
  }

  deploy(manifest: DeployManifest): Promise<DeployResult> {
    return this.serially(() => this.deployNow(manifest));
  }

  private async deployNow(m: DeployManifest): Promise<DeployResult> {
    const invalid = (reason: string) => new NimbusError('NIMBUS_ERR_DEPLOY_INVALID', { service: m.service, reason });
    if (!this.store.hasArtifact(m.codeSha256)) throw invalid(`code package ${m.codeSha256} was not uploaded`);
    const previous = this.active.get(serviceKey(m.service, m.stage));
    if (m.only && !previous) throw new NimbusError('NIMBUS_ERR_SERVICE_NOT_FOUND', { service: m.service, stage: m.stage });
    const codeDir = this.putArtifactDir(m.codeSha256);
    const keys = new Set(m.functions.map((f) => f.key));
    for (const k of m.only ?? []) if (!keys.has(k)) throw invalid(`function ${k} is not in the service (functions: ${[...keys].join(', ') || 'none'})`);
    const routes = m.only ? previous!.routes : m.routes.map((r) => checkRoute(r, keys, invalid));
    checkGatewaySettings(m, invalid);
    this.checkConflicts(m.service, m.stage, routes);
    // A function name belongs to one service (as a CloudFormation stack owns its functions).
    const seen = new Set<string>();
    for (const f of m.functions) {
      if (seen.has(f.name)) throw invalid(`two functions are named ${f.name}`);
      seen.add(f.name);
      const owner = this.records().find((r) => !(r.name === m.service && r.stage === m.stage) && Object.values(r.functions).includes(f.name));
      const stored = this.store.getVersion(f.name, '$LATEST');
      if (owner || (stored && !(stored.config.service === m.service && stored.config.stage === m.stage))) {
        throw new NimbusError('NIMBUS_ERR_DEPLOY_CONFLICT', {
          service: m.service, route: `(function name ${f.name})`,
          other: owner ? `${owner.name} (stage ${owner.stage})` : stored!.config.service ? `${stored!.config.service} (stage ${stored!.config.stage})` : 'a function created with the Lambda API',
        });
      }
    }

    // Every function must be runnable from the package before anything changes.
    const configs = new Map<string, FunctionConfig>();
    for (const f of m.functions) {
      const config = checkConfig(f, m, invalid);
      const spec: FunctionSpec = { ...config, codeDir };
      const bundle = join(codeDir, '.nimbus', 'build', `${spec.key}.mjs`);
      const modulePath = existsSync(bundle) ? bundle : await prepareModule(spec, join(this.options.dataDir, 'build', m.codeSha256));
      try {
        launchFor(spec, this.functions.runtimes, modulePath, 'check', this.functions.isolation);
      } catch (e) {
        throw invalid(`function ${f.key}: ${(e as Error).message}`);
      }
      const missing = handlerMissing(spec, modulePath);
      if (missing) throw invalid(`function ${f.key}: ${missing}`);
      configs.set(f.key, config);
    }

    // Publish: a new version per changed function ($LATEST follows), the same version when nothing changed.
    const codeSize = this.store.artifactSize(m.codeSha256) ?? 0;
    const versions: Record<string, string> = { ...(m.only ? previous!.versions : {}) };
    const names: Record<string, string> = { ...(m.only ? previous!.functions : {}) };
    for (const [key, config] of configs) {
      if (m.only && !m.only.includes(key)) continue;
      const latest = this.store.getVersion(config.name, '$LATEST');
      if (!latest || latest.codeSha256 !== m.codeSha256 || JSON.stringify(latest.config) !== JSON.stringify(config)) {
        this.store.putLatest(config, m.codeSha256, codeSize, `deployed by nimbus deploy: ${m.service} ${m.stage}`);
        this.changed(config.name);
      }
      versions[key] = this.store.publishVersion(config.name).version;
      names[key] = config.name;
    }
    const unchanged = previous !== undefined && sameVersions(previous.versions, versions) && sameVersions(previous.functions, names)
      && JSON.stringify(previous.routes) === JSON.stringify(routes)
      && (m.only !== undefined || JSON.stringify(sourcesOf(previous.gateway)) === JSON.stringify(sourcesOf({ schedules: m.schedules ?? [], queues: m.queues ?? [], queueEvents: m.queueEvents ?? [], topics: m.topics ?? [], topicEvents: m.topicEvents ?? [] })));
    if (unchanged) return this.result(previous, false);

    const record = this.store.putService({
      name: m.service, stage: m.stage, routes, functions: names, versions,
      // The record's free-form settings: the gateway's, and the event sources'.
      gateway: {
        region: m.region, binaryMediaTypes: m.binaryMediaTypes, ...(m.httpApiCors ? { httpApiCors: m.httpApiCors } : {}),
        ...(m.only ? sourcesOf(previous!.gateway) : {
          schedules: m.schedules ?? [], queues: m.queues ?? [], queueEvents: m.queueEvents ?? [], topics: m.topics ?? [], topicEvents: m.topicEvents ?? [],
        }),
      },
    });
    // Functions the service no longer has stop serving; their versions stay (a rollback brings them back)
    // until the service is removed.
    if (previous && !m.only) {
      for (const [key, name] of Object.entries(previous.functions)) if (!(key in names)) this.retireFunction(name);
    }
    await this.activate(record, previous);
    return this.result(record, true);
  }

  /** Switches a service's routes to `record`'s versions; the previous versions' instances finish and retire. */
  private async activate(record: ServiceRecord, previous: ServiceRecord | undefined): Promise<void> {
    this.active.set(serviceKey(record.name, record.stage), record);
    for (const [key, name] of Object.entries(record.functions)) {
      const target = `${name}:${record.versions[key]}`;
      const config = this.store.getVersion(name, record.versions[key])?.config;
      // A version hosted before it served (an API invoke) was loaded without its provisioned concurrency.
      if ((this.functions.get(target)?.spec.provisionedConcurrency ?? 0) !== (config?.provisionedConcurrency ?? 0)) this.resolved.delete(target);
      const fn = await this.hosted(target);
      if (fn && this.functions.get(target)) this.functions.ensure(fn);
      // The routes' alias follows the deployment (Serverless Framework's `provisioned` alias does the same).
      const alias = config ? aliasOf(config) : undefined;
      if (alias) {
        const current = this.store.getAlias(name, alias);
        if (current?.functionVersion !== record.versions[key] || Object.keys(current.additionalVersionWeights).length) {
          this.store.putAlias({ functionName: name, name: alias, functionVersion: record.versions[key], additionalVersionWeights: {}, description: `serves ${record.name} (stage ${record.stage})` });
        }
        this.aliases.delete(`${name}:${alias}`);
      }
    }
    this.gateway.reload(this.gatewayServices());
    await this.warm(record);
    this.setSources(record);
    if (!previous) return;
    const serving = this.serving();
    for (const [key, name] of Object.entries(previous.functions)) {
      const old = `${name}:${previous.versions[key]}`;
      if (!serving.has(old)) this.functions.retire(old);
    }
  }

  /** `name:version` of every version an active deployment serves. */
  private serving(): Set<string> {
    return new Set(this.records().flatMap((s) => Object.entries(s.functions).map(([k, n]) => `${n}:${s.versions[k]}`)));
  }

  async remove(name: string, stage: string): Promise<void> {
    await this.serially(async () => {
      const record = this.active.get(serviceKey(name, stage));
      if (!record) throw new NimbusError('NIMBUS_ERR_SERVICE_NOT_FOUND', { service: name, stage });
      this.active.delete(serviceKey(name, stage));
      this.gateway.reload(this.gatewayServices());
      this.sources.setSchedules(serviceKey(name, stage), []);
      this.sources.setMessaging(serviceKey(name, stage), undefined);
      // Every function any deployment of the service had (one dropped by a later deploy included).
      const all = new Set(this.store.listDeployments(name, stage).flatMap((d) => Object.values(d.functions)));
      for (const fn of Object.values(record.functions)) all.add(fn);
      this.store.deleteService(name, stage);
      for (const fn of all) this.deleteFunction(fn);
    });
  }

  rollback(name: string, stage: string, deployment?: number): Promise<DeployResult> {
    return this.serially(async () => {
      const current = this.active.get(serviceKey(name, stage));
      if (!current) throw new NimbusError('NIMBUS_ERR_SERVICE_NOT_FOUND', { service: name, stage });
      const history = this.store.listDeployments(name, stage);
      const invalid = (reason: string) => new NimbusError('NIMBUS_ERR_ROLLBACK_INVALID', { service: name, reason });
      const target = deployment !== undefined
        ? history.find((d) => d.deployment === deployment)
        : [...history].reverse().find((d) => d.deployment < current.deployment && !sameVersions(d.versions, current.versions));
      if (!target) {
        throw invalid(deployment !== undefined
          ? `there is no deployment ${deployment} (deployments: ${history.map((d) => d.deployment).join(', ')})`
          : 'there is no earlier deployment with other versions');
      }
      if (target.deployment === current.deployment) throw invalid(`deployment ${deployment} is the one serving now`);
      for (const [key, fn] of Object.entries(target.functions)) {
        const v = this.store.getVersion(fn, target.versions[key]);
        if (!v) throw invalid(`version ${target.versions[key]} of ${fn} was deleted`);
      }
      // $LATEST follows what serves, as after a Serverless Framework rollback of the stack.
      for (const [key, fn] of Object.entries(target.functions)) {
        const v = this.store.getVersion(fn, target.versions[key])!;
        this.store.putLatest(v.config, v.codeSha256, v.codeSize, v.description);
        this.changed(fn);
      }
      for (const [key, fn] of Object.entries(current.functions)) if (!(key in target.functions)) this.retireFunction(fn);
      const record = this.store.putService({
        name, stage, routes: target.routes, functions: target.functions, versions: target.versions, gateway: target.gateway,
      });
      await this.activate(record, current);
      return this.result(record, true);
    });
  }

  private deleteFunction(name: string): void {
    this.store.deleteFunction(name);
    this.retireFunction(name);
  }

  /** Stops serving every version of `name` (running invocations finish); the store keeps them. */
  private retireFunction(name: string): void {
    for (const id of this.functions.ids()) if (id.startsWith(`${name}:`)) this.functions.retire(id);
    for (const id of [...this.resolved.keys()]) if (id.startsWith(`${name}:`)) this.resolved.delete(id);
  }

  // ── reading ─────────────────────────────────────────────────────────────

  services(): ServiceInfo[] {
    return this.records().map((r) => this.info(r));
  }

  service(name: string, stage: string): ServiceInfo {
    const r = this.active.get(serviceKey(name, stage));
    if (!r) throw new NimbusError('NIMBUS_ERR_SERVICE_NOT_FOUND', { service: name, stage });
    return this.info(r);
  }

  logs(functionName: string, sinceMs: number, limit: number): Array<{ timeMs: number; requestId: string; text: string }> {
    if (!this.store.getVersion(functionName, '$LATEST')) {
      throw new NimbusError('NIMBUS_ERR_INVOKE_FUNCTION_NOT_FOUND', { function: `${functionName} (nimbus info lists the functions)` });
    }
    return this.store.logs(functionName, sinceMs, limit).map((l) => ({ timeMs: l.timeMs, requestId: l.requestId, text: l.text }));
  }

  /** Metrics and cost of one function (or all) from the stored records since `sinceMs`; null for an unknown function. */
  metrics(functionName: string | undefined, sinceMs: number): unknown {
    if (functionName !== undefined && !this.store.getVersion(functionName, '$LATEST')) {
      throw new NimbusError('NIMBUS_ERR_INVOKE_FUNCTION_NOT_FOUND', { function: `${functionName} (nimbus info lists the functions)` });
    }
    const records = this.store.invocations(functionName, sinceMs);
    const windowMs = { from: sinceMs > 0 ? sinceMs : (records[0]?.startMs ?? Date.now()), to: Date.now() };
    const prices = this.options.prices;
    if (functionName === undefined) return summarise(records, { windowMs, prices });
    let peak = 0;
    let min = 0;
    for (const id of this.functions.ids()) {
      if (!id.startsWith(`${functionName}:`)) continue;
      const d = this.functions.get(id)!;
      peak = Math.max(peak, d.stats().peakInstances);
      min = Math.max(min, d.spec.provisionedConcurrency ?? 0);
    }
    return { function: functionName, ...summarise(records, { windowMs, prices, ...(peak > 0 ? { instances: { peak, min } } : {}) }) };
  }

  /**
   * What every instance of the server gets besides its function's own
   * environment: the SQS and SNS endpoints (the AWS SDKs read
   * AWS_ENDPOINT_URL_<SERVICE>) and the key to sign with, so code written for
   * AWS sends to Nimbus's queues and topics unchanged.
   */
  private instanceEnvironment(): Record<string, string> {
    const host = this.options.controlHost ?? '127.0.0.1';
    const endpoint = `http://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${this.controlPort}`;
    return {
      AWS_ENDPOINT_URL_SQS: endpoint, AWS_ENDPOINT_URL_SNS: endpoint,
      AWS_ACCESS_KEY_ID: this.instanceKey.accessKeyId, AWS_SECRET_ACCESS_KEY: this.instanceKey.secretAccessKey,
    };
  }

  /** A service's schedules, queues and topics, aimed at the version (or alias) its routes serve. */
  private setSources(record: ServiceRecord): void {
    this.setSchedules(record);
    const target = (key: string) => {
      const name = record.functions[key];
      if (!name) return undefined;
      const version = record.versions[key];
      const config = this.store.getVersion(name, version)?.config;
      return { functionName: name, qualifier: (config && aliasOf(config)) ?? version };
    };
    const g = record.gateway as { queues?: QueueSpec[]; queueEvents?: QueueEventSpec[]; topics?: TopicSpec[]; topicEvents?: TopicEventSpec[] };
    try {
      this.sources.setMessaging(serviceKey(record.name, record.stage), messagingOf(g, target));
    } catch (e) {
      this.options.log(`queues and topics of ${record.name} (${record.stage}) not set: ${(e as Error).message}\n`);
    }
  }

  /** The schedule rules of a service, aimed at the version (or alias) its routes serve. */
  private setSchedules(record: ServiceRecord): void {
    const specs = (record.gateway.schedules as ScheduleSpec[] | undefined) ?? [];
    const targets: ScheduleTarget[] = [];
    for (const spec of specs) {
      const name = record.functions[spec.functionKey];
      if (!name) continue;
      const version = record.versions[spec.functionKey];
      const config = this.store.getVersion(name, version)?.config;
      targets.push({ spec, service: record.name, stage: record.stage, functionName: name, qualifier: (config && aliasOf(config)) ?? version });
    }
    try {
      this.sources.setSchedules(serviceKey(record.name, record.stage), targets);
    } catch (e) {
      this.options.log(`schedules of ${record.name} (${record.stage}) not set: ${(e as Error).message}\n`);
    }
  }

  runSchedules(functionName: string): Promise<string[]> { return this.events().runSchedules(functionName); }
  schedules(): unknown[] { return this.events().schedules(); }
  deadLetters(functionName: string | undefined): unknown[] { return this.events().deadLetters(functionName); }
  redrive(id: number): boolean { return this.events().redrive(id); }
  sendMessage(...a: Parameters<NimbusApiBackend['sendMessage']>): { messageId: string } { return this.events().sendMessage(...a); }
  publish(...a: Parameters<NimbusApiBackend['publish']>): { messageId: string } { return this.events().publish(...a); }
  queueStats(): unknown[] { return this.events().queueStats(); }
  receiveMessages(queue: string, max: number, remove: boolean): unknown[] { return this.events().receiveMessages(queue, max, remove); }
  topicStats(): unknown[] { return this.events().topicStats(); }

  private eventsApiOnce: ReturnType<typeof eventsApi> | undefined;
  private events(): ReturnType<typeof eventsApi> {
    return (this.eventsApiOnce ??= eventsApi(this.sources, (name) => name));
  }

  async prometheusText(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.prometheus.contentType, text: await this.prometheus.text() };
  }

  private info(r: ServiceRecord): ServiceInfo {
    return {
      service: r.name, stage: r.stage, deployment: r.deployment, deployedAt: r.deployedAt,
      endpoints: this.endpoints(r),
      functions: Object.entries(r.functions).map(([key, name]) => {
        const v = this.store.getVersion(name, r.versions[key]);
        return {
          key, name, version: r.versions[key], runtime: v?.config.runtime ?? '', memorySize: v?.config.memorySize ?? 0, timeout: v?.config.timeout ?? 0,
          versions: this.store.listVersions(name).map((x) => x.version),
          aliases: this.store.listAliases(name).map((a) => ({ name: a.name, functionVersion: a.functionVersion, additionalVersionWeights: a.additionalVersionWeights })),
        };
      }),
      deployments: this.store.listDeployments(r.name, r.stage).map((d) => ({ deployment: d.deployment, deployedAt: d.deployedAt, versions: d.versions })),
    };
  }

  private result(r: ServiceRecord, changed: boolean): DeployResult {
    const functions: Record<string, { name: string; version: string }> = {};
    for (const [key, name] of Object.entries(r.functions)) functions[key] = { name, version: r.versions[key] };
    return { service: r.name, stage: r.stage, deployment: r.deployment, functions, endpoints: this.endpoints(r), changed };
  }

  private endpoints(r: ServiceRecord): string[] {
    const host = this.options.host ?? '127.0.0.1';
    const base = `http://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${this.port}`;
    return r.routes.map((route) => {
      const path = route.api === 'REST' ? `/${r.stage}${route.path === '/' ? '' : route.path}` : route.path === '$default' ? '/*' : route.path;
      return `${route.method} ${base}${path}`;
    });
  }

  /** The gateway's view: each service's routes aimed at `name:version`. */
  private gatewayServices(): GatewayService[] {
    return this.records().map((r) => ({
      stage: r.stage,
      routes: r.routes.map((route) => {
        const name = r.functions[route.functionKey];
        const version = r.versions[route.functionKey];
        const config = this.store.getVersion(name, version)?.config;
        const alias = config ? aliasOf(config) : undefined;
        return { ...route, functionKey: `${name}:${alias ?? version}` };
      }),
      httpApiCors: r.gateway.httpApiCors as GatewayService['httpApiCors'],
      binaryMediaTypes: (r.gateway.binaryMediaTypes as string[] | undefined) ?? [],
    }));
  }

  /** Refuses routes another service already serves (same API, method and path; same stage for REST). */
  private checkConflicts(service: string, stage: string, routes: readonly RouteSpec[]): void {
    for (const other of this.records()) {
      if (other.name === service && other.stage === stage) continue;
      for (const a of routes) {
        for (const b of other.routes) {
          if (a.api !== b.api) continue;
          // Same path but for parameter names, or a greedy route ({proxy+}, $default) over the other's paths.
          const [sa, sb] = [routeShape(a.path), routeShape(b.path)];
          const greedy = (x: string, y: string) => x === '$default' || (/\{[^}]+\+\}$/.test(x) && (y + '/').startsWith(x.replace(/\{[^}]+\+\}$/, '')));
          if (sa !== sb && !greedy(a.path, b.path) && !greedy(b.path, a.path)) continue;
          if (a.api === 'REST' && stage !== other.stage) continue;
          if (a.method !== b.method && a.method !== 'ANY' && b.method !== 'ANY') continue;
          const route = a.api === 'REST' ? `${a.method} /${stage}${a.path}` : `${a.method} ${a.path}`;
          throw new NimbusError('NIMBUS_ERR_DEPLOY_CONFLICT', { service, route, other: `${other.name} (stage ${other.stage})` });
        }
      }
    }
  }

  private putArtifactDir(sha256: string): string {
    try {
      return this.store.artifactDir(sha256);
    } catch (e) {
      throw new NimbusError('NIMBUS_ERR_DEPLOY_INVALID', { service: '(package)', reason: `cannot extract code package ${sha256}: ${(e as Error).message}` });
    }
  }

  private serially<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.changes.then(fn, fn);
    this.changes = run.catch(() => undefined);
    return run;
  }
}

/** The alias a function's routes invoke: its `alias:`, else `provisioned` when it has provisioned concurrency. */
function aliasOf(config: FunctionConfig): string | undefined {
  return config.alias ?? (config.provisionedConcurrency ? 'provisioned' : undefined);
}

/**
 * Lets the sandbox's unprivileged uid (65534) reach the extracted code, so
 * instances can drop to it: the data directory becomes traversable (0711, not
 * listable), `code/` readable (0755; each package in it is read-only). The
 * database, the uploaded zips and the credentials stay the owner's only.
 */
function openCodeToSandbox(dataDir: string): void {
  try {
    chmodSync(dataDir, 0o711);
    chmodSync(join(dataDir, 'code'), 0o755);
    for (const f of ['nimbus.db', 'nimbus.db-wal', 'nimbus.db-shm']) if (existsSync(join(dataDir, f))) chmodSync(join(dataDir, f), 0o600);
  } catch {
    // Not ours to change (another owner): instances then run as the server's uid, as the start-up log says.
  }
}

/** The event sources kept in a service record's settings. */
function sourcesOf(settings: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return {
    schedules: settings.schedules ?? [], queues: settings.queues ?? [], queueEvents: settings.queueEvents ?? [],
    topics: settings.topics ?? [], topicEvents: settings.topicEvents ?? [],
  };
}

function serviceKey(name: string, stage: string): string {
  return `${name}\u0000${stage}`;
}

function sameVersions(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

function notFound(what: string): InvocationResult {
  return {
    requestId: '', outcome: 'rejected', durationMs: 0, billedDurationMs: 0, logs: '',
    payload: JSON.stringify({ errorType: 'ResourceNotFoundException', errorMessage: `Function not found: ${what}` }),
  };
}

function checkRoute(r: RouteSpec, keys: ReadonlySet<string>, invalid: (reason: string) => Error): RouteSpec {
  if (r === null || typeof r !== 'object' || (r.api !== 'REST' && r.api !== 'HTTP') || typeof r.path !== 'string' || typeof r.method !== 'string') {
    throw invalid(`a route is malformed: ${JSON.stringify(r)}`);
  }
  if (!keys.has(r.functionKey)) throw invalid(`route ${r.method} ${r.path} targets function ${r.functionKey}, which the service does not have`);
  if (!METHODS.has(r.method)) throw invalid(`route ${r.method} ${r.path}: the method must be one of ${[...METHODS].join(', ')}`);
  if (!(r.path === '$default' && r.api === 'HTTP') && !/^\/[^\s?#]*$/.test(r.path)) throw invalid(`route ${r.method} ${r.path}: a path starts with / (or is $default, HTTP API only)`);
  if (r.payloadFormatVersion !== '1.0' && r.payloadFormatVersion !== '2.0') throw invalid(`route ${r.method} ${r.path}: payloadFormatVersion must be 1.0 or 2.0`);
  return r;
}

/** Function keys as serverless.yml allows them, minus names that are special to JavaScript objects. */
const FUNCTION_KEY = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;
const SPECIAL_KEYS = new Set(['__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString', 'valueOf']);
const ENV_NAME = /^[a-zA-Z][a-zA-Z0-9_]*$/;
const METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'ANY']);

/**
 * The configuration of a deployed function, checked as the serverless.yml
 * loader and CreateFunction check it (a manifest may come from any client).
 */
function checkConfig(f: Readonly<Record<string, unknown>>, m: DeployManifest, invalid: (reason: string) => Error): FunctionConfig {
  const c = f as unknown as FunctionConfig;
  const fn = `function ${JSON.stringify(c.key)}`;
  if (typeof c.key !== 'string' || !FUNCTION_KEY.test(c.key) || SPECIAL_KEYS.has(c.key)) throw invalid(`${fn}: a function key is letters, digits, - and _ (and not a JavaScript special name)`);
  if (typeof c.name !== 'string' || !LAMBDA_FUNCTION_NAME.test(c.name)) throw invalid(`${fn}: name ${JSON.stringify(c.name)} is not a Lambda function name (1 to 64 letters, digits, - and _)`);
  if (typeof c.handler !== 'string' || c.handler === '' || c.handler.startsWith('/') || c.handler.split(/[/\\]/).includes('..')) {
    throw invalid(`${fn}: handler ${JSON.stringify(c.handler)} must be a path inside the package (file.export)`);
  }
  const language = typeof c.runtime === 'string' ? (/^nodejs\d+\.x$/.test(c.runtime) ? 'node' : /^python3\.\d+$/.test(c.runtime) ? 'python' : undefined) : undefined;
  if (!language || c.language !== language) throw invalid(`${fn}: runtime ${String(c.runtime)} is not one Nimbus runs (nodejsNN.x, python3.NN)`);
  if (typeof c.memorySize !== 'number' || !Number.isInteger(c.memorySize) || c.memorySize < 128 || c.memorySize > 10240) throw invalid(`${fn}: memorySize must be a whole number of MB from 128 to 10240`);
  if (typeof c.timeout !== 'number' || !(c.timeout >= 0.1) || c.timeout > 900) throw invalid(`${fn}: timeout must be 1–900 s`);
  for (const key of ['reservedConcurrency', 'provisionedConcurrency'] as const) {
    const v = c[key];
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 1000)) throw invalid(`${fn}: ${key} must be a whole number from 0 to 1000`);
  }
  if ((c.provisionedConcurrency ?? 0) > (c.reservedConcurrency ?? Infinity)) throw invalid(`${fn}: provisionedConcurrency is above reservedConcurrency`);
  const perInstance = c.perExecutionEnvironmentMaxConcurrency;
  if (perInstance !== undefined && (typeof perInstance !== 'number' || !Number.isInteger(perInstance) || perInstance < 1 || perInstance > MAX_INVOCATIONS_PER_INSTANCE || (perInstance > 1 && language !== 'node'))) {
    throw invalid(`${fn}: perExecutionEnvironmentMaxConcurrency must be a whole number from 1 to ${MAX_INVOCATIONS_PER_INSTANCE}, above 1 for Node.js functions only`);
  }
  const env = c.environment ?? {};
  if (typeof env !== 'object' || env === null || Array.isArray(env)) throw invalid(`${fn}: environment must be a mapping of names to strings`);
  for (const [k, v] of Object.entries(env)) {
    if (!ENV_NAME.test(k)) throw invalid(`${fn}: environment variable ${JSON.stringify(k)} is not a valid name`);
    if (RESERVED_ENVIRONMENT.has(k)) throw invalid(`${fn}: environment variable ${k} is set by the Lambda runtime and cannot be set`);
    if (typeof v !== 'string') throw invalid(`${fn}: environment variable ${k} must be a string`);
  }
  if (c.alias !== undefined && (typeof c.alias !== 'string' || !LAMBDA_ALIAS_NAME.test(c.alias))) throw invalid(`${fn}: alias ${JSON.stringify(c.alias)} is not a Lambda alias name`);
  const { codeDir: _ignored, ...rest } = f as Record<string, unknown>;
  return { ...(rest as unknown as FunctionConfig), service: m.service, stage: m.stage, region: m.region, environment: env };
}

/** Checks the gateway settings of a manifest (a bad CORS setting must not reach the gateway). */
function checkGatewaySettings(m: DeployManifest, invalid: (reason: string) => Error): void {
  if (!Array.isArray(m.binaryMediaTypes) || m.binaryMediaTypes.some((t) => typeof t !== 'string')) throw invalid('binaryMediaTypes must be a list of media types');
  const c = m.httpApiCors as unknown;
  if (c === undefined) return;
  const list = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'string');
  const cors = c as Record<string, unknown>;
  if (typeof c !== 'object' || c === null || !list(cors.allowOrigins) || !list(cors.allowMethods) || !list(cors.allowHeaders) || !list(cors.exposeHeaders)
    || typeof cors.allowCredentials !== 'boolean' || (cors.maxAge !== undefined && typeof cors.maxAge !== 'number')) {
    throw invalid('httpApiCors must be { allowOrigins, allowMethods, allowHeaders, exposeHeaders: lists of strings, allowCredentials: boolean, maxAge?: seconds }');
  }
}

/** A route's path with parameter names dropped, so `/users/{id}` and `/users/{userId}` compare equal. */
function routeShape(path: string): string {
  return path.replace(/\{[^}+]+\}/g, '{}');
}

/** Why the handler's file is not in the package, or null when it is (the config part's own lookup). */
function handlerMissing(spec: FunctionSpec, modulePath: string | undefined): string | null {
  if (modulePath) return null;
  const parts = splitHandler(spec.handler, spec.language);
  if (!parts) return `handler ${spec.handler} is not file.export (Node) or module.function (Python)`;
  const tries = handlerCandidates(parts, spec.language);
  return findHandlerFile(spec.codeDir, tries) ? null : `handler ${spec.handler}: none of ${tries.join(', ')} is in the package (check package.patterns)`;
}
