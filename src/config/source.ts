/**
 * The YAML source of a serverless.yml: its plain data plus, for every key
 * path, the line where the key and its value start, so that every error and
 * warning can point at a line.
 */
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document, Node } from 'yaml';
import { NimbusError } from '../core/index.js';

/** One step of a key path: a mapping key or a list index. */
export type Segment = string | number;

/** `functions.hello.events[0].http.path`; the empty path prints as `(root)`. */
export function formatPath(path: readonly Segment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += (out === '' ? '' : '.') + seg;
  }
  return out === '' ? '(root)' : out;
}

export function pathKey(path: readonly Segment[]): string {
  return JSON.stringify(path);
}

interface NodeInfo {
  /** 1-based line of the key (absent for list items and the root). */
  readonly keyLine?: number;
  /** 1-based line where the value starts. */
  readonly valueLine: number;
  /** A local tag such as `!Ref` (CloudFormation intrinsic functions). */
  readonly tag?: string;
}

/** Where each key path of the document sits in the file. */
export class LineIndex {
  private readonly info = new Map<string, NodeInfo>();

  set(path: readonly Segment[], info: NodeInfo, overwrite: boolean): void {
    const key = pathKey(path);
    if (overwrite || !this.info.has(key)) this.info.set(key, info);
  }

  /**
   * Line of the value at `path`; for a key that is not in the file, the line
   * of its nearest ancestor's key (where the mapping it is missing from is declared).
   */
  valueLine(path: readonly Segment[]): number {
    const exact = this.info.get(pathKey(path));
    if (exact) return exact.valueLine;
    return this.keyLine(path);
  }

  /** Line of the key at `path` (its value's line for list items), or of its nearest ancestor. */
  keyLine(path: readonly Segment[]): number {
    for (let n = path.length; n >= 0; n--) {
      const found = this.info.get(pathKey(path.slice(0, n)));
      if (found) return found.keyLine ?? found.valueLine;
    }
    return 1;
  }

  /** The local tag (e.g. `!Ref`) written on the value at exactly `path`, if any. */
  tag(path: readonly Segment[]): string | undefined {
    return this.info.get(pathKey(path))?.tag;
  }
}

export interface ParsedSource {
  /** The document as plain data (`null` for an empty file). */
  readonly data: unknown;
  readonly lines: LineIndex;
}

/**
 * Parses YAML text (YAML 1.2 core schema, `<<` merge keys allowed as the
 * Serverless Framework allows them). Unknown local tags such as `!Ref` parse
 * as their plain value and are remembered so that a value Nimbus reads can be
 * refused with a clear message.
 *
 * @throws NimbusError NIMBUS_ERR_CONFIG_YAML with the line and column of the first syntax error.
 */
export function parseSource(text: string, file: string): ParsedSource {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, merge: true, prettyErrors: true, uniqueKeys: true });
  const first = doc.errors[0];
  if (first) {
    const pos = first.linePos?.[0] ?? lineCounter.linePos(first.pos[0]);
    throw new NimbusError('NIMBUS_ERR_CONFIG_YAML', {
      file,
      line: pos.line,
      column: pos.col,
      reason: firstLine(first.message),
    }, { cause: first });
  }
  const lines = new LineIndex();
  const root = doc.contents;
  let data: unknown = null;
  if (root) {
    try {
      data = doc.toJS({ maxAliasCount: 1000 });
    } catch (e) {
      const line = root.range ? lineCounter.linePos(root.range[0]).line : 1;
      throw new NimbusError('NIMBUS_ERR_CONFIG_YAML', {
        file, line, column: 1, reason: e instanceof Error ? e.message : String(e),
      }, { cause: e });
    }
    const at = (offset: number): number => lineCounter.linePos(offset).line;
    lines.set([], { valueLine: root.range ? at(root.range[0]) : 1 }, true);
    collect(root, [], doc, at, lines, true, new Set());
  }
  return { data, lines };
}

/** The yaml library appends " at line L, column C:" and a code excerpt; keep the sentence. */
function firstLine(message: string): string {
  const line = message.split('\n')[0] ?? message;
  return line.replace(/ at line \d+, column \d+:?$/, '');
}

function collect(
  node: unknown,
  path: Segment[],
  doc: Document,
  at: (offset: number) => number,
  lines: LineIndex,
  overwrite: boolean,
  stack: Set<unknown>,
): void {
  let target = node;
  if (isAlias(target)) target = target.resolve(doc);
  if (!target || stack.has(target)) return;
  stack.add(target);
  if (isMap(target)) {
    for (const pair of target.items) {
      if (!isPair(pair)) continue;
      const keyNode = pair.key as Node | null;
      const key = isScalar(keyNode) ? String(keyNode.value) : String(keyNode);
      const valueNode = pair.value as Node | null;
      if (key === '<<' && valueNode) {
        // Merge keys: the merged mapping's keys, unless the mapping sets them itself.
        const sources = isSeq(valueNode) ? valueNode.items : [valueNode];
        for (const source of sources) collect(source, path, doc, at, lines, false, stack);
        continue;
      }
      const keyLine = keyNode?.range ? at(keyNode.range[0]) : undefined;
      const valueLine = valueNode?.range ? at(valueNode.range[0]) : keyLine ?? 1;
      const child = [...path, key];
      const tag = localTag(valueNode, doc);
      lines.set(child, { keyLine, valueLine, ...(tag ? { tag } : {}) }, overwrite);
      collect(valueNode, child, doc, at, lines, overwrite, stack);
    }
  } else if (isSeq(target)) {
    target.items.forEach((item, index) => {
      const itemNode = item as Node | null;
      const valueLine = itemNode?.range ? at(itemNode.range[0]) : 1;
      const child = [...path, index];
      const tag = localTag(itemNode, doc);
      lines.set(child, { valueLine, ...(tag ? { tag } : {}) }, overwrite);
      collect(itemNode, child, doc, at, lines, overwrite, stack);
    });
  }
  stack.delete(target);
}

function localTag(node: Node | null, doc: Document): string | undefined {
  let target: unknown = node;
  if (isAlias(target)) target = target.resolve(doc);
  const tag = (target as { tag?: unknown } | null)?.tag;
  return typeof tag === 'string' && tag.startsWith('!') && !tag.startsWith('!!') ? tag : undefined;
}
