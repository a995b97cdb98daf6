// @ts-check
/**
 * The code that runs inside a Node.js function instance.
 *
 * It speaks the frame protocol of `runtimes/PROTOCOL.md` on fd 3: waits for
 * INIT, loads the handler once (the cold start), then answers INVOKE frames
 * one at a time (or up to INIT's `concurrency` at once, an opt-in), reusing
 * the loaded module (warm invocations). It imports nothing from the platform.
 *
 * Behaviour copied from AWS Lambda's Node.js runtime:
 * - handler string `path/file.export[.nested]`, module resolved as .js, .mjs, .cjs
 *   https://docs.aws.amazon.com/lambda/latest/dg/nodejs-handler.html
 * - async handlers end when their promise settles; callback handlers end when
 *   the callback is called and, while `context.callbackWaitsForEmptyEventLoop`
 *   is true (the default), the event loop is empty
 *   https://docs.aws.amazon.com/lambda/latest/dg/nodejs-context.html
 * - error documents `{errorType, errorMessage, trace}`
 *   https://docs.aws.amazon.com/lambda/latest/dg/nodejs-exceptions.html
 * - log lines `<ISO time>\t<requestId>\t<LEVEL>\t<message>`
 *   https://docs.aws.amazon.com/lambda/latest/dg/nodejs-logging.html
 */
import net from 'node:net';
import { format } from 'node:util';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { AsyncLocalStorage } from 'node:async_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';

const INIT = 1, READY = 2, INIT_ERROR = 3, INVOKE = 4, RESULT = 5, ERROR = 6, LOG = 7, HELLO = 8;
const EMPTY = Buffer.alloc(0);

const channel = new net.Socket({ fd: 3, readable: true, writable: true });

/** @type {Record<string, any>} */
let init = {};
/** @type {Function | null} */
let handler = null;
/** The request id of the invocation running now, for log lines (one invocation at a time). */
let currentRequestId = 'undefined';
/** @type {null | ((kind: number, body: string) => void)} */
let finishCurrent = null;
/**
 * Invocations at once (INIT's `concurrency`, an opt-in; Lambda's is 1). Above
 * 1, the request id of log lines comes from `requestContext`, and every
 * invocation in flight is in `inFlight`.
 */
let concurrency = 1;
/** @type {AsyncLocalStorage<string>} */
const requestContext = new AsyncLocalStorage();
/** @type {Map<string, (kind: number, body: string) => void>} */
const inFlight = new Map();
/** The request id for a log line written now. */
const requestIdNow = () => (concurrency > 1 ? requestContext.getStore() ?? 'undefined' : currentRequestId);

// ---- frames ---------------------------------------------------------------

/**
 * @param {number} type
 * @param {string} header JSON text
 * @param {string | Buffer} body
 */
function send(type, header, body) {
  const hlen = Buffer.byteLength(header);
  const blen = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
  const frame = Buffer.allocUnsafe(9 + hlen + blen);
  frame.writeUInt32BE(5 + hlen + blen, 0);
  frame[4] = type;
  frame.writeUInt32BE(hlen, 5);
  frame.write(header, 9);
  if (typeof body === 'string') frame.write(body, 9 + hlen);
  else body.copy(frame, 9 + hlen);
  write(frame);
}

/** Where frames go: the channel, except while the runtime warms up (see warmUp). */
let write = (/** @type {Buffer} */ frame) => { channel.write(frame); };

// Chunks of the frame being received, joined once it is complete (joining on
// every chunk would copy a 6 MB event hundreds of times).
/** @type {Buffer[]} */
let chunks = [];
let buffered = 0;
let need = 0;
channel.on('data', (/** @type {Buffer} */ chunk) => {
  chunks.push(chunk);
  buffered += chunk.length;
  if (need === 0 && buffered >= 4) need = 4 + (chunks[0].length >= 4 ? chunks[0] : Buffer.concat(chunks)).readUInt32BE(0);
  if (need === 0 || buffered < need) return;
  let buf = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, buffered);
  chunks = [];
  buffered = 0;
  need = 0;
  while (buf.length >= 4) {
    const len = buf.readUInt32BE(0);
    if (buf.length < 4 + len) break;
    const type = buf[4];
    const hlen = buf.readUInt32BE(5);
    const header = JSON.parse(buf.toString('utf8', 9, 9 + hlen));
    const body = buf.subarray(9 + hlen, 4 + len);
    buf = buf.subarray(4 + len);
    onFrame(type, header, body);
  }
  if (buf.length > 0) {
    chunks.push(buf);
    buffered = buf.length;
    if (buf.length >= 4) need = 4 + buf.readUInt32BE(0);
  }
});
channel.on('end', () => process.exit(0));
channel.on('error', () => process.exit(0));

