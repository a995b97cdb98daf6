/**
 * GET /users/{id}: one user, or 404.
 * POST /users: creates a user from {"name", "email"}: 201 with the user, 400 when the body is not valid.
 */
import { randomUUID } from 'node:crypto';
import type { HttpApiHandler } from '../types.js';
import { BadRequest, error, json, readJson } from '../lib/http.js';
import { users, validateNewUser, type User } from '../lib/users.js';

export const get: HttpApiHandler = async (event) => {
  const id = event.pathParameters?.id ?? '';
  const user = users.get(id);
  return user ? json(200, user) : error(404, `no user with id ${JSON.stringify(id)}`);
};

export const create: HttpApiHandler = async (event) => {
  let input: unknown;
  try {
    input = readJson(event);
  } catch (e) {
    if (e instanceof BadRequest) return error(400, e.message);
    throw e;
  }
  const valid = validateNewUser(input);
  if (!valid.ok) return json(400, { message: 'invalid user', errors: valid.errors });
  const user: User = { id: randomUUID(), name: valid.name, email: valid.email };
  users.set(user.id, user);
  console.log(`created user ${user.id}`);
  return json(201, user, { location: `/users/${user.id}` });
};
