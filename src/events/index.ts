/**
 * Event sources: schedules (`rate(...)` / `cron(...)`: cron.ts, schedule.ts, scheduler.ts).
 */
export * from './cron.js';
export * from './schedule.js';
export * from './scheduler.js';
