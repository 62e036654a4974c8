/** A worker's GPUs on the workers page: model and memory where it reported them, and the try holding each. */
import { enc } from './api.js';

export interface WorkerGpu {
  id: string;
  model: string | null;
  memoryMiB: number | null;
  heldBy: { runId: string; taskId: string; tryNumber: number } | null;
}

// As `airtasks status` writes it (81559 MiB -> 79.6 GiB).
const gib = (mib: number) => `${Math.round((mib / 1024) * 10) / 10} GiB`;

export function WorkerGpus({ gpus }: { gpus: WorkerGpu[] }) {
  if (gpus.length === 0) return <span class="muted">—</span>;
  return (
    <div data-testid="worker-gpus">
      {gpus.map((g) => (
        <div key={g.id} data-gpu={g.id} data-held={g.heldBy ? 'yes' : 'no'}>
          GPU {g.id}
          {g.model && ` · ${g.model}`}
          {g.memoryMiB !== null && ` · ${gib(g.memoryMiB)}`}
          {' · '}
          {g.heldBy ? (
            <span>
              held by{' '}
              <a href={`#/runs/${enc(g.heldBy.runId)}/${enc(g.heldBy.taskId)}`}>
                {g.heldBy.taskId} <span class="muted">({g.heldBy.runId})</span>
              </a>{' '}
              (try {g.heldBy.tryNumber})
            </span>
          ) : (
            <span class="muted">free</span>
          )}
        </div>
      ))}
    </div>
  );
}
