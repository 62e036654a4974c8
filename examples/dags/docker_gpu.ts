/**
 * A GPU task: nvidia-smi in a CUDA image, with every GPU of the worker (`gpus: 'all'`).
 *
 * Needs a worker on a host with NVIDIA GPUs, the NVIDIA Container Toolkit, and the image available
 * to its Docker engine (pulled from Docker Hub when missing). The worker hands the task specific
 * devices (its --gpus list, or what nvidia-smi finds), so two GPU tasks never share a GPU; a task
 * asking for more than the worker has fails at once. Without the NVIDIA runtime the engine's own
 * error ("could not select device driver "nvidia" with capabilities: [[gpu]]") is in the task log.
 *
 *   airtasks trigger dag example_docker_gpu --wait
 */
import { dag } from 'airtasks';

const CUDA_IMAGE = 'nvidia/cuda:12.4.1-base-ubuntu22.04';

export const dockerGpu = dag('example_docker_gpu', {
  description: 'nvidia-smi in a CUDA container.',
  tags: ['example', 'docker', 'gpu'],
  defaults: { timeout: '15m' },
});

const smi = dockerGpu.docker('nvidia_smi', {
  image: CUDA_IMAGE,
  gpus: 'all',
  command: ['nvidia-smi'],
  output: 'all',
});

// One GPU, a bigger /dev/shm (PyTorch data loaders need it), and the device list as the output.
dockerGpu.docker('one_gpu', {
  upstream: smi,
  image: CUDA_IMAGE,
  gpus: 1,
  shmSize: '2g',
  command: 'nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader',
});
