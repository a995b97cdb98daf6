/** Persistence: the Store interface and its embedded SQLite implementation. */
export * from './types.js';
export { openSqliteStore } from './sqlite.js';
export { removeTree } from './zip.js';
