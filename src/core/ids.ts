import { randomUUID } from 'node:crypto';

/** A Lambda-style request id (a UUID v4). */
export function newRequestId(): string {
  return randomUUID();
}