/**
 * @param {number} type
 * @param {any} header
 * @param {Buffer} body
 */
function onFrame(type, header, body) {
  if (type === INIT) {
    initSeen = true;
    // At once when no warm-up runs (the usual case: it ended long ago), else after it.
    if (warming) void warmed.then(() => onInit(header)); else void onInit(header);
  } else if (type === INVOKE) onInvoke(header, body);
}

// ---- warm-up (a pooled process waiting for INIT) ----------------------------

/** True once INIT arrived; a process spawned with its INIT already written skips the warm-up. */
let initSeen = false;
/** Settles when the warm-up is over; INIT waits for it. */
let warmed = Promise.resolve();
/** True while the warm-up runs. */
let warming = false;

/**
 * While a pooled process waits for INIT, run this runtime's own code once:
 * import a module through loadHandler and serve one invocation of its handler
 * (logging included), with every frame discarded. V8 compiles functions
 * lazily, on their first call: without this, the first real invocation pays
 * ~3-5 ms of compilation on its cold start. Then say HELLO.
 */
async function warmUp() {
  const here = dirname(fileURLToPath(import.meta.url));
  try {
    handler = await loadHandler(here, 'warmup.handler', undefined);
    const event = Buffer.from(JSON.stringify({ version: '2.0', rawPath: '/', headers: { accept: '*/*' }, requestContext: { http: { method: 'GET' } }, body: null }));
    for (let i = 0; i < 2; i++) {
      await new Promise((resolve) => {
        write = (frame) => { if (frame[4] === RESULT || frame[4] === ERROR) resolve(undefined); };
        onInvoke({ requestId: 'warm-up', deadlineMs: Date.now() + 1000 }, event);
      });
    }
  } catch {
    // A warm-up that fails only costs the speed-up.
  } finally {
    write = (frame) => { channel.write(frame); };
    handler = null;
    finishCurrent = null;
    currentRequestId = 'undefined';
    onEmptyLoop = () => {};
    rssAt = -Infinity;
  }
  send(HELLO, '{}', EMPTY);
}

// A warm pool starts its processes with `--pooled`: they warm up before HELLO
// while they wait. A process started for one function (its INIT written at
// spawn) says HELLO at once and loads the handler without delay.
if (process.argv[2] === '--pooled') {
  process.argv.splice(2, 1);
  setImmediate(() => {
    if (initSeen) { send(HELLO, '{}', EMPTY); return; }
    warming = true;
    warmed = warmUp().finally(() => { warming = false; });
  });
} else {
  send(HELLO, '{}', EMPTY);
}

// ---- logs -----------------------------------------------------------------

/** @param {string} text */
function log(text) {
  // With several invocations at once, the LOG frame names the one that wrote it.
  const id = concurrency > 1 ? requestContext.getStore() : undefined;
  send(LOG, id === undefined ? '{}' : `{"requestId":${JSON.stringify(id)}}`, text);
}

/** @param {string} level */
function logLine(level) {
  return (/** @type {any[]} */ ...args) => {
    const msg = format(...args).replace(/\n/g, '\r');
    log(`${new Date().toISOString()}\t${requestIdNow()}\t${level}\t${msg}\n`);
  };
}
console.log = logLine('INFO');
console.info = logLine('INFO');
console.warn = logLine('WARN');
console.error = logLine('ERROR');
console.debug = logLine('DEBUG');
console.trace = (/** @type {any[]} */ ...args) => {
  const err = { name: 'Trace', message: format(...args) };
  Error.captureStackTrace(err, console.trace);
  logLine('TRACE')(/** @type {any} */ (err).stack);
};
for (const stream of [process.stdout, process.stderr]) {
  /** @type {any} */ (stream).write = (/** @type {any} */ chunk, /** @type {any} */ encoding, /** @type {any} */ cb) => {
    log(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString(typeof encoding === 'string' ? /** @type {BufferEncoding} */ (encoding) : 'utf8'));
    const done = typeof encoding === 'function' ? encoding : cb;
    if (typeof done === 'function') process.nextTick(done);
    return true;
  };
}

