/** A trigger form generated from the DAG's params schema; the server validates as `trigger dag` does. */
import { useEffect, useState } from 'preact/hooks';
import { ApiError, enc, getJson, post } from './api.js';
import { ErrorLine } from './util.js';

interface Param {
  name: string;
  type: string;
  required: boolean;
  default?: unknown;
  description?: string;
}

export function TriggerForm({ dagId, onClose }: { dagId: string; onClose: () => void }) {
  const [params, setParams] = useState<Param[] | null>(null);
  const [values, setValues] = useState<Record<string, string | boolean>>({});
  const [extra, setExtra] = useState('');
  const [error, setError] = useState<{ message: string; field?: string } | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    getJson<{ paramList: Param[] }>(`/api/v1/dags/${enc(dagId)}`).then((d) => {
      setParams(d.paramList);
      const init: Record<string, string | boolean> = {};
      for (const p of d.paramList)
        init[p.name] =
          p.type === 'boolean'
            ? p.default === true
            : p.default === undefined
              ? ''
              : typeof p.default === 'string'
                ? p.default
                : JSON.stringify(p.default);
      setValues(init);
    });
  }, [dagId]);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const conf: Record<string, unknown> = extra.trim()
        ? (JSON.parse(extra) as Record<string, unknown>)
        : {};
      for (const p of params ?? []) {
        const v = values[p.name];
        if (v === '' || v === undefined) continue;
        if (p.type === 'boolean') conf[p.name] = v;
        else if (p.type === 'integer' || p.type === 'number') conf[p.name] = Number(v);
        else if (p.type === 'string') conf[p.name] = v;
        else conf[p.name] = JSON.parse(String(v));
      }
      const r = await post<{ runId: string }>(`/api/v1/dags/${enc(dagId)}/runs`, { conf });
      onClose();
      location.hash = `#/runs/${enc(r.runId)}`;
    } catch (err) {
      setError(
        err instanceof ApiError
          ? { message: err.message, field: err.field }
          : { message: (err as Error).message },
      );
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="modal-back">
      <form class="modal trigger" onSubmit={submit} data-testid="trigger-form">
        <h2>Trigger {dagId}</h2>
        {params === null && <p class="muted">loading…</p>}
        {params?.map((p) => (
          <label key={p.name} class="field">
            <span>
              {p.name}
              {p.required ? ' *' : ''} <span class="muted">({p.type})</span>
            </span>
            {p.type === 'boolean' ? (
              <input
                type="checkbox"
                name={p.name}
                checked={values[p.name] === true}
                onChange={(e) => setValues({ ...values, [p.name]: (e.target as HTMLInputElement).checked })}
              />
            ) : (
              <input
                name={p.name}
                {...(p.type === 'integer' || p.type === 'number'
                  ? { type: 'number' as const, step: p.type === 'number' ? 'any' : '1' }
                  : { type: 'text' as const })}
                value={String(values[p.name] ?? '')}
                onInput={(e) => setValues({ ...values, [p.name]: (e.target as HTMLInputElement).value })}
              />
            )}
            {p.description && <small class="muted">{p.description}</small>}
          </label>
        ))}
        <label class="field">
          <span>
            More conf <span class="muted">(JSON object, optional)</span>
          </span>
          <textarea
            name="conf"
            rows={3}
            value={extra}
            onInput={(e) => setExtra((e.target as HTMLTextAreaElement).value)}
            placeholder='{"key": "value"}'
          />
        </label>
        <ErrorLine error={error && (error.field ? `${error.field}: ${error.message}` : error.message)} />
        <div class="actions">
          <button type="submit" class="primary" disabled={busy} data-testid="trigger-submit">
            Trigger run
          </button>
          <button type="button" onClick={onClose}>
            Cancel
          </button>
        </div>
      </form>
    </div>
  );
}
