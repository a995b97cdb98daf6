/**
 * Who may call the control API of `nimbus server`.
 *
 * Two kinds of credentials are accepted:
 * - `Authorization: Bearer <admin token>`: the token `nimbus server` writes to
 *   `<data dir>/admin-token` and prints at its first start (the CLI and the
 *   dashboard use it);
 * - AWS Signature Version 4 with one of the server's access keys, as the AWS
 *   SDKs and CLI sign requests (sigv4.ts;
 *   https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html).
 *
 * Refusals have the shape of Lambda's (status, `x-amzn-ErrorType`, message),
 * so AWS clients raise the usual exceptions:
 *
 * | status | error type | when |
 * |---|---|---|
 * | 401 | MissingAuthenticationTokenException | no `Authorization` header, or an unknown scheme |
 * | 403 | AccessDeniedException | a bearer token that is not the admin token |
 * | 403 | IncompleteSignatureException | a malformed SigV4 header or a missing `X-Amz-Date` |
 * | 403 | UnrecognizedClientException | an access key id the server does not know |
 * | 403 | InvalidSignatureException | a wrong signature (wrong secret, changed request), or a date over 15 minutes off |
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { SigningKeyCache, verifySigV4, type HeaderValues } from './sigv4.js';

/** The credentials a server accepts. */
export interface ControlCredentials {
  /** The admin token (sent as `Authorization: Bearer <token>`). An empty token accepts no bearer at all. */
  readonly adminToken: string;
  /** Access key id → secret access key, for AWS Signature Version 4. */
  readonly accessKeys: ReadonlyMap<string, string>;
}

/** Who made an accepted request. */
export type Principal =
  | { readonly kind: 'admin' }
  | { readonly kind: 'access-key'; readonly accessKeyId: string };

/** The decision on one request: accepted (with who), or refused with Lambda's error shape. */
export type AuthDecision =
  | { readonly ok: true; readonly principal: Principal }
  | { readonly ok: false; readonly status: 401 | 403; readonly errorType: string; readonly message: string };

/** Decides whether a request to the control API may proceed. Never throws. */
export interface Authenticator {
  /**
   * @param method the request method (`GET`, `POST`, …)
   * @param url the raw request target as received (`/2015-03-31/functions?Marker=…`), not decoded
   * @param headers lower-case header names; repeated headers as arrays (`req.headersDistinct`)
   * @param body the whole request body (SigV4 signs its SHA-256)
   */
  authenticate(method: string, url: string, headers: HeaderValues, body: Uint8Array): AuthDecision;
}

/** Settings of an authenticator. */
export interface AuthenticatorOptions {
  /** Where the admin token is kept, for the refusal messages (default `<data dir>/admin-token`). */
  readonly tokenFile?: string;
  /** The clock (epoch ms), for the SigV4 date check; injected by tests. */
  readonly now?: () => number;
}

/**
 * An Authenticator accepting the admin token or a SigV4 signature by one of
 * `credentials.accessKeys`. Tokens and signatures are compared in constant
 * time; the bearer comparison hashes both sides first, so not even the
 * token's length shows in the timing.
 */
export function createAuthenticator(credentials: ControlCredentials, options: AuthenticatorOptions = {}): Authenticator {
  const tokenFile = options.tokenFile ?? '<data dir>/admin-token';
  const now = options.now ?? Date.now;
  const adminDigest = credentials.adminToken === '' ? null : sha256(credentials.adminToken);
  const keys = new Map(credentials.accessKeys);
  const cache = new SigningKeyCache();
  const howTo = `send the admin token as \`Authorization: Bearer <token>\` (it is in ${tokenFile}, printed when the server first started), `
    + 'or sign the request with AWS Signature Version 4 using one of the server\'s access keys';

  return {
    authenticate(method, url, headers, body) {
      const raw = headers.authorization;
      const header = (typeof raw === 'string' ? raw : raw?.[0] ?? '').trim();
      if (header === '') {
        return refuse(401, 'MissingAuthenticationTokenException', `Missing Authentication Token: ${howTo}.`);
      }
      const space = header.indexOf(' ');
      const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
      if (scheme === 'bearer') {
        const token = header.slice(space + 1).trim();
        if (adminDigest !== null && token !== '' && timingSafeEqual(sha256(token), adminDigest)) {
          return { ok: true, principal: { kind: 'admin' } };
        }
        return refuse(403, 'AccessDeniedException', `The bearer token is not this server's admin token: ${howTo}.`);
      }
      if (scheme === 'aws4-hmac-sha256') {
        const r = verifySigV4({ method, url, headers, body }, (id) => keys.get(id), now(), cache);
        if (r.ok) return { ok: true, principal: { kind: 'access-key', accessKeyId: r.accessKeyId } };
        switch (r.reason) {
          case 'malformed': return refuse(403, 'IncompleteSignatureException', r.message);
          case 'unknown-key': return refuse(403, 'UnrecognizedClientException', r.message);
          default: return refuse(403, 'InvalidSignatureException', r.message);
        }
      }
      return refuse(401, 'MissingAuthenticationTokenException', `Unsupported Authorization scheme ${JSON.stringify(scheme)}: ${howTo}.`);
    },
  };
}

function refuse(status: 401 | 403, errorType: string, message: string): AuthDecision {
  return { ok: false, status, errorType, message };
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}