// ---- errors ---------------------------------------------------------------

/**
 * Lambda's error document for a thrown value.
 * @param {unknown} err
 * @param {string} [typeOverride]
 */
function errorDocument(err, typeOverride) {
  if (err instanceof Error || (err && typeof err === 'object' && 'message' in err)) {
    const e = /** @type {Error} */ (err);
    const stack = typeof e.stack === 'string' ? e.stack.split('\n') : [];
    /** @type {Record<string, unknown>} */
    const doc = { errorType: typeOverride ?? (e.name || 'Error'), errorMessage: String(e.message) };
    for (const k of Object.keys(e)) if (!(k in doc) && k !== 'stack') doc[k] = /** @type {any} */ (e)[k];
    doc.trace = stack;
    return doc;
  }
  return { errorType: typeOverride ?? typeof err, errorMessage: String(err), trace: [] };
}

/** @param {unknown} doc */
function serialiseError(doc) {
  try { return JSON.stringify(doc); } catch { return JSON.stringify({ errorType: 'Error', errorMessage: 'unserialisable error', trace: [] }); }
}

// ---- init -----------------------------------------------------------------

/** @param {Record<string, any>} header */
async function onInit(header) {
  init = header;
  concurrency = Math.max(1, Math.floor(Number(header.concurrency) || 1));
  // Only what changes is touched: setting or deleting TZ makes ICU detect the
  // time zone again (~10 ms of file reads inside the sandbox).
  const env = /** @type {Record<string, string>} */ (header.env);
  for (const k of Object.keys(process.env)) if (!(k in env)) delete process.env[k];
  for (const [k, v] of Object.entries(env)) if (process.env[k] !== v) process.env[k] = v;
  process.chdir(header.taskRoot);
  const started = performance.now();
  try {
    // A bundled TypeScript handler carries an inline source map: stack traces name the .ts lines.
    if (header.modulePath) process.setSourceMapsEnabled(true);
    handler = await loadHandler(header.taskRoot, header.handler, header.modulePath);
  } catch (e) {
    const doc = /** @type {any} */ (e).lambdaDoc ?? errorDocument(e, 'Runtime.ImportModuleError');
    // Where it went wrong (file:line of a syntax error), for the person reading the log.
    const where = Array.isArray(doc.trace) ? doc.trace.slice(0, 3).join('\n') : '';
    console.error(`${doc.errorType}: ${doc.errorMessage}${where ? `\n${where}` : ''}`);
    send(INIT_ERROR, '{}', serialiseError(doc));
    channel.end(() => process.exit(1));
    return;
  }
  send(READY, JSON.stringify({ initDurationMs: performance.now() - started, ...(concurrency > 1 ? { concurrency } : {}) }), EMPTY);
}

/**
 * Resolves and imports `path/file.export[.nested]` as Lambda's Node.js runtime does.
 * @param {string} root
 * @param {string} spec
 * @param {string | undefined} modulePath
 */
