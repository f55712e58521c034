import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Buckets from milliseconds to minutes, for latencies an operator alerts on. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/** The service's Prometheus metrics; names are a contract with operators (docs/architecture.md §6). */
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
  readonly sinkDeadLetterFilesDropped = new Counter({
    name: 'cdc_sink_dead_letter_files_dropped_total',
    help: 'Dead-letter files deleted because a sink kept deadLetters.maxFiles of them (each drop is logged with the file and its count)',
    labelNames: ['sink'] as const,
    registers: [this.registry],
  });
  readonly sinkDeadLettersDropped = new Counter({
    name: 'cdc_sink_dead_letters_dropped_total',
    help: 'Dead letters lost with a dropped dead-letter file (not replayable any more)',
    labelNames: ['sink'] as const,
    registers: [this.registry],
  });

  readonly sourceUp = new Gauge({
    name: 'cdc_source_up',
    help: '1 while a source streams (or snapshots with capture pinned), 0 while it is down or reconnecting',
    labelNames: ['source'] as const,
    registers: [this.registry],
  });
  readonly sinkUp = new Gauge({
    name: 'cdc_sink_up',
    help: '1 while a sink is connected and applying, 0 while it is down or reconnecting',
    labelNames: ['sink'] as const,
    registers: [this.registry],
  });
  readonly sourceHistoryEvents = new Counter({
    name: 'cdc_source_history_events_total',
    help: "Events of a source's history (positions went backwards, failover, lost slot), by kind",
    labelNames: ['source', 'kind'] as const,
    registers: [this.registry],
  });
  readonly sourceEpoch = new Gauge({
    name: 'cdc_source_epoch',
    help: "A source's epoch: raised each time its positions went backwards (versions order by it first)",
    labelNames: ['source'] as const,
    registers: [this.registry],
  });
  readonly componentRestarts = new Counter({
    name: 'cdc_component_restarts_total',
    help: 'Restarts of a component (source NAME, sink NAME, log) after a failure, by reason',
    labelNames: ['component', 'reason'] as const,
    registers: [this.registry],
  });
  readonly logDiskFreeBytes = new Gauge({
    name: 'cdc_log_disk_free_bytes',
    help: 'Free bytes on the file system holding the embedded log',
    registers: [this.registry],
  });
  readonly verifyRowsChecked = new Counter({
    name: 'cdc_verify_rows_checked_total',
    help: 'Rows compared between a source and a sink by verification',
    labelNames: ['sink', 'table'] as const,
    registers: [this.registry],
  });
  readonly verifyMismatches = new Counter({
    name: 'cdc_verify_mismatches_total',
    help: 'Rows found different, missing or extra in a sink by verification',
    labelNames: ['sink', 'table'] as const,
    registers: [this.registry],
  });
  readonly endToEndSeconds = new Histogram({
    name: 'cdc_end_to_end_seconds',
    help: 'Source commit to applied in the sink, in seconds',
    labelNames: ['sink'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly sinkApplySeconds = new Histogram({
    name: 'cdc_sink_apply_seconds',
    help: 'Time a sink takes to write and flush one batch, in seconds',
    labelNames: ['sink'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly sourceBatchSeconds = new Histogram({
    name: 'cdc_source_batch_seconds',
    help: 'Time to make one source batch durable in the log and acknowledge it, in seconds',
    labelNames: ['source'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
}
