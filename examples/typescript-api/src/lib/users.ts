/**
 * The users "database": a map held in memory by each function instance.
 * Like any global of a Lambda function it lives as long as the warm instance,
 * is not shared between instances or functions, and is gone on a cold start.
 */
export interface User {
  readonly id: string;
  readonly name: string;
  readonly email: string;
}

export const users: Map<string, User> = new Map([
  ['1', { id: '1', name: 'Ada Lovelace', email: 'ada@example.com' }],
  ['2', { id: '2', name: 'Alan Turing', email: 'alan@example.com' }],
  ['3', { id: '3', name: 'Grace Hopper', email: 'grace@example.com' }],
]);

/** The fields a new user must have, checked; a list of what is wrong otherwise. */
export function validateNewUser(input: unknown): { ok: true; name: string; email: string } | { ok: false; errors: string[] } {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    return { ok: false, errors: ['the body must be a JSON object like {"name": "...", "email": "..."}'] };
  }
  const { name, email } = input as Record<string, unknown>;
  const errors: string[] = [];
  if (typeof name !== 'string' || name.trim() === '') errors.push('name: required, a non-empty string');
  else if (name.trim().length > 100) errors.push('name: at most 100 characters');
  if (typeof email !== 'string') errors.push('email: required, a string');
  else if (!/^[^\s@]+@[^\s@]+$/.test(email.trim())) errors.push('email: not an email address (want local@domain)');
  if (errors.length) return { ok: false, errors };
  return { ok: true, name: (name as string).trim(), email: (email as string).trim() };
}