async function loadHandler(root, spec, modulePath) {
  const slash = spec.lastIndexOf('/');
  const dot = spec.indexOf('.', slash + 1);
  if (dot < 0) throw withDoc('Runtime.MalformedHandlerName', `Bad handler ${spec}: missing a dot between the module and the export`);
  const moduleName = spec.slice(0, dot);
  const exportPath = spec.slice(dot + 1).split('.');
  let file = modulePath;
  if (!file) {
    for (const ext of ['.js', '.mjs', '.cjs']) {
      const candidate = join(root, moduleName + ext);
      if (existsSync(candidate)) { file = candidate; break; }
    }
  }
  if (!file) throw withDoc('Runtime.ImportModuleError', `Error: Cannot find module '${moduleName}'`);
  let mod;
  try {
    // CommonJS loads through require(): no ESM loader or CJS lexer on the cold-start path.
    if (isCommonJS(file)) {
      const exported = createRequire(file)(file);
      mod = { ...Object(exported), default: exported };
    } else {
      mod = await import(pathToFileURL(file).href);
    }
  } catch (e) {
    if (e instanceof SyntaxError) throw withDoc('Runtime.UserCodeSyntaxError', `${e.name}: ${e.message}`, e);
    const err = /** @type {Error} */ (e);
    throw withDoc('Runtime.ImportModuleError', `${err?.name ?? 'Error'}: ${err?.message ?? String(e)}`, e);
  }
  /** @type {any} */
  let fn = mod;
  for (const part of exportPath) fn = fn?.[part] ?? (fn === mod ? mod.default?.[part] : undefined);
  if (typeof fn !== 'function') {
    const names = Object.keys(mod).filter((k) => k !== 'default' && typeof mod[k] === 'function');
    throw withDoc('Runtime.HandlerNotFound', `${spec} is undefined or not exported${names.length ? ` (the module exports: ${names.join(', ')})` : ''}`);
  }
  return fn;
}

/**
 * Whether Node treats `file` as CommonJS: `.cjs`, or `.js` outside a
 * `"type": "module"` package (the nearest package.json decides).
 * @param {string} file
 */
function isCommonJS(file) {
  if (file.endsWith('.cjs')) return true;
  if (!file.endsWith('.js')) return false;
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try { return JSON.parse(readFileSync(pkg, 'utf8')).type !== 'module'; } catch { return true; }
    }
    if (dirname(dir) === dir) return true;
  }
}

/**
 * @param {string} type
 * @param {string} message
 * @param {unknown} [cause]
 */
function withDoc(type, message, cause) {
  const e = new Error(message);
  const trace = cause instanceof Error && cause.stack ? cause.stack.split('\n') : [];
  /** @type {any} */ (e).lambdaDoc = { errorType: type, errorMessage: message, trace };
  return e;
}

// ---- invoke ---------------------------------------------------------------

/**
 * @param {Record<string, any>} header
 * @param {Buffer} body
 */
