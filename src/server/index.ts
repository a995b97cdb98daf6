/** The composition root. */
export { Platform, type PlatformOptions } from './platform.js';
export { DevServer, describeService, type DevOptions } from './dev.js';
export { NimbusServer, type ServerOptions } from './server.js';
export { FunctionHost, type HostedFunction, type HostOptions } from './host.js';
export { loadCredentials, type AccessKey, type ServerCredentials } from './credentials.js';
