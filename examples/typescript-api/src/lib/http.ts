/** Small helpers shared by the handlers: JSON responses and JSON request bodies. */
import type { HttpApiEvent, HttpApiResult } from '../types.js';

/** A JSON response. */
export function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): HttpApiResult {
  return { statusCode, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) };
}

/** A 4xx/5xx response with a JSON `{ "message": ... }` body, as API Gateway words its own errors. */
export function error(statusCode: number, message: string): HttpApiResult {
  return json(statusCode, { message });
}

/** The request body could not be used; `message` is for the client. */
export class BadRequest extends Error {}

/**
 * The request body as parsed JSON. The gateway sends bodies whose content
 * type is not text (or is missing) base64-encoded, so those are decoded first.
 * @throws BadRequest when there is no body or it is not JSON.
 */
export function readJson(event: HttpApiEvent): unknown {
  if (event.body === undefined || event.body === '') throw new BadRequest('the request has no body; send a JSON object');
  const text = event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new BadRequest(`the request body is not valid JSON: ${(e as Error).message}`);
  }
}
