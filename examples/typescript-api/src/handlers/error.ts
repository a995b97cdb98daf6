/**
 * GET /error: always throws. The invocation ends in an error, and the gateway
 * answers as an HTTP API does: 500 {"message":"Internal Server Error"}. The
 * error and its stack go to the function's log, never to the client.
 */
import type { HttpApiHandler } from '../types.js';

export const handler: HttpApiHandler = async () => {
  throw new Error('this route always fails (on purpose)');
};
