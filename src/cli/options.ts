import { InvalidArgumentError } from 'commander';

/** A commander parser for a port or count: a whole number ≥ 0. */
export function intOption(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`${flag} takes a whole number from 0 to 65535, got "${value}"`);
    return n;
  };
}
