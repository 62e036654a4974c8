/**
 * Templating of task arguments with nunjucks (Jinja syntax, familiar to Airflow users): {{ conf.name }},
 * {{ run_id }}, {{ ds }}, {{ outputs.some_task }}. Templates run sandboxed (sandbox.ts). Here they render to
 * text: conf strings, container environments, URLs of custom operators. Shell commands render through
 * shell-command.ts, which passes every value to the shell as data.
 */
import type { RunInfo } from '../operators/types.js';
import { addFilter, isTemplate, renderWith, textOf } from './sandbox.js';

/** Quotes a value for safe use as one bash word. */
export function shquote(v: unknown): string {
  const s = typeof v === 'string' ? v : (JSON.stringify(v) ?? '');
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * What `| shquote` gives: the quoted word in text, the bare value in a shell command (where every value is
 * passed as one word of data already, so the quotes would only be printed).
 */
export class Quoted {
  constructor(readonly value: unknown) {}
  toString(): string {
    return shquote(this.value);
  }
}

/** What `| shell_code` gives: text the DAG author wants pasted into a shell command as code, as it is. */
export class ShellCode {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

addFilter('shquote', (v: unknown) => new Quoted(v));
addFilter('json', (v: unknown) => JSON.stringify(v));
addFilter('shell_code', (v: unknown) => new ShellCode(textOf(v)));

export function templateContext(run: RunInfo): Record<string, unknown> {
  const iso = run.logicalDate.toISOString();
  return {
    conf: run.conf,
    params: run.conf,
    dag_run: { conf: run.conf, run_id: run.runId, logical_date: iso },
    run_id: run.runId,
    dag_id: run.dagId,
    task_id: run.taskId,
    try_number: run.tryNumber,
    logical_date: iso,
    ts: iso,
    ds: iso.slice(0, 10),
    ds_nodash: iso.slice(0, 10).replaceAll('-', ''),
    outputs: Object.fromEntries(run.outputs),
    // A mapped task's item is a value like conf: in a shell command it is passed as data, never as code.
    ...(run.mapIndex === undefined ? {} : { item: run.item, map_index: run.mapIndex }),
    ...run.templateVars,
  };
}

/** Renders a template to text (values written as they are). */
export function render(template: string, context: Record<string, unknown>): string {
  if (!isTemplate(template)) return template;
  return renderWith(template, context, textOf);
}

/** Renders every string inside a JSON value (object keys stay as they are). */
export function renderDeep(value: unknown, context: Record<string, unknown>): unknown {
  if (typeof value === 'string') return render(value, context);
  if (Array.isArray(value)) return value.map((v) => renderDeep(v, context));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renderDeep(v, context)]));
  }
  return value;
}
