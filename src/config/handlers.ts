/**
 * Where a handler's code lives, following the Lambda runtimes' rules:
 * - Node.js: `dir/file.export` → the module is everything up to the first `.`
 *   after the last `/` (https://docs.aws.amazon.com/lambda/latest/dg/nodejs-handler.html).
 * - Python: `dir/module.function` or `pkg.module.function` → the module is
 *   everything before the last `.`, with `.` and `/` as separators
 *   (https://docs.aws.amazon.com/lambda/latest/dg/python-handler.html).
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { Language } from '../core/index.js';

/** Node module extensions tried, in order (TypeScript is bundled by the deploy step). */
export const NODE_EXTENSIONS: readonly string[] = ['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts'];

export interface HandlerParts {
  /** Module path relative to the code folder, `/`-separated, without extension. */
  readonly module: string;
  /** The export (Node, possibly dotted) or function (Python) name. */
  readonly exportName: string;
}

/** Splits a handler string; undefined when it has no module or no export part. */
export function splitHandler(handler: string, language: Language): HandlerParts | undefined {
  const h = handler.startsWith('./') ? handler.slice(2) : handler;
  if (language === 'node') {
    const slash = h.lastIndexOf('/');
    const dot = h.indexOf('.', slash + 1);
    if (dot <= slash + 1 || dot === h.length - 1) return undefined;
    return { module: h.slice(0, dot), exportName: h.slice(dot + 1) };
  }
  const dot = h.lastIndexOf('.');
  if (dot <= 0 || dot === h.length - 1 || h.lastIndexOf('/') > dot) return undefined;
  const module = h.slice(0, dot).replace(/\./g, '/');
  if (module.split('/').some((s) => s === '')) return undefined;
  return { module, exportName: h.slice(dot + 1) };
}

/** The files that may hold the handler's module, relative to the code folder, in the order tried. */
export function handlerCandidates(parts: HandlerParts, language: Language): string[] {
  if (language === 'node') return NODE_EXTENSIONS.map((ext) => parts.module + ext);
  return [`${parts.module}.py`, `${parts.module}/__init__.py`];
}

/** The first candidate that is a file under `codeDir`, or undefined. */
export function findHandlerFile(codeDir: string, candidates: readonly string[]): string | undefined {
  for (const c of candidates) {
    const full = join(codeDir, c);
    try {
      if (statSync(full).isFile()) return full;
    } catch {
      // not there: try the next one
    }
  }
  return undefined;
}
