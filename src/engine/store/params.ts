/**
 * Named parameters of a statement: rows passed to unnest() as one array per column, and single values.
 * Each is numbered here, once, so a statement's text and its values cannot disagree on a number: the text
 * takes `sql.<name>`, the call passes `values({ <name>: ... })`.
 */

/** A column of rows passed to unnest(): its name in the statement, its Postgres type, its value in a row. */
export type Column<R> = readonly [name: string, pgType: string, value: (row: R) => unknown];

export interface Param<A> {
  /** How many $n it takes. */
  readonly size: number;
  /** Its text, numbered from $first. */
  text(first: number): string;
  /** Appends its values, in the order of its numbers. */
  push(arg: A, values: unknown[]): void;
}

/** Rows, one array per column: `unnest($n::type[], ...) AS alias(name, ...)`. */
export function rowsOf<R>(alias: string, columns: readonly Column<R>[]): Param<readonly R[]> {
  return {
    size: columns.length,
    text: (first) => {
      const types = columns.map(([, type]) => type);
      return `${unnest(types, first)} AS ${alias}(${columns.map(([name]) => name).join(', ')})`;
    },
    push: (rows, values) => {
      for (const [, , value] of columns) values.push(rows.map(value));
    },
  };
}

/**
 * Rows whose column arrays are built elsewhere, in these columns' order (logColumns):
 * `unnest($n::type[], ...)`.
 */
export function columnArrays(pgTypes: readonly string[]): Param<readonly unknown[]> {
  return {
    size: pgTypes.length,
    text: (first) => unnest(pgTypes, first),
    push: (arrays, values) => {
      if (arrays.length !== pgTypes.length)
        throw new Error(`${arrays.length} column arrays for an unnest of ${pgTypes.length} columns`);
      values.push(...arrays);
    },
  };
}

/** `unnest($first::type[], ...)`. */
function unnest(pgTypes: readonly string[], first: number): string {
  return `unnest(${pgTypes.map((type, i) => `$${first + i}::${type}[]`).join(', ')})`;
}

/** One value: `$n`. */
export function value<T>(): Param<T> {
  return { size: 1, text: (first) => `$${first}`, push: (v, values) => void values.push(v) };
}

type ArgsOf<S> = { [K in keyof S]: S[K] extends Param<infer A> ? A : never };

/** Numbers the parameters in the order given: their texts for the statement, and its values. */
export function statementParams<S extends Record<string, Param<never>>>(
  spec: S,
): { sql: { readonly [K in keyof S]: string }; values(args: ArgsOf<S>): unknown[] } {
  const sql: Record<string, string> = {};
  let next = 1;
  for (const [name, p] of Object.entries(spec)) {
    sql[name] = p.text(next);
    next += p.size;
  }
  const names = Object.keys(spec) as Array<keyof S & string>;
  return {
    sql: sql as { [K in keyof S]: string },
    values(args) {
      const values: unknown[] = [];
      for (const name of names) (spec[name] as Param<unknown>).push(args[name], values);
      return values;
    },
  };
}
