-- The GPUs a worker has, as it reports them when it starts: [{"id": "0", "model": "NVIDIA H100 80GB HBM3",
-- "memoryMiB": 81559}], model and memory null for devices declared with --gpus where nvidia-smi is absent.
-- `status` and the dashboard show them. NULL for a worker that manages no GPUs.
ALTER TABLE workers ADD COLUMN gpu_info jsonb;
