/**
 * Route matching, compiled once per config into a segment trie.
 *
 * Precedence follows API Gateway: a literal segment beats `{param}`, which
 * beats a greedy `{proxy+}`; an exact method beats `ANY`; an HTTP API's
 * `$default` route catches what nothing else matches.
 * https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-routes.html
 *
 * Matching works on the raw (still percent-encoded) path: API Gateway passes
 * path parameters to the function without decoding them.
 */
import type { RouteSpec } from '../core/index.js';

interface Node {
  readonly literal: Map<string, Node>;
  param: { name: string; node: Node } | null;
  greedy: { name: string; methods: Map<string, RouteSpec> } | null;
  readonly methods: Map<string, RouteSpec>;
}

/** A matched route with its path parameters (still percent-encoded), or null when none. */
export interface RouteMatch {
  readonly route: RouteSpec;
  readonly pathParameters: Record<string, string> | null;
}

function newNode(): Node {
  return { literal: new Map(), param: null, greedy: null, methods: new Map() };
}

/** A compiled set of routes of one API (REST or HTTP). */
export class Router {
  private readonly root = newNode();
  private defaultRoute: RouteSpec | null = null;
  /** Whether any route of this API has CORS settings (REST `cors:`). */
  readonly routes: readonly RouteSpec[];

  constructor(routes: readonly RouteSpec[]) {
    this.routes = routes;
    for (const r of routes) this.add(r);
  }

  private add(route: RouteSpec): void {
    if (route.path === '$default') { this.defaultRoute = route; return; }
    let node = this.root;
    const segments = route.path.split('/').filter((s) => s !== '');
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i];
      if (seg.startsWith('{') && seg.endsWith('+}')) {
        node.greedy ??= { name: seg.slice(1, -2), methods: new Map() };
        node.greedy.methods.set(route.method, route);
        return;
      }
      if (seg.startsWith('{') && seg.endsWith('}')) {
        node.param ??= { name: seg.slice(1, -1), node: newNode() };
        node = node.param.node;
      } else {
        let next = node.literal.get(seg);
        if (!next) { next = newNode(); node.literal.set(seg, next); }
        node = next;
      }
    }
    node.methods.set(route.method, route);
  }

  /**
   * Finds the route for `method` and `path` (the raw path, e.g. `/files/a%2Fb`).
   * HEAD falls back to a GET route when no HEAD or ANY route exists.
   */
  match(method: string, path: string): RouteMatch | null {
    const segments = path.split('/');
    // Leading '' from the leading slash, and a trailing '' from a trailing slash.
    let start = 0;
    let end = segments.length;
    if (segments[0] === '') start = 1;
    if (end > start && segments[end - 1] === '') end--;
    const params: Record<string, string> = {};
    const found = this.walk(this.root, segments, start, end, method, params)
      ?? (method === 'HEAD' ? this.walk(this.root, segments, start, end, 'GET', params) : null);
    if (found) return { route: found, pathParameters: Object.keys(params).length ? params : null };
    if (this.defaultRoute) return { route: this.defaultRoute, pathParameters: null };
    return null;
  }

  /** True when some route of this API has `path`, whatever its method (API Gateway's "resource"). */
  hasPath(path: string): boolean {
    const segments = path.split('/');
    let start = 0;
    let end = segments.length;
    if (segments[0] === '') start = 1;
    if (end > start && segments[end - 1] === '') end--;
    return this.walk(this.root, segments, start, end, null, {}) !== null;
  }

  /** `method` null: any method. */
  private walk(node: Node, segs: string[], i: number, end: number, method: string | null, params: Record<string, string>): RouteSpec | null {
    if (i === end) return method === null ? first(node.methods) : node.methods.get(method) ?? node.methods.get('ANY') ?? null;
    const seg = segs[i];
    const lit = node.literal.get(seg);
    if (lit) {
      const r = this.walk(lit, segs, i + 1, end, method, params);
      if (r) return r;
    }
    if (node.param && seg !== '') {
      const r = this.walk(node.param.node, segs, i + 1, end, method, params);
      if (r) { params[node.param.name] = seg; return r; }
    }
    if (node.greedy) {
      const r = method === null ? first(node.greedy.methods) : node.greedy.methods.get(method) ?? node.greedy.methods.get('ANY');
      if (r) {
        params[node.greedy.name] = segs.slice(i, end).join('/');
        return r;
      }
    }
    return null;
  }
}

function first(methods: Map<string, RouteSpec>): RouteSpec | null {
  for (const r of methods.values()) return r;
  return null;
}
