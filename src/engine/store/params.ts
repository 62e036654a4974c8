/**
 * Named parameters of a statement: rows passed to unnest() as one array per column, and single values.
 * Each is numbered here, once, so a statement's text and its values cannot disagree on a number: the text
 * takes `sql.<name>`, the call passes `values({ <name>: ... })`.
 */
import { prepared, type Prepared } from './db.js';

/** A column of rows passed to unnest(): its name in the statement, its Postgres type, its value in a row. */
export type Column<R> = readonly [name: string, pgType: string, value: (row: R) => unknown];

export interface Param<A> {
  /** How many $n it takes. */
  readonly size: number;
  /** Its text, numbered from $first. */
  text(first: number): string;
  /** Appends its values, in the order of its numbers. */
  push(arg: A, values: unknown[]): void;
  /** Rows only: the same for exactly one row, sent as scalars (see shapedStatement). */
  readonly one?: Omit<Param<A>, 'one'>;
}

/** Rows, one array per column: `unnest($n::type[], ...) AS alias(name, ...)`. */
export function rowsOf<R>(alias: string, columns: readonly Column<R>[]): Param<readonly R[]> {
  const names = columns.map(([name]) => name).join(', ');
  const types = columns.map(([, type]) => type);
  return {
    size: columns.length,
    text: (first) => `${unnest(types, first)} AS ${alias}(${names})`,
    push: (rows, values) => {
      for (const [, , value] of columns) values.push(rows.map(value));
    },
    one: {
      size: columns.length,
      // OFFSET 0: kept a subquery, its values never seen as the statement's constants (a constant state
      // would let Postgres pick a partial index: see STATE_FROM_X in claims.ts).
      text: (first) =>
        `(SELECT * FROM (VALUES (${types.map((type, i) => `$${first + i}::${type}`).join(', ')})) AS v(${names}) OFFSET 0) AS ${alias}`,
      push: (rows, values) => {
        if (rows.length !== 1) throw new Error(`${rows.length} rows for the one-row form of ${alias}`);
        for (const [, , value] of columns) values.push(value(rows[0]!));
      },
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

type SqlOf<S> = { readonly [K in keyof S]: string };

/**
 * Numbers the parameters in the order given: their texts for the statement, and its values. Row parameters
 * named in `one` take their one-row form.
 */
export function statementParams<S extends Record<string, Param<never>>>(
  spec: S,
  one: ReadonlySet<string> = new Set(),
): { sql: SqlOf<S>; values(args: ArgsOf<S>): unknown[] } {
  // Each parameter's form, chosen once: values() runs for every statement sent.
  const params = Object.keys(spec).map((name) => {
    const p = spec[name] as Param<unknown>;
    return [name, one.has(name) && p.one ? p.one : p] as const;
  });
  const sql: Record<string, string> = {};
  let next = 1;
  for (const [name, p] of params) {
    sql[name] = p.text(next);
    next += p.size;
  }
  return {
    sql: sql as SqlOf<S>,
    values(args) {
      const values: unknown[] = [];
      for (const [name, p] of params) p.push((args as Record<string, unknown>)[name], values);
      return values;
    },
  };
}

/**
 * A prepared statement in a shape per call: each row parameter named in `keyed` that holds exactly one row
 * is sent as one row of scalars (`VALUES`), not as arrays to unnest. Those rows find task rows by their key,
 * and Postgres plans an unnest as ten rows of unknown values: on a small table (a new installation, the
 * benchmarks) it then hashes them against a scan of the whole table, a cost that grows with the table,
 * where one known row is looked up by the primary key. Most of a worker's statements carry one claim or one
 * result (a chain's link, a lone task); batches keep the arrays, one statement text for any number of rows.
 */
export function shapedStatement<S extends Record<string, Param<never>>>(
  name: string,
  spec: S,
  keyed: ReadonlyArray<keyof S & string>,
  text: (sql: SqlOf<S>) => string,
): (args: ArgsOf<S>) => { statement: Prepared; values: unknown[] } {
  const shapes = new Map<string, { statement: Prepared; params: ReturnType<typeof statementParams<S>> }>();
  return (args) => {
    const one = keyed.filter((k) => (args[k] as readonly unknown[]).length === 1);
    const key = one.join(',');
    let shape = shapes.get(key);
    if (!shape) {
      const params = statementParams(spec, new Set(one));
      shape = {
        statement: prepared(one.length ? `${name}_one_${one.join('_')}` : name, text(params.sql)),
        params,
      };
      shapes.set(key, shape);
    }
    return { statement: shape.statement, values: shape.params.values(args) };
  };
}
