'use strict';
// AWS Lambda Node.js handler (API Gateway HTTP API payload 2.0), as in ../shared/bench-peers/sls/handler.js.
module.exports.hello = async (event) => ({
  statusCode: 200,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ message: 'hello', path: event.rawPath || event.path }),
});
