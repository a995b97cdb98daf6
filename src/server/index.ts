/** The composition root. */
export { Platform, type PlatformOptions } from './platform.js';
export { DevServer, describeService, type DevOptions } from './dev.js';
