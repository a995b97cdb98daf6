/** Shared types and the error catalogue. Imports nothing from src/. */
export * from './types.js';
export * from './errors.js';
export * from './ids.js';
export * from './serve.js';
