import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';

/** The service's Prometheus metrics; names are a contract with operators (DESIGN §6). */
export class Metrics {
  readonly registry = new Registry();

  constructor() {
    // Process memory, CPU, event-loop lag and GC: what an operator checks first.
    collectDefaultMetrics({ register: this.registry });
  }

  readonly sourceEvents = new Counter({
    name: 'cdc_source_events_total',
    help: 'Change events read from a source and made durable in the log',
    labelNames: ['source', 'table', 'op'] as const,
    registers: [this.registry],
  });
  readonly sourceLagSeconds = new Gauge({
    name: 'cdc_source_lag_seconds',
    help: 'Now minus the commit time of the last event read from the source',
    labelNames: ['source'] as const,
    registers: [this.registry],
  });
  readonly sourceBacklogBytes = new Gauge({
    name: 'cdc_source_backlog_bytes',
    help: 'Source log (WAL / binlog) not yet acknowledged by the service, in bytes',
    labelNames: ['source'] as const,
    registers: [this.registry],
  });
  readonly snapshotRows = new Counter({
    name: 'cdc_snapshot_rows_total',
    help: 'Rows read by snapshots (bootstrap and resync)',
    labelNames: ['source', 'table'] as const,
    registers: [this.registry],
  });
  readonly snapshotRemainingRows = new Gauge({
    name: 'cdc_snapshot_remaining_rows',
    help: 'Estimated rows a running snapshot has still to read (0 when done)',
    labelNames: ['source', 'table'] as const,
    registers: [this.registry],
  });
  readonly logEndOffset = new Gauge({
    name: 'cdc_log_end_offset',
    help: 'Offset the next record appended to a log partition will get',
    labelNames: ['partition'] as const,
    registers: [this.registry],
  });
  readonly sinkLagEvents = new Gauge({
    name: 'cdc_sink_lag_events',
    help: 'Log records not yet applied by a sink, over all partitions',
    labelNames: ['sink'] as const,
    registers: [this.registry],
  });
  readonly sinkLagSeconds = new Gauge({
    name: 'cdc_sink_lag_seconds',
    help: 'Now minus the commit time of the last event a sink applied',
    labelNames: ['sink'] as const,
    registers: [this.registry],
  });
  readonly sinkEvents = new Counter({
    name: 'cdc_sink_events_total',
    help: 'Log records processed by a sink, by result (applied or skipped: filtered out or not newer)',
    labelNames: ['sink', 'result'] as const,
    registers: [this.registry],
  });
  readonly sinkDeadLetters = new Counter({
    name: 'cdc_sink_dead_letters_total',
    help: 'Events a sink could not apply (e.g. a mapping or type error) and recorded in its dead-letter file instead',
    labelNames: ['sink', 'table'] as const,
    registers: [this.registry],
  });
}
