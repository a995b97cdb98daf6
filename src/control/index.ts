/** The control plane: Lambda's Invoke API and the health check (dev); deploys come with `nimbus server`. */
export { ControlServer, functionNameOf, MAX_INVOKE_PAYLOAD_BYTES, MAX_ASYNC_PAYLOAD_BYTES, type ControlBackend } from './lambda-api.js';
