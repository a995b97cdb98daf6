/**
 * Packaging for `nimbus deploy`: one zip per service, as the Serverless
 * Framework makes by default (every function shares it), holding the
 * service folder filtered by `package.patterns` plus, for each TypeScript
 * function, an esbuild bundle at `.nimbus/build/<key>.mjs` (so the server
 * never runs a compiler).
 *
 * Same files give the same zip, byte for byte (sorted entries, fixed times),
 * so an unchanged service uploads nothing new and publishes no new version.
 * https://www.serverless.com/framework/docs/providers/aws/guide/packaging
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { zipSync, type Zippable } from 'fflate';
import picomatch from 'picomatch';
import type { ServiceSpec } from '../core/index.js';
import { NimbusError } from '../core/index.js';
import { prepareModule } from '../sandbox/index.js';

/** Never packaged, before `package.patterns` (the Serverless Framework's defaults plus Nimbus's own folders). */
export const DEFAULT_EXCLUDES: readonly string[] = [
  '.git/**', '.gitignore', '.DS_Store', 'npm-debug.log*', '.serverless/**', '.nimbus/**', '__pycache__/**', '**/__pycache__/**',
  '.venv/**', 'venv/**', 'node_modules/.bin/**', 'node_modules/.cache/**', '.env', '.env.*',
];

/** Lambda's limit on a function's unzipped code: 250 MB. https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html */
export const MAX_UNZIPPED_BYTES = 250 * 1024 * 1024;

/** A packaged service. */
export interface ServicePackage {
  readonly zip: Buffer;
  /** SHA-256 of the zip, hex. */
  readonly sha256: string;
  /** Bytes of the zip. */
  readonly size: number;
  /** Paths inside the zip, sorted. */
  readonly files: readonly string[];
}

/** Fixed entry time: equal files make equal zips. */
const ZIP_MTIME = new Date('2020-01-01T00:00:00Z');

/**
 * Packages `spec`'s folder and bundles its TypeScript functions.
 * @throws NimbusError NIMBUS_ERR_BUILD_FAILED (a TypeScript error), NIMBUS_ERR_PACKAGE_TOO_LARGE (over 250 MB unzipped).
 */
export async function packageService(spec: ServiceSpec, buildDir: string): Promise<ServicePackage> {
  const include = matcher(spec.packagePatterns);
  const entries: Zippable = {};
  let total = 0;
  const add = (path: string, data: Uint8Array, mode: number) => {
    total += data.length;
    if (total > MAX_UNZIPPED_BYTES) {
      throw new NimbusError('NIMBUS_ERR_PACKAGE_TOO_LARGE', { service: spec.service, limit: '250 MB unzipped (Lambda\'s limit)' });
    }
    // Unix permissions in the upper half of the external attributes, as `zip` writes them.
    entries[path] = [data, { mtime: ZIP_MTIME, os: 3, attrs: ((0o100000 | (mode & 0o777)) << 16) >>> 0 }];
  };
  for (const file of walk(spec.dir)) {
    const rel = relative(spec.dir, file).split(sep).join('/');
    if (!include(rel)) continue;
    const st = statSync(file);
    add(rel, readFileSync(file), st.mode);
  }
  for (const f of spec.functions) {
    const bundle = await prepareModule(f, buildDir);
    if (bundle) add(`.nimbus/build/${f.key}.mjs`, readFileSync(bundle), 0o644);
  }
  const files = Object.keys(entries).sort();
  const sorted: Zippable = {};
  for (const name of files) sorted[name] = entries[name];
  const zip = Buffer.from(zipSync(sorted, { level: 6 }));
  return { zip, sha256: createHash('sha256').update(zip).digest('hex'), size: zip.length, files };
}

/** The path inside a package of a function's prebuilt bundle. */
export function bundlePath(functionKey: string): string {
  return `.nimbus/build/${functionKey}.mjs`;
}

/** True for paths to package: not a default exclude, then `patterns` in order (`!` excludes, others include back). */
function matcher(patterns: readonly string[]): (path: string) => boolean {
  const excluded = picomatch([...DEFAULT_EXCLUDES], { dot: true });
  const rules = patterns.map((p) => {
    const negated = p.startsWith('!');
    return { negated, test: picomatch(negated ? p.slice(1) : p, { dot: true }) };
  });
  return (path) => {
    let keep = !excluded(path);
    for (const r of rules) if (r.test(path)) keep = !r.negated;
    return keep;
  };
}

/** Every regular file under `dir` (symbolic links followed to files, not to folders). */
function* walk(dir: string): Generator<string> {
  let names: string[];
  try { names = readdirSync(dir).sort(); } catch { return; }
  for (const name of names) {
    const path = join(dir, name);
    let st;
    try { st = statSync(path); } catch { continue; }
    if (st.isDirectory()) {
      if (name === '.git' || name === '.nimbus' || name === '.serverless') continue;
      yield* walk(path);
    } else if (st.isFile()) {
      yield path;
    }
  }
}
