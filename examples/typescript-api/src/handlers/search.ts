/**
 * GET /search?q=<text>&limit=<n>: the fruits whose name contains `q` (any
 * case), at most `limit` of them (1–50, default 10). Without `q`, all fruits.
 */
import type { HttpApiHandler } from '../types.js';
import { error, json } from '../lib/http.js';

const FRUITS: readonly string[] = [
  'apple', 'apricot', 'banana', 'blackberry', 'blueberry', 'cherry', 'grape', 'grapefruit',
  'kiwi', 'lemon', 'lime', 'mango', 'melon', 'orange', 'papaya', 'peach', 'pear', 'pineapple',
  'plum', 'raspberry', 'strawberry', 'watermelon',
];

const DEFAULT_LIMIT = 10;
const MAX_LIMIT = 50;

export const handler: HttpApiHandler = async (event) => {
  const params = event.queryStringParameters ?? {};
  const q = (params.q ?? '').trim().toLowerCase();
  let limit = DEFAULT_LIMIT;
  if (params.limit !== undefined) {
    limit = /^\d+$/.test(params.limit) ? Number(params.limit) : NaN;
    if (!(limit >= 1 && limit <= MAX_LIMIT)) {
      return error(400, `limit must be a whole number from 1 to ${MAX_LIMIT}, got ${JSON.stringify(params.limit)}`);
    }
  }
  const matches = q ? FRUITS.filter((f) => f.includes(q)) : FRUITS;
  return json(200, { query: q, limit, total: matches.length, results: matches.slice(0, limit) });
};