function onInvoke(header, body) {
  const requestId = header.requestId;
  // Several at once (an opt-in): each has its own log context, none waits for the shared event loop.
  const many = concurrency > 1;
  if (!many) currentRequestId = requestId;
  let finished = false;
  /** Set once the callback ran while the answer waits for an empty event loop. */
  /** @type {{ err: unknown, result: unknown } | null} */
  let held = null;

  /** @param {number} kind @param {string} payload */
  const finish = (kind, payload) => {
    if (finished) return;
    finished = true;
    if (many) {
      inFlight.delete(requestId);
    } else {
      finishCurrent = null;
      channel.ref();
    }
    send(kind, `{"requestId":${JSON.stringify(requestId)},"maxRssKB":${peakRssKB()}${exiting ? ',"exiting":true' : ''}}`, payload);
  };
  if (many) inFlight.set(requestId, finish); else finishCurrent = finish;

  /** @param {unknown} result */
  const succeed = (result) => {
    let text;
    try { text = JSON.stringify(result === undefined ? null : result); }
    catch (e) { return finish(ERROR, serialiseError(errorDocument(e, 'Runtime.MarshalError'))); }
    finish(RESULT, text ?? 'null');
  };
  /** @param {unknown} err */
  const fail = (err) => {
    const doc = errorDocument(err);
    console.error(`Invoke Error \t${JSON.stringify(doc)}`);
    finish(ERROR, serialiseError(doc));
  };

  const context = {
    // The event loop is shared by the invocations in flight: with several, nothing waits for it to empty.
    callbackWaitsForEmptyEventLoop: !many,
    functionName: init.functionName,
    functionVersion: init.functionVersion,
    invokedFunctionArn: header.invokedFunctionArn ?? init.invokedFunctionArn,
    memoryLimitInMB: String(init.memorySize),
    awsRequestId: requestId,
    logGroupName: init.logGroupName,
    logStreamName: init.logStreamName,
    identity: header.identity,
    clientContext: header.clientContext,
    getRemainingTimeInMillis: () => Math.max(0, header.deadlineMs - Date.now()),
    /** @param {unknown} err @param {unknown} result */
    done: (err, result) => callback(err, result),
    /** @param {unknown} result */
    succeed: (result) => callback(null, result),
    /** @param {unknown} err */
    fail: (err) => callback(err ?? 'handled'),
  };

  // The callback style: with callbackWaitsForEmptyEventLoop the answer is held
  // until the event loop drains ('beforeExit' fires once our channel is unref'd).
  /** @param {unknown} err @param {unknown} [result] */
  function callback(err, result) {
    if (finished || held) return;
    if (context.callbackWaitsForEmptyEventLoop && !many) {
      held = { err, result };
      channel.unref();
      return;
    }
    if (err != null) fail(err); else succeed(result);
  }

  if (!many) onEmptyLoop = () => {
    if (finished) return;
    channel.ref();
    if (held) {
      const { err, result } = held;
      if (err != null) fail(err); else succeed(result);
    } else {
      // A non-async handler that never called back: Lambda ends it with null once the loop drains.
      succeed(null);
    }
  };

  let event;
  try { event = JSON.parse(body.length === 0 ? 'null' : body.toString('utf8')); }
  catch (e) { return finish(ERROR, serialiseError(errorDocument(e, 'Runtime.UnmarshalError'))); }

  const run = () => {
    let ret;
    try {
      ret = /** @type {Function} */ (handler)(event, context, callback);
    } catch (e) {
      return fail(e);
    }
    if (ret && typeof ret.then === 'function') {
      ret.then((/** @type {unknown} */ r) => { if (!held) succeed(r); }, (/** @type {unknown} */ e) => { if (!held) fail(e); });
    } else if (!finished && !held && !many) {
      // Synchronous return without callback: wait for the callback or an empty loop.
      channel.unref();
    } else if (!finished && !held && /** @type {Function} */ (handler).length < 3) {
      // With several at once the event loop is shared, so nothing waits for it to empty: a synchronous
      // handler that takes no callback ends now, with null (its return value is ignored, as Lambda does).
      succeed(null);
    }
  };
  if (many) requestContext.run(requestId, run); else run();
}

/**
 * Peak resident memory in KB, for the REPORT line's Max Memory Used.
 * getrusage() sums over every thread of the process: it cost ~12% of the
 * runtime's CPU when called on every invocation. It is called again only
 * when the last call is RSS_REFRESH_MS old (always for the first invocation
 * after INIT), so a busy instance reports a peak at most that stale; after
 * a kill the platform reads the cgroup's own peak.
 */
const RSS_REFRESH_MS = 100;
let rssKB = 0;
let rssAt = -Infinity;
function peakRssKB() {
  const now = performance.now();
  if (now - rssAt >= RSS_REFRESH_MS) {
    rssKB = process.resourceUsage().maxRSS;
    rssAt = now;
  }
  return rssKB;
}

/** @type {() => void} */
let onEmptyLoop = () => {};
/** Set by crash(): the answers sent now are the last, the process exits after them. */
let exiting = false;
process.on('beforeExit', () => onEmptyLoop());

process.on('uncaughtException', (err) => crash(err, 'Runtime.UncaughtException'));
process.on('unhandledRejection', (reason) => crash(reason, 'Runtime.UnhandledPromiseRejection'));

/**
 * Lambda reports an uncaught error as the invocation's error and restarts the runtime.
 * @param {unknown} err
 * @param {string} type
 */
function crash(err, type) {
  const base = errorDocument(err);
  const doc = type === 'Runtime.UnhandledPromiseRejection'
    ? { errorType: type, errorMessage: `${base.errorType}: ${base.errorMessage}`, reason: base.errorMessage, promise: {}, stack: base.trace }
    : base;
  console.error(`${type} \t${JSON.stringify(doc)}`);
  exiting = true;
  // With several invocations at once the culprit is unknown: every one in flight fails, as the instance goes.
  for (const f of [...inFlight.values()]) f(ERROR, serialiseError(doc));
  if (finishCurrent) finishCurrent(ERROR, serialiseError(doc));
  channel.end(() => process.exit(129));
}
