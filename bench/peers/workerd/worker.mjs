// Cloudflare module worker: the same hello JSON (copied from ../shared/bench-peers/workerd/worker.mjs).
export default {
  async fetch(request) {
    const url = new URL(request.url);
    return new Response(JSON.stringify({ message: 'hello', path: url.pathname }), {
      headers: { 'content-type': 'application/json' },
    });
  },
};
