import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface HttpMetrics {
  readonly registry: Registry;
  readonly requests: Counter<'method' | 'route' | 'status'>;
  readonly duration: Histogram<'method' | 'route'>;
  readonly bytesReceived: Counter;
  readonly bytesSent: Counter;
}

/** One registry per app (tests run many apps in one process); Prometheus text at `/metrics`. */
export function createMetrics(): HttpMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    requests: new Counter({
      name: 'strongroom_http_requests_total',
      help: 'HTTP requests by method, route template and status',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'strongroom_http_request_duration_seconds',
      help: 'HTTP request duration by method and route template',
      labelNames: ['method', 'route'],
      buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
      registers: [registry],
    }),
    bytesReceived: new Counter({
      name: 'strongroom_upload_bytes_total',
      help: 'plaintext bytes received in upload chunks',
      registers: [registry],
    }),
    bytesSent: new Counter({
      name: 'strongroom_download_bytes_total',
      help: 'plaintext bytes sent in downloads',
      registers: [registry],
    }),
  };
}
