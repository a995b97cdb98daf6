import { InvalidArgumentError, type Command } from 'commander';

/** A commander parser for a port or count: a whole number ≥ 0. */
export function intOption(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${flag} takes a whole number of 0 or more, got "${value}"`);
    return n;
  };
}

/** A commander parser for a positive number (seconds, shares). */
export function numberOption(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${flag} takes a number above 0, got "${value}"`);
    return n;
  };
}

/** A commander parser for a TCP port (0 picks a free one). */
export function portOption(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`${flag} takes a port from 0 to 65535, got "${value}"`);
    return n;
  };
}

/** A commander parser for a list of whole milliseconds: `100,200`. */
export function msList(flag: string): (value: string) => number[] {
  return (value) => {
    const list = value.split(',').map(Number);
    if (list.some((n) => !Number.isInteger(n) || n < 0)) throw new InvalidArgumentError(`${flag} takes whole milliseconds separated by commas, got "${value}"`);
    return list;
  };
}

/** The instance and scaling options `nimbus dev` and `nimbus server` share, as parsed. */
export interface InstanceCliOptions {
  keepAlive: number; warmPool: number; hostMemoryShare: number; maxQueueWait: number; accountConcurrency: number; asyncRetryDelays?: number[];
}

/** Adds the instance and scaling options (keep-alive, warm pool, memory share, queue wait, account concurrency, async retries). */
export function instanceOptions(cmd: Command, warmPoolDefault: number): Command {
  return cmd
    .option('--keep-alive <seconds>', 'an idle instance retires after this long', numberOption('--keep-alive'), 300)
    .option('--warm-pool <count>', 'pre-warmed runtime processes kept per language and code folder (0: none)', intOption('--warm-pool'), warmPoolDefault)
    .option('--host-memory-share <share>', 'share of host memory the memorySize of live instances may add up to (above 1 overcommits)', numberOption('--host-memory-share'), 0.8)
    .option('--max-queue-wait <ms>', 'longest an invocation waits for an instance at a limit before it is throttled', intOption('--max-queue-wait'), 3000)
    .option('--account-concurrency <count>', 'most instances of a function without reservedConcurrency', intOption('--account-concurrency'), 1000)
    .option('--async-retry-delays <ms,...>', 'waits before retries of failed asynchronous invocations (default Lambda\'s 60000,120000)', msList('--async-retry-delays'));
}

/** The platform settings of the instance options. */
export function instanceSettings(o: InstanceCliOptions) {
  return {
    keepAliveMs: o.keepAlive * 1000, warmPoolSize: o.warmPool, hostMemoryShare: o.hostMemoryShare, maxQueueWaitMs: o.maxQueueWait,
    accountConcurrency: o.accountConcurrency, ...(o.asyncRetryDelays ? { asyncRetryDelaysMs: o.asyncRetryDelays } : {}),
  };
}
