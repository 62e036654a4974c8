/** Prometheus metrics (see docs/metrics.md): the registry, the store's gauges, a server, the process's parts. */
export { createMetrics, metricsResponse, type AirtasksMetrics, type MetricsOptions } from './registry.js';
export { addClusterGauges, type ClusterGaugeOptions } from './cluster.js';
export { addWorkerSource, countingErrors, ERROR_MESSAGES } from './process.js';
export { countEngineEvents } from './events.js';
export { serveMetrics, type MetricsServer } from './server.js';
