/**
 * Templating of task arguments with nunjucks (Jinja syntax, familiar to Airflow users):
 * {{ conf.name }}, {{ run_id }}, {{ ds }}, {{ outputs.some_task }}, {{ conf.msg | shquote }}.
 */
import nunjucks from 'nunjucks';
import type { RunInfo } from './operators/types.js';

// Comments are {## ... ##}, not Jinja's {# #}: bash's ${#var} (length) must pass through untouched.
const env = new nunjucks.Environment(null, {
  autoescape: false,
  throwOnUndefined: false,
  tags: { commentStart: '{##', commentEnd: '##}' },
});

/** Quotes a value for safe use as one bash word. */
export function shquote(v: unknown): string {
  const s = typeof v === 'string' ? v : (JSON.stringify(v) ?? '');
  return `'${s.replaceAll("'", `'\\''`)}'`;
}
env.addFilter('shquote', shquote);
env.addFilter('json', (v: unknown) => JSON.stringify(v));

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
    ...run.templateVars,
  };
}

export function render(template: string, context: Record<string, unknown>): string {
  if (!template.includes('{{') && !template.includes('{%') && !template.includes('{##')) return template;
  return env.renderString(template, context);
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
