/**
 * Serverless Framework variables (`${source:address, fallback}`), resolved on
 * read: only values Nimbus reads are resolved (with whatever they refer to),
 * so a `${ssm:...}` under `resources:` or `provider.iam` never stops
 * `nimbus dev`. https://www.serverless.com/framework/docs/guides/variables
 *
 * Sources: `self:` (a key path into the document, itself resolved),
 * `opt:stage` / `opt:region`, `sls:stage` / `sls:instanceId`, `env:NAME`.
 * Fallbacks are tried left to right: another variable (`env:B` or
 * `${env:B}`), a quoted string, a number or a boolean. A value that is one
 * variable keeps the resolved type; variables inside a longer string are
 * stringified. `${Name}` without a `source:` (CloudFormation `Fn::Sub`
 * syntax, `${AWS::Region}`) is left as written.
 */
import { randomBytes } from 'node:crypto';
import { NimbusError } from '../core/index.js';
import type { ConfigContext } from './context.js';
import { formatPath, pathKey, type Segment } from './source.js';

/** Sources the Serverless Framework has and Nimbus does not resolve (yet); a fallback still applies. */
const UNSUPPORTED_SOURCES = new Set(['file', 'ssm', 'cf', 'aws', 's3', 'param', 'git', 'strToBool', 'sls-file', 'terraform', 'vault', 'doppler']);

/** `source:` or `source(arg):` at the start of a variable, but not `AWS::` (CloudFormation pseudo parameters). */
const SOURCE_RE = /^([A-Za-z][A-Za-z0-9_-]*)(\([^)]*\))?:(?!:)([\s\S]*)$/;
const NUMBER_RE = /^-?\d+(\.\d+)?$/;

/** Stage and region names: what API Gateway accepts in a stage name. */
export const STAGE_RE = /^[A-Za-z0-9_-]+$/;
export const REGION_RE = /^[a-z0-9-]+$/;

export interface ResolverOptions {
  readonly stage?: string;
  readonly region?: string;
  readonly env: Readonly<Record<string, string | undefined>>;
}

interface Found {
  readonly present: boolean;
  readonly value: unknown;
  /** True when `value` came out of a variable and is therefore resolved all the way down. */
  readonly resolved: boolean;
}

type Piece = { readonly text: string } | { readonly variable: string; readonly inner: string };

type Attempt = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly reasons: string[] };

/** Resolves variables in the raw document on read; one instance per load. */
export class Resolver {
  private readonly leaves = new Map<string, unknown>();
  private readonly inProgress: Segment[][] = [];
  private readonly instanceId = randomBytes(8).toString('hex');
  private effectiveStage?: string;
  private effectiveRegion?: string;

  constructor(
    private readonly raw: unknown,
    private readonly ctx: ConfigContext,
    private readonly options: ResolverOptions,
  ) {}

  /** The node at `path` with any variable on the way resolved; mappings and lists under it stay raw. */
  node(path: readonly Segment[]): Found {
    if (path.length === 2 && path[0] === 'provider' && path[1] === 'stage') return { present: true, value: this.stage(), resolved: true };
    if (path.length === 2 && path[0] === 'provider' && path[1] === 'region') return { present: true, value: this.region(), resolved: true };
    return this.rawNode(path);
  }

