export const quick = async () => ({ statusCode: 200, body: 'ok' });
