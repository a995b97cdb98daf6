// Helpers for tests that run the real `bin/nimbus` as a user would.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (dist/test/ → ../../). */
export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const nimbusBin = join(repoRoot, 'bin', 'nimbus');

/** A port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** Runs `nimbus ARGS` to completion (bounded), returning its exit code and output. */
export function runNimbus(args: string[], opts: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [nimbusBin, ...args], {
      cwd: opts.cwd ?? repoRoot, env: { ...process.env, NO_COLOR: '1', ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

/** A `nimbus dev` started for a test; `stop()` sends SIGTERM and waits for the exit. */
export interface DevProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly controlPort: number;
  output(): string;
  /** Waits until the output contains `text` (bounded). */
  waitFor(text: string | RegExp, timeoutMs?: number): Promise<void>;
  stop(): Promise<number | null>;
}

/** Starts `nimbus dev --config CONFIG` on free ports and waits for /_/health (bounded). */
export async function startDev(config: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<DevProcess> {
  return startNimbus(['dev', '--config', config], extra, env);
}

/** Starts `nimbus server --data-dir DIR` on free ports (or the given ones) and waits for /_/health (bounded). */
export async function startServer(dataDir: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}, ports?: { port: number; controlPort: number }): Promise<DevProcess> {
  // Where bubblewrap cannot sandbox (a container), the tests still run, unsandboxed.
  return startNimbus(['server', '--data-dir', dataDir, '--allow-unsandboxed'], extra, env, ports);
}

async function startNimbus(command: string[], extra: string[], env: NodeJS.ProcessEnv, ports?: { port: number; controlPort: number }): Promise<DevProcess> {
  const port = ports?.port ?? await freePort();
  const controlPort = ports?.controlPort ?? await freePort();
  const child = spawn(process.execPath, [nimbusBin, ...command, '--port', String(port), '--control-port', String(controlPort), ...extra], {
    cwd: repoRoot, env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  let exited: number | null | undefined;
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => { exited = code; resolve(code); }));
  const dev: DevProcess = {
    child, port, controlPort,
    output: () => out,
    async waitFor(text, timeoutMs = 10_000) {
      const until = Date.now() + timeoutMs;
      while (Date.now() < until) {
        if (typeof text === 'string' ? out.includes(text) : text.test(out)) return;
        await sleep(50);
      }
      throw new Error(`timed out waiting for ${text} in output:\n${out}`);
    },
    async stop() {
      if (exited !== undefined) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exit;
      clearTimeout(timer);
      return code;
    },
  };
  const until = Date.now() + 30_000;
  while (Date.now() < until) {
    if (exited !== undefined) throw new Error(`nimbus ${command[0]} exited with ${exited}:\n${out}`);
    try {
      const res = await fetch(`http://127.0.0.1:${controlPort}/_/health`);
      if (res.status === 200) return dev;
    } catch { /* not listening yet */ }
    await sleep(50);
  }
  await dev.stop();
  throw new Error(`nimbus ${command[0]} not healthy within 30 s:\n${out}`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
