/**
 * Reading and safely extracting code artifacts (zip files).
 *
 * fflate decompresses the entries but does not report their unix modes, so
 * the central directory is read here as well (PKWARE APPNOTE.TXT, sections
 * 4.3.12 and 4.3.16): the external attributes of an entry made on unix
 * (host 3) carry `st_mode` in their high 16 bits, which is how the
 * executable bit of a `bootstrap` or a native binary survives the zip.
 */
import { chmodSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { crc32, inflateRawSync } from 'node:zlib';

/** Lambda's limit on the unzipped size of a function's code (250 MB). https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html */
export const MAX_UNZIPPED_BYTES = 250 * 1024 * 1024;

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const HOST_UNIX = 3;
const DOS_DIRECTORY = 0x10;

/** One entry of a zip's central directory. */
export interface ZipEntry {
  readonly name: string;
  /** The unix `st_mode` (type and permission bits) when the zip was made on unix, else undefined. */
  readonly mode?: number;
  readonly isDirectory: boolean;
  readonly isSymlink: boolean;
  readonly uncompressedSize: number;
  /** 0 stored, 8 deflated (the only two accepted). */
  readonly method: number;
  readonly crc32: number;
  readonly compressedSize: number;
  /** Offset of the entry's local header. */
  readonly localOffset: number;
}

/**
 * Lists a zip's entries from its central directory.
 * Throws an Error when the bytes are not a zip, or when an entry's name is
 * absolute or contains a `..` segment (zip-slip).
 */
export function readZipEntries(zip: Uint8Array): ZipEntry[] {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const eocd = findEndOfCentralDirectory(zip, view);
  let count = view.getUint16(eocd + 10, true);
  let offset = view.getUint32(eocd + 16, true);
  if (count === 0xffff || offset === 0xffffffff) {
    // ZIP64: the locator sits just before the classic record (APPNOTE 4.3.15).
    const locator = eocd - 20;
    if (locator < 0 || view.getUint32(locator, true) !== 0x07064b50) throw new Error('not a valid zip file: ZIP64 locator missing');
    const record = Number(view.getBigUint64(locator + 8, true));
    if (record + 56 > zip.length || view.getUint32(record, true) !== 0x06064b50) throw new Error('not a valid zip file: ZIP64 end record missing');
    count = Number(view.getBigUint64(record + 32, true));
    offset = Number(view.getBigUint64(record + 48, true));
  }
  const entries: ZipEntry[] = [];
  const utf8 = new TextDecoder('utf-8');
  for (let i = 0; i < count; i++) {
    if (offset + 46 > zip.length || view.getUint32(offset, true) !== 0x02014b50) {
      throw new Error(`not a valid zip file: central directory entry ${i} is damaged`);
    }
    const host = zip[offset + 5];
    const flags = view.getUint16(offset + 8, true);
    let uncompressedSize = view.getUint32(offset + 24, true);
    let compressedSize = view.getUint32(offset + 20, true);
    let localOffset = view.getUint32(offset + 42, true);
    const method = view.getUint16(offset + 10, true);
    const crc = view.getUint32(offset + 16, true);
    const nameLength = view.getUint16(offset + 28, true);
    const extraLength = view.getUint16(offset + 30, true);
    const commentLength = view.getUint16(offset + 32, true);
    const external = view.getUint32(offset + 38, true);
    const nameBytes = zip.subarray(offset + 46, offset + 46 + nameLength);
    if (uncompressedSize === 0xffffffff || compressedSize === 0xffffffff || localOffset === 0xffffffff) {
      // The ZIP64 extra field lists, in this order, the sizes and the offset that do not fit 32 bits (APPNOTE 4.5.3).
      const big = zip64Fields(view, offset + 46 + nameLength, extraLength);
      if (uncompressedSize === 0xffffffff) uncompressedSize = big.shift() ?? uncompressedSize;
      if (compressedSize === 0xffffffff) compressedSize = big.shift() ?? compressedSize;
      if (localOffset === 0xffffffff) localOffset = big.shift() ?? localOffset;
    }
    // Bit 11: the name is UTF-8; else it is CP437, read byte by byte as fflate does, so the names match its output.
    const name = (flags & 0x800) !== 0 ? utf8.decode(nameBytes) : String.fromCharCode(...nameBytes);
    checkEntryName(name);
    const unixMode = host === HOST_UNIX ? external >>> 16 : 0;
    const mode = unixMode !== 0 ? unixMode : undefined;
    const isDirectory = name.endsWith('/') || (mode !== undefined ? (mode & S_IFMT) === S_IFDIR : (external & DOS_DIRECTORY) !== 0);
    const isSymlink = mode !== undefined && (mode & S_IFMT) === S_IFLNK;
    if (!isDirectory && method !== 0 && method !== 8) throw new Error(`zip entry ${JSON.stringify(name)} uses compression method ${method}; only stored (0) and deflate (8) are supported`);
    entries.push({ name, mode, isDirectory, isSymlink, uncompressedSize, method, crc32: crc, compressedSize, localOffset });
    offset += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

function findEndOfCentralDirectory(zip: Uint8Array, view: DataView): number {
  const lowest = Math.max(0, zip.length - 22 - 0xffff);
  for (let at = zip.length - 22; at >= lowest; at--) {
    if (view.getUint32(at, true) === 0x06054b50) return at;
  }
  throw new Error('not a valid zip file: end of central directory not found');
}

function zip64Fields(view: DataView, extraStart: number, extraLength: number): number[] {
  for (let at = extraStart; at + 4 <= extraStart + extraLength;) {
    const id = view.getUint16(at, true);
    const size = view.getUint16(at + 2, true);
    if (id === 0x0001) {
      const out: number[] = [];
      for (let f = at + 4; f + 8 <= at + 4 + size; f += 8) out.push(Number(view.getBigUint64(f, true)));
      return out;
    }
    at += 4 + size;
  }
  return [];
}

/**
 * The bytes of one entry, inflated to at most its declared size and checked
 * against its CRC-32: a zip whose headers lie about its sizes (a zip bomb)
 * fails here instead of inflating without end.
 */
function entryData(zip: Uint8Array, e: ZipEntry): Buffer {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  if (e.localOffset + 30 > zip.length || view.getUint32(e.localOffset, true) !== 0x04034b50) {
    throw new Error(`not a valid zip file: the local header of ${JSON.stringify(e.name)} is damaged`);
  }
  const start = e.localOffset + 30 + view.getUint16(e.localOffset + 26, true) + view.getUint16(e.localOffset + 28, true);
  if (start + e.compressedSize > zip.length) throw new Error(`not a valid zip file: ${JSON.stringify(e.name)} runs past the end of the file`);
  const raw = zip.subarray(start, start + e.compressedSize);
  let data: Buffer;
  if (e.method === 0) {
    data = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  } else {
    try {
      data = inflateRawSync(raw, { maxOutputLength: Math.max(1, e.uncompressedSize) });
    } catch (err) {
      throw new Error(`not a valid zip file: ${JSON.stringify(e.name)} does not inflate to its declared ${e.uncompressedSize} bytes (${(err as Error).message})`);
    }
  }
  if (data.length !== e.uncompressedSize || (crc32(data) >>> 0) !== e.crc32) {
    throw new Error(`not a valid zip file: ${JSON.stringify(e.name)} does not match its declared size or CRC-32`);
  }
  return data;
}

/** Throws when a zip entry's name would land outside the folder it is extracted to (zip-slip). */
function checkEntryName(name: string): void {
  if (name.length === 0 || name.includes('\0')) throw new Error(`unsafe zip entry name ${JSON.stringify(name)}: empty or contains NUL`);
  if (name.startsWith('/') || name.startsWith('\\') || /^[A-Za-z]:/.test(name)) {
    throw new Error(`unsafe zip entry name ${JSON.stringify(name)}: absolute paths are not allowed`);
  }
  if (name.split(/[/\\]/).includes('..')) {
    throw new Error(`unsafe zip entry name ${JSON.stringify(name)}: ".." path segments are not allowed (zip-slip)`);
  }
}

/**
 * Extracts `zip` into `dir` (which must not exist yet) and makes the tree
 * read-only: files 0444, or 0555 when the zip marks them executable; folders
 * 0555. Symbolic links are kept when they point inside the tree and refused
 * otherwise. Throws an Error on a damaged zip, an unsafe entry name, or code
 * over MAX_UNZIPPED_BYTES; the caller removes the half-written `dir`.
 */
export function extractZip(zip: Uint8Array, dir: string): void {
  const entries = readZipEntries(zip);
  let total = 0;
  for (const e of entries) total += e.uncompressedSize;
  if (total > MAX_UNZIPPED_BYTES) {
    throw new Error(`unzipped code is ${total} bytes, over the ${MAX_UNZIPPED_BYTES}-byte limit`);
  }
  const root = resolve(dir);
  mkdirSync(root, { mode: 0o700 });
  const dirs = new Set<string>([root]);
  const modes = new Map<string, number>();
  for (const e of entries) {
    const target = resolve(root, e.name);
    if (target !== root && !target.startsWith(root + sep)) {
      throw new Error(`unsafe zip entry name ${JSON.stringify(e.name)}: resolves outside the code folder`);
    }
    if (e.isDirectory) {
      makeDirs(target, dirs);
      continue;
    }
    const data = entryData(zip, e);
    makeDirs(dirname(target), dirs);
    if (e.isSymlink) {
      const link = new TextDecoder().decode(data);
      const pointsTo = resolve(dirname(target), link);
      if (isAbsolute(link) || (pointsTo !== root && !pointsTo.startsWith(root + sep))) {
        throw new Error(`unsafe zip entry ${JSON.stringify(e.name)}: symbolic link to ${JSON.stringify(link)} leaves the code folder`);
      }
      symlinkSync(relative(dirname(target), pointsTo) || '.', target);
      continue;
    }
    writeFileSync(target, data, { mode: 0o600, flag: 'w' });
    modes.set(target, e.mode !== undefined && (e.mode & 0o111) !== 0 ? 0o555 : 0o444);
  }
  for (const [file, mode] of modes) chmodSync(file, mode);
  // Deepest folders first, so a parent is still writable while its children change.
  for (const d of [...dirs].sort((a, b) => b.length - a.length)) chmodSync(d, 0o555);
}

function makeDirs(dir: string, made: Set<string>): void {
  if (made.has(dir)) return;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // Remember every level so each one is made read-only at the end.
  for (let d = dir; !made.has(d); d = dirname(d)) made.add(d);
}

/** Removes a tree that may contain read-only folders (as extracted code does). Never throws when it is gone. */
export function removeTree(path: string): void {
  try {
    makeWritable(path);
  } catch {
    // Missing or not ours: rmSync below reports what matters.
  }
  rmSync(path, { recursive: true, force: true });
}

function makeWritable(path: string): void {
  chmodSync(path, 0o700);
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    if (entry.isDirectory()) makeWritable(join(path, entry.name));
  }
}
