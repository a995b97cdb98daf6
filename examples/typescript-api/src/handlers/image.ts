/**
 * GET /image.png: a binary response. A function returns binary data as base64
 * with `isBase64Encoded: true`; the HTTP API decodes it before sending.
 * https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html#http-api-develop-integrations-lambda.response
 */
import type { HttpApiHandler, HttpApiResult } from '../types.js';

/** An 8x8 RGBA PNG (89 bytes): a white cloud on a blue sky. */
const CLOUD_PNG_BASE64 =
  'iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAYAAADED76LAAAAIElEQVR42mPwmvDoPz7MQJICGMCqAB2gKMAFiFdAkS8Aa17FU+mAyh0AAAAASUVORK5CYII=';

const RESULT: HttpApiResult = {
  statusCode: 200,
  headers: { 'content-type': 'image/png', 'cache-control': 'public, max-age=86400' },
  body: CLOUD_PNG_BASE64,
  isBase64Encoded: true,
};

export const handler: HttpApiHandler = async () => RESULT;
