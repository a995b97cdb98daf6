/**
 * Event sources: the asynchronous invocation queue with its destinations and
 * dead-letter queue (async-queue.ts, destinations.ts), and schedules
 * (`rate(...)` / `cron(...)`: cron.ts, schedule.ts, scheduler.ts).
 */
export * from './async-queue.js';
export * from './destinations.js';
export * from './cron.js';
export * from './schedule.js';
export * from './scheduler.js';
export * from './queues.js';
export * from './topics.js';
