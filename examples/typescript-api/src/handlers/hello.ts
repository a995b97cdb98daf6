/** GET /hello: the smallest useful handler (the benchmark's target): no work, one constant body. */
import type { HttpApiHandler, HttpApiResult } from '../types.js';

const RESULT: HttpApiResult = {
  statusCode: 200,
  headers: { 'content-type': 'application/json' },
  body: '{"message":"hello"}',
};

export const handler: HttpApiHandler = async () => RESULT;