  /** The value at `path`, fully resolved (mappings and lists included); undefined when absent. */
  value(path: readonly Segment[]): unknown {
    const found = this.node(path);
    if (!found.present || found.resolved) return found.value;
    const v = found.value;
    if (Array.isArray(v)) return v.map((_, i) => this.value([...path, i]));
    if (isPlainObject(v)) {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v)) out[k] = this.value([...path, k]);
      return out;
    }
    return v;
  }

  /** The effective stage: the `stage` option, else `provider.stage`, else `dev`. */
  stage(): string {
    if (this.effectiveStage === undefined) this.effectiveStage = this.pick('stage', this.options.stage, 'dev', STAGE_RE, 'letters, digits, - and _ (API Gateway stage name rules)');
    return this.effectiveStage;
  }

  /** The effective region: the `region` option, else `provider.region`, else `us-east-1`. */
  region(): string {
    if (this.effectiveRegion === undefined) this.effectiveRegion = this.pick('region', this.options.region, 'us-east-1', REGION_RE, 'lower-case letters, digits and -, e.g. eu-west-1');
    return this.effectiveRegion;
  }

  private pick(key: 'stage' | 'region', option: string | undefined, fallback: string, re: RegExp, allowed: string): string {
    if (option !== undefined) {
      if (!re.test(option)) throw new NimbusError('NIMBUS_ERR_CLI_USAGE', { reason: `--${key} ${JSON.stringify(option)}: a ${key} name has ${allowed}` });
      return option;
    }
    const path = ['provider', key];
    const found = this.rawNode(path);
    if (!found.present || found.value === null) return fallback;
    if (typeof found.value !== 'string' || !re.test(found.value)) {
      throw this.ctx.invalid(path, found.value, `not a valid ${key} name`, `a string of ${allowed}`);
    }
    return found.value;
  }

  private rawNode(path: readonly Segment[]): Found {
    let cur: unknown = this.raw;
    let resolved = false;
    const walked: Segment[] = [];
    for (let i = 0; i <= path.length; i++) {
      if (!resolved) {
        this.refuseTag(walked, cur);
        if (typeof cur === 'string' && cur.includes('${')) {
          cur = this.resolveLeaf(walked, cur);
          resolved = true;
        }
      }
      if (i === path.length) break;
      let seg = path[i];
      if (Array.isArray(cur)) {
        const index = typeof seg === 'number' ? seg : /^\d+$/.test(seg) ? Number(seg) : -1;
        if (index < 0 || index >= cur.length) return { present: false, value: undefined, resolved };
        seg = index;
        cur = cur[index];
      } else if (isPlainObject(cur)) {
        const key = String(seg);
        if (!Object.prototype.hasOwnProperty.call(cur, key)) return { present: false, value: undefined, resolved };
        seg = key;
        cur = cur[key];
      } else {
        return { present: false, value: undefined, resolved };
      }
      walked.push(seg);
    }
    return { present: true, value: cur, resolved };
  }

  private refuseTag(path: readonly Segment[], value: unknown): void {
    const tag = this.ctx.lines.tag(path);
    if (tag) {
      throw this.ctx.invalid(path, value, `uses the CloudFormation function ${tag}, which Nimbus cannot evaluate`, 'a plain value, or a variable such as ${env:NAME}');
    }
  }

  /** Resolves the string at `path` (memoised), detecting reference cycles. */
  private resolveLeaf(path: readonly Segment[], text: string): unknown {
    const key = pathKey(path);
    if (this.leaves.has(key)) return this.leaves.get(key);
    const cycleStart = this.inProgress.findIndex((p) => pathKey(p) === key);
    if (cycleStart >= 0) {
      const chain = [...this.inProgress.slice(cycleStart), path].map(formatPath).join(' -> ');
      throw this.variableError(path, text, `circular reference: ${chain}`);
    }
    this.inProgress.push([...path]);
    try {
      const value = this.resolveTemplate(text, path);
      this.leaves.set(key, value);
      return value;
    } finally {
      this.inProgress.pop();
    }
  }

  /** A string with variables: one variable alone keeps its type; otherwise the pieces are joined. */
  private resolveTemplate(text: string, path: readonly Segment[]): unknown {
    const pieces = this.split(text, path);
    if (pieces.length === 1 && 'variable' in pieces[0]) return this.resolveVariable(pieces[0], path);
    let out = '';
    for (const piece of pieces) {
      if ('text' in piece) {
        out += piece.text;
        continue;
      }
      const v = this.resolveVariable(piece, path);
      if (v !== null && typeof v === 'object') {
        throw this.variableError(path, piece.variable, `it resolves to ${Array.isArray(v) ? 'a list' : 'a mapping'}, which cannot be part of a longer string`);
      }
      out += String(v);
    }
    return out;
  }

  private resolveVariable(piece: { variable: string; inner: string }, path: readonly Segment[]): unknown {
    const attempt = this.attempt(piece.inner, path, piece.variable);
    if (attempt.ok) return attempt.value;
    throw this.variableError(path, piece.variable, attempt.reasons.join('; '));
  }

  /** Tries each comma-separated part of a variable in turn. */
  private attempt(inner: string, path: readonly Segment[], variable: string): Attempt {
    const reasons: string[] = [];
    for (const rawPart of splitTopLevel(inner)) {
      const part = rawPart.trim();
      const quoted = /^'([\s\S]*)'$/.exec(part) ?? /^"([\s\S]*)"$/.exec(part);
      if (quoted) return { ok: true, value: quoted[1] };
      if (NUMBER_RE.test(part)) return { ok: true, value: Number(part) };
      if (part === 'true' || part === 'false') return { ok: true, value: part === 'true' };
      if (part.startsWith('${') && part.endsWith('}') && matchingBrace(part, 0) === part.length - 1) {
        const nested = this.attempt(part.slice(2, -1), path, part);
        if (nested.ok) return nested;
        reasons.push(...nested.reasons);
        continue;
      }
      const m = SOURCE_RE.exec(part);
      if (!m) {
        throw this.variableError(path, variable, `${JSON.stringify(part)} is not a variable source (source:address), a quoted string or a number`);
      }
      const source = m[1];
      const address = this.resolveAddress(m[3].trim(), path);
      const got = this.lookup(source, address, path, variable);
      if ('value' in got) return { ok: true, value: got.value };
      reasons.push(got.reason);
    }
    return { ok: false, reasons };
  }

  /** The address may itself hold variables: `${self:custom.${sls:stage}.memory}`. */
  private resolveAddress(address: string, path: readonly Segment[]): string {
    if (!address.includes('${')) return address;
    const v = this.resolveTemplate(address, path);
    if (v !== null && typeof v === 'object') throw this.variableError(path, address, 'a variable inside an address must resolve to a string');
    return String(v);
  }

  private lookup(source: string, address: string, path: readonly Segment[], variable: string): { value: unknown } | { reason: string } {
    switch (source) {
      case 'self': {
        if (address === '') throw this.variableError(path, variable, 'self: needs a key path, e.g. ${self:custom.tableName}');
        const segments = address.split('.');
        const v = this.value(segments);
        return v === undefined || v === null ? { reason: `no value at ${address}` } : { value: v };
      }
      case 'opt': {
        const v = address === 'stage' ? this.options.stage : address === 'region' ? this.options.region : undefined;
        if (v !== undefined) return { value: v };
        return { reason: address === 'stage' || address === 'region' ? `option --${address} was not given` : `Nimbus passes only the stage and region options, not ${address}` };
      }
      case 'sls':
        if (address === 'stage') return { value: this.stage() };
        if (address === 'instanceId') return { value: this.instanceId };
        throw this.variableError(path, variable, `sls:${address} is not known; Nimbus has sls:stage and sls:instanceId`);
      case 'env': {
        if (address === '') throw this.variableError(path, variable, 'env: needs a variable name, e.g. ${env:TABLE_NAME}');
        const v = this.options.env[address];
        return v === undefined ? { reason: `environment variable ${address} is not set` } : { value: v };
      }
      default:
        if (UNSUPPORTED_SOURCES.has(source)) return { reason: `Nimbus does not support the '${source}' variable source yet` };
        throw this.variableError(path, variable, `unknown variable source '${source}'; Nimbus resolves self, opt, sls and env`);
    }
  }

  /** Splits a string into text and `${...}` variables (nested braces and quotes inside variables respected). */
  private split(text: string, path: readonly Segment[]): Piece[] {
    const pieces: Piece[] = [];
    let literal = '';
    let i = 0;
    while (i < text.length) {
      const start = text.indexOf('${', i);
      if (start < 0) {
        literal += text.slice(i);
        break;
      }
      literal += text.slice(i, start);
      const end = matchingBrace(text, start);
      if (end < 0) throw this.variableError(path, text.slice(start), 'the variable has no closing }');
      const variable = text.slice(start, end + 1);
      const inner = variable.slice(2, -1);
      const first = splitTopLevel(inner)[0]?.trim() ?? '';
      if (SOURCE_RE.test(first) || (first.startsWith('${') && matchingBrace(first, 0) === first.length - 1)) {
        if (literal !== '') pieces.push({ text: literal });
        literal = '';
        pieces.push({ variable, inner });
      } else {
        literal += variable; // `${AWS::Region}`, `${LogicalId}`: CloudFormation's, not ours
      }
      i = end + 1;
    }
    if (literal !== '') pieces.push({ text: literal });
    return pieces;
  }

  private variableError(path: readonly Segment[], variable: string, reason: string): NimbusError {
    return new NimbusError('NIMBUS_ERR_CONFIG_VARIABLE', {
      file: this.ctx.file,
      line: this.ctx.lines.valueLine(path),
      path: formatPath(path),
      variable,
      reason,
    });
  }
}

/** Index of the `}` closing the `${` at `start`, or -1. Quotes inside a variable hide braces and commas. */
function matchingBrace(text: string, start: number): number {
  let depth = 0;
  let quote: string | null = null;
  for (let j = start; j < text.length; j++) {
    const c = text[j];
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === '$' && text[j + 1] === '{') {
      depth++;
      j++;
    } else if (c === '}') {
      depth--;
      if (depth === 0) return j;
    } else if ((c === "'" || c === '"') && depth > 0) {
      quote = c;
    }
  }
  return -1;
}

/** Splits a variable's inside on commas that are not inside quotes or a nested `${...}`. */
function splitTopLevel(inner: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let from = 0;
  for (let j = 0; j < inner.length; j++) {
    const c = inner[j];
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === "'" || c === '"') {
      quote = c;
    } else if (c === '$' && inner[j + 1] === '{') {
      depth++;
      j++;
    } else if (c === '}') {
      depth--;
    } else if (c === ',' && depth === 0) {
      parts.push(inner.slice(from, j));
      from = j + 1;
    }
  }
  parts.push(inner.slice(from));
  return parts;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
