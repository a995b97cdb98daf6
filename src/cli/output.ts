/**
 * Output for people: colour on a TTY (unless NO_COLOR), plain otherwise, and
 * user errors printed as "what went wrong" + "how to fix it".
 */
import { isNimbusError } from '../core/index.js';

/** Where a command writes; tests pass their own. */
export interface Io {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly color: boolean;
}

/** The process's own streams. */
export function processIo(): Io {
  const color = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR && process.env.TERM !== 'dumb';
  return {
    out: (t) => { process.stdout.write(t); },
    err: (t) => { process.stderr.write(t); },
    env: process.env,
    color,
  };
}

const codes = { red: 31, green: 32, yellow: 33, blue: 34, magenta: 35, cyan: 36, gray: 90, bold: 1 } as const;

/** Wraps `text` in an ANSI colour when `io.color`. */
export function paint(io: Io, colour: keyof typeof codes, text: string): string {
  return io.color ? `\x1b[${codes[colour]}m${text}\x1b[0m` : text;
}

/**
 * Prints an error: a NimbusError as its message and hint; anything else as a
 * platform error with its stack. Returns the exit code to use (1).
 */
export function reportError(io: Io, e: unknown): number {
  if (isNimbusError(e)) {
    io.err(`${paint(io, 'red', 'Error:')} ${e.message}\n`);
    if (e.hint) io.err(`${paint(io, 'yellow', 'How to fix:')} ${e.hint}\n`);
    return 1;
  }
  const err = e as NodeJS.ErrnoException;
  if (err?.code === 'EADDRINUSE') {
    io.err(`${paint(io, 'red', 'Error:')} port ${(err as { port?: number }).port ?? ''} is already in use\n`);
    io.err(`${paint(io, 'yellow', 'How to fix:')} stop the other server or pick another port with --port / --control-port\n`);
    return 1;
  }
  io.err(`${paint(io, 'red', 'Internal error (a Nimbus bug, please report it):')} ${err?.stack ?? String(e)}\n`);
  return 1;
}

/**
 * Log text for a terminal: the runtimes write a log call's own line breaks
 * as `\r` (Lambda's runtimes do, so one call stays one log event); shown
 * here as lines, indented under the call.
 */
export function logLines(text: string): string {
  return text.includes('\r') ? text.replace(/\r(?!\n)/g, '\n  ') : text;
}
