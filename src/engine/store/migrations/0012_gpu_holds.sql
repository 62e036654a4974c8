-- Which task holds which GPU of a worker, and which tasks wait for one: the allocator lives in the worker's
-- memory, so `airtasks why`, the dashboard and /metrics could not see it. The worker writes its allocator's
-- state here whenever it changes: {"devices": [...], "held": [{ids, runId, taskId, tryNumber}],
-- "waiting": [{request, runId, taskId, tryNumber}]}; NULL for a worker that manages no GPUs.
ALTER TABLE workers ADD COLUMN gpus jsonb;
