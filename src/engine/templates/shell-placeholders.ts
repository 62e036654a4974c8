/** How a rendered shell command marks its values, and what the shell-safety code shares. */

/** Placeholders stand for values in the rendered text: U+E000, the value's index, U+E001 (private use). */
export const PLACEHOLDER_START = '\uE000';
export const PLACEHOLDER_END = '\uE001';
export const PLACEHOLDER = /\uE000(\d+)\uE001/g;

export type Dialect = 'bash' | 'sh';

export class UnsafeTemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsafeTemplateError';
  }
}

export interface QuotedCommand {
  /** The command with every placeholder replaced by a reference to its variable. */
  script: string;
  /** Indexes of values that sit in arithmetic: they must be integers. */
  integers: Set<number>;
}

export interface QuoteOptions {
  /** The variable that holds value `index`. */
  name(index: number): string;
  /**
   * Lines that set the variables of these values in a shell of its own (values kept in files, which an inner
   * `sh -c` must read itself: they are too large for its environment).
   */
  readInInnerShell(indexes: number[]): string;
}

/** Every placeholder index in the text, in order. */
export function placeholdersIn(text: string): number[] {
  return [...text.matchAll(PLACEHOLDER)].map((m) => Number(m[1]));
}
