/**
 * How CLI commands reach `nimbus server`'s control API: the endpoint
 * (`--endpoint`, `NIMBUS_ENDPOINT`, default `http://127.0.0.1:3001`) and the
 * admin token (`--token`, `NIMBUS_TOKEN`, else `<data dir>/admin-token` when
 * the command runs on the server's host).
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { NimbusError } from '../core/index.js';

/** The control API's default address. */
export const DEFAULT_ENDPOINT = 'http://127.0.0.1:3001';

/** The data directory of `nimbus server`: `--data-dir`, else `NIMBUS_DATA_DIR`, else `~/.nimbus`. */
export function dataDirOf(flag: string | undefined, env: Readonly<Record<string, string | undefined>>): string {
  return resolve(flag ?? env.NIMBUS_DATA_DIR ?? join(env.HOME ?? homedir(), '.nimbus'));
}

/** Options every remote command takes. */
export interface RemoteOptions {
  endpoint?: string;
  token?: string;
  dataDir?: string;
  json?: boolean;
}

/** Adds `--endpoint`, `--token`, `--data-dir` and `--json` to a command. */
export function remoteOptions(cmd: Command): Command {
  return cmd
    .option('--endpoint <url>', `control API of the server (default: NIMBUS_ENDPOINT or ${DEFAULT_ENDPOINT})`)
    .option('--token <token>', 'admin token (default: NIMBUS_TOKEN, or the data directory\'s admin-token)')
    .option('--data-dir <dir>', 'data directory to read the admin token from (default: NIMBUS_DATA_DIR or ~/.nimbus)')
    .option('--json', 'print the result as JSON');
}

/** A connection to the control API. */
export class ControlClient {
  private constructor(readonly endpoint: string, private readonly token: string, private readonly missing = '') {}

  /**
   * Finds the endpoint and token (none when it is not given and cannot be read: `nimbus dev` needs none).
   */
  static from(opts: RemoteOptions, env: Readonly<Record<string, string | undefined>>): ControlClient {
    const endpoint = (opts.endpoint ?? env.NIMBUS_ENDPOINT ?? DEFAULT_ENDPOINT).replace(/\/+$/, '');
    if (!/^https?:\/\/[^/\s]+$/.test(endpoint)) {
      throw new NimbusError('NIMBUS_ERR_CLI_USAGE', { reason: `--endpoint ${JSON.stringify(endpoint)} is not a URL: give the scheme, host and port, e.g. http://127.0.0.1:3001` });
    }
    let token = opts.token ?? env.NIMBUS_TOKEN;
    let missing = '';
    if (!token) {
      const file = join(dataDirOf(opts.dataDir, env), 'admin-token');
      try {
        token = readFileSync(file, 'utf8').trim();
      } catch (e) {
        // `nimbus dev` needs none; a server answers 401, and the error then says where the token was looked for.
        missing = `no --token or NIMBUS_TOKEN, and ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
      }
    }
    return new ControlClient(endpoint, token ?? '', missing);
  }

  /**
   * One synchronous invocation through Lambda's Invoke API, with the log tail.
   * @throws NimbusError as `call` does (e.g. NIMBUS_ERR_CLI_API for a function that does not exist).
   */
  async invoke(name: string, event: string, query = ''): Promise<{ payload: string; logs: string; functionError?: string; version: string }> {
    const res = await this.fetch('the invocation', 'POST', `/2015-03-31/functions/${encodeURIComponent(name)}/invocations${query}`, Buffer.from(event),
      'application/json', { 'x-amz-log-type': 'Tail' });
    const payload = await res.text();
    if (res.status !== 200) return this.fail('the invocation', res, payload);
    return {
      payload,
      logs: Buffer.from(res.headers.get('x-amz-log-result') ?? '', 'base64').toString('utf8'),
      functionError: res.headers.get('x-amz-function-error') ?? undefined,
      version: res.headers.get('x-amz-executed-version') ?? '$LATEST',
    };
  }

  /** True when the server has the code package `sha256`. */
  async hasArtifact(sha256: string): Promise<boolean> {
    const res = await this.fetch('the deploy', 'HEAD', `/_/artifacts/${sha256}`);
    return res.status === 200;
  }

  /**
   * Sends a request and returns the JSON answer.
   * @throws NimbusError NIMBUS_ERR_CLI_UNREACHABLE, NIMBUS_ERR_CLI_NO_TOKEN (401/403), NIMBUS_ERR_CLI_API (any other error answer).
   */
  async call<T>(action: string, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
    const res = await this.fetch(action, method, path, body, contentType);
    const text = await res.text();
    if (res.ok) {
      try { return (text ? JSON.parse(text) : null) as T; } catch { return text as T; }
    }
    return this.fail(action, res, text);
  }

  private fail(action: string, res: Response, text: string): never {
    let value: unknown = text;
    try { value = text ? JSON.parse(text) : null; } catch { /* not JSON: keep the text */ }
    const doc = (value && typeof value === 'object' ? value : {}) as { Message?: string; message?: string; hint?: string };
    const type = res.headers.get('x-amzn-errortype') ?? `HTTP ${res.status}`;
    const reason = doc.Message ?? doc.message ?? (typeof value === 'string' && value ? value : res.statusText);
    if (res.status === 401 || res.status === 403) {
      const why = this.missing || `the server refused the token (${type}: ${reason})`;
      throw new NimbusError('NIMBUS_ERR_CLI_NO_TOKEN', { endpoint: this.endpoint, reason: why });
    }
    throw new NimbusError('NIMBUS_ERR_CLI_API', { action, type, reason });
  }

  private async fetch(action: string, method: string, path: string, body?: unknown, contentType = 'application/json', extra: Record<string, string> = {}): Promise<Response> {
    const headers: Record<string, string> = { ...(this.token ? { authorization: `Bearer ${this.token}` } : {}), ...extra };
    let payload: Uint8Array | string | undefined;
    if (body !== undefined) {
      headers['content-type'] = contentType;
      payload = Buffer.isBuffer(body) ? new Uint8Array(body.buffer, body.byteOffset, body.length) : JSON.stringify(body);
    }
    try {
      return await fetch(`${this.endpoint}${path}`, { method, headers, body: payload, signal: AbortSignal.timeout(15 * 60_000) });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new NimbusError('NIMBUS_ERR_CLI_UNREACHABLE', { endpoint: this.endpoint, reason: `${action}: ${cause?.code ?? cause?.message ?? (e as Error).message}` });
    }
  }
}
