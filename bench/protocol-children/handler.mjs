/**
 * The function every Node child of bench/protocol.ts runs: the same work as
 * the temp handler given to Nimbus's real runtime (parse the event, build a
 * ~100-byte result), so only the transport differs between the rows.
 */
export const handler = async (e) => ({
  ok: true,
  n: e.n,
  statusCode: 200,
  headers: { 'content-type': 'application/json' },
  body: '{"message":"hello"}',
});
