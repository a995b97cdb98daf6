/**
 * What every step of reading one serverless.yml shares: the file name for
 * messages, the line index, and the warnings collected so far.
 */
import { NimbusError } from '../core/index.js';
import { formatPath, type LineIndex, type Segment } from './source.js';

export class ConfigContext {
  private readonly collected: { line: number; order: number; text: string }[] = [];
  /**
   * The value of a `!Ref` / `!GetAtt` at `path` when it names a queue or
   * topic Nimbus makes (set once resources are read), else undefined.
   */
  reference?: (path: readonly Segment[]) => string | undefined;

  constructor(
    /** The config path as the caller gave it; used in every message. */
    readonly file: string,
    readonly lines: LineIndex,
  ) {}

  /** An error at `path`: NIMBUS_ERR_CONFIG_INVALID naming file, line, key path, value and what is allowed. */
  invalid(path: readonly Segment[], value: unknown, reason: string, allowed: string): NimbusError {
    return new NimbusError('NIMBUS_ERR_CONFIG_INVALID', {
      file: this.file,
      line: this.lines.valueLine(path),
      path: formatPath(path),
      value: showValue(value),
      reason,
      allowed,
    });
  }

  /** Records `<file>:<line>: <path>: <message>`, the line being the key's. */
  warn(path: readonly Segment[], message: string): void {
    const line = this.lines.keyLine(path);
    this.collected.push({ line, order: this.collected.length, text: `${this.file}:${line}: ${formatPath(path)}: ${message}` });
  }

  /** The warnings in file order (then in the order they were found). */
  warnings(): string[] {
    return [...this.collected].sort((a, b) => a.line - b.line || a.order - b.order).map((w) => w.text);
  }
}

/** A value as JSON for messages (`nothing` when absent), cut at 120 characters. */
export function showValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}
