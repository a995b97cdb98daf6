/** The API gateway: routing, API Gateway payload formats 1.0 / 2.0, response mapping, CORS, body limits. */
export { Gateway, MAX_SYNC_PAYLOAD_BYTES, INTEGRATION_TIMEOUT_MS, type Invoker, type GatewayOptions, type GatewayService } from './server.js';
export { Router, type RouteMatch } from './router.js';
export { buildEventV1, buildEventV2, parseQuery, clfTime, routeKey, type IncomingRequest } from './events.js';
export { mapResult, type GatewayResponse } from './responses.js';
