// @ts-check
// A handler the Node runtime imports and invokes once while a pooled process
// waits for INIT (see warmUp in bootstrap.mjs), so that V8 has compiled the
// runtime's code paths before the first real invocation. Never a function's code.

/** @param {any} event @param {any} context */
export const handler = async (event, context) => {
  console.log('warm-up', event.rawPath);
  return {
    statusCode: 200,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ path: event.rawPath, id: context.awsRequestId, left: context.getRemainingTimeInMillis() > 0 }),
  };
};
