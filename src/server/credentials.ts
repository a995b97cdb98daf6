/**
 * The control plane's credentials, kept in the data directory:
 *
 *   <dataDir>/admin-token        the admin token (Bearer), mode 0600
 *   <dataDir>/access-keys.json   access keys AWS clients sign with (SigV4), mode 0600
 *
 * Both are made on the first start, and printed once then.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, openSync, readFileSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { NimbusError } from '../core/index.js';

/** An access key pair, as AWS clients take it. */
export interface AccessKey {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

/** What the control API accepts. */
export interface ServerCredentials {
  readonly adminToken: string;
  readonly accessKeys: readonly AccessKey[];
  /** True when this start made them (the CLI prints them once). */
  readonly created: boolean;
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** An access key id shaped like AWS's (20 upper-case characters), with Nimbus's prefix `NKIA`. */
function newAccessKeyId(): string {
  const bytes = randomBytes(16);
  let id = 'NKIA';
  for (const b of bytes) id += ALNUM[b % 32];
  return id;
}

/** Reads the credentials in `dataDir`, making them on the first start. */
export function loadCredentials(dataDir: string): ServerCredentials {
  const tokenFile = join(dataDir, 'admin-token');
  const keysFile = join(dataDir, 'access-keys.json');
  let created = false;
  try {
    if (!existsSync(tokenFile)) {
      writeSecret(tokenFile, `nimbus_${randomBytes(32).toString('base64url')}\n`);
      created = true;
    }
    if (!existsSync(keysFile)) {
      const keys: AccessKey[] = [{ accessKeyId: newAccessKeyId(), secretAccessKey: randomBytes(30).toString('base64').replace(/[+/]/g, 'x') }];
      writeSecret(keysFile, JSON.stringify(keys, null, 2) + '\n');
      created = true;
    }
    // Whatever a user did to the files, they stay the owner's only.
    chmodSync(tokenFile, 0o600);
    chmodSync(keysFile, 0o600);
    const adminToken = readFileSync(tokenFile, 'utf8').trim();
    const accessKeys = JSON.parse(readFileSync(keysFile, 'utf8')) as AccessKey[];
    if (!adminToken) throw new Error(`${tokenFile} is empty; delete it to make a new token`);
    if (!Array.isArray(accessKeys) || accessKeys.some((k) => typeof k?.accessKeyId !== 'string' || typeof k?.secretAccessKey !== 'string')) {
      throw new Error(`${keysFile} is not a list of {accessKeyId, secretAccessKey}; delete it to make a new key`);
    }
    return { adminToken, accessKeys, created };
  } catch (e) {
    throw new NimbusError('NIMBUS_ERR_SERVER_DATA_DIR', { dir: dataDir, reason: (e as Error).message }, { cause: e });
  }
}

/** Creates `path` with mode 0600 from the start (never readable by others, even for a moment). */
function writeSecret(path: string, text: string): void {
  const fd = openSync(path, 'wx', 0o600);
  try { writeSync(fd, text); } finally { closeSync(fd); }
}

/**
 * Takes the data directory for this process: `<dataDir>/server.pid` holds
 * the pid of the server using it. A pid file of a process that is gone is
 * taken over. Returns the release function.
 * @throws NimbusError NIMBUS_ERR_SERVER_DATA_DIR when another live server uses it.
 */
export function lockDataDir(dataDir: string): () => void {
  const file = join(dataDir, 'server.pid');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return () => { try { if (readFileSync(file, 'utf8').trim() === String(process.pid)) unlinkSync(file); } catch { /* gone */ } };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new NimbusError('NIMBUS_ERR_SERVER_DATA_DIR', { dir: dataDir, reason: (e as Error).message }, { cause: e });
      }
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new NimbusError('NIMBUS_ERR_SERVER_DATA_DIR', { dir: dataDir, reason: `another nimbus server (pid ${pid}) is using it; if process ${pid} is not a nimbus server (a pid reused after a crash), delete ${file}` });
      }
      try { unlinkSync(file); } catch { /* raced */ }
    }
  }
  throw new NimbusError('NIMBUS_ERR_SERVER_DATA_DIR', { dir: dataDir, reason: 'cannot take server.pid' });
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}
