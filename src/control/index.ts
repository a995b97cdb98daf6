/**
 * The control plane: Lambda's Invoke API and the health check (dev); with
 * `nimbus server` also Lambda's management API, Nimbus's own `/_/` endpoints
 * (deploys) and authentication (admin token or AWS SigV4).
 */
export {
  ControlServer, functionNameOf, MAX_INVOKE_PAYLOAD_BYTES, MAX_ASYNC_PAYLOAD_BYTES, MAX_NIMBUS_API_BYTES,
  type ControlBackend, type ControlInvocationResult, type ControlRoutes, type LambdaManagementHandler,
} from './lambda-api.js';
export {
  LambdaManagementApi, lambdaOperation, NIMBUS_ACCOUNT_ID, MAX_ZIP_BYTES, MAX_CODE_REQUEST_BYTES,
  type LambdaApiOptions, type LambdaApiResponse, type LambdaChange, type LambdaOperation,
} from './lambda-rest.js';
export { createAuthenticator, type Authenticator, type AuthDecision, type AuthenticatorOptions, type ControlCredentials, type Principal } from './auth.js';
export { handleNimbusApi, type DeployManifest, type DeployResult, type NimbusApiBackend, type ServiceInfo, type DeployFunctionConfig } from './nimbus-api.js';
export { packageService, bundlePath, DEFAULT_EXCLUDES, type ServicePackage } from './package.js';
export { handleMessagingApi, isMessagingRequest, MessagingError, type MessagingBackend } from './messaging-api.js';
