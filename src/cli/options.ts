import { InvalidArgumentError } from 'commander';

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
