// What every CLI command provides: its flags (node:util parseArgs), a one-line summary, and run().
import type { ParseArgsConfig } from 'node:util';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export type ParsedValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

export interface Command {
  summary: string;
  /** Usage lines shown by `lora-studio COMMAND --help` (flags with their meaning). */
  usage: string;
  options: OptionSpec;
  /** `values` holds the parsed flags; `positionals` the words after the command. Returns the exit code. */
  run(values: ParsedValues, positionals: string[]): Promise<number>;
}

/** An error whose message is meant for the user as it is: printed without a stack trace. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function str(v: unknown, flag: string, fallback?: string): string {
  if (typeof v === 'string') return v;
  if (fallback !== undefined) return fallback;
  throw new UsageError(`--${flag} is required`);
}

export function num(v: unknown, flag: string, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n))
    throw new UsageError(`--${flag} wants a number, got "${String(v)}"`);
  return n;
}

export function int(v: unknown, flag: string, fallback: number): number {
  const n = num(v, flag, fallback);
  if (!Number.isInteger(n)) throw new UsageError(`--${flag} wants a whole number, got "${String(v)}"`);
  return n;
}
