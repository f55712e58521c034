/** Where a consumer wanted to read and what the log still holds there. */
export interface OffsetGoneDetails {
  /** The log consumer (`sink-<name>`, or `sink-<name>-g<generation>` during a reprocess). */
  consumer: string;
  partition: number;
  /** The Kafka topic (the embedded log has none). */
  topic?: string;
  /** The next offset the consumer would read (its committed offset, or the sink's stored one). */
  offset: number;
  /** The oldest offset the partition still holds. */
  oldest: number;
  /** The partition's end offset, when known. */
  end?: number;
  /** Replaces the account of what is missing (when the offset itself is unknown). */
  reason?: string;
}

/**
 * A consumer's next offset is no longer in the log (Kafka retention or
 * `Offset out of range`, an embedded segment deleted): resuming from anywhere
 * else would skip or reorder records, so the sink stops with this error
 * instead of a silent reset to the earliest or latest offset. It is permanent
 * for that sink until an operator acts: retrying does not help.
 */
export class LogOffsetGoneError extends Error {
  readonly permanent = true;

  constructor(readonly details: OffsetGoneDetails) {
    super(describe(details));
    this.name = 'LogOffsetGoneError';
  }

  /** The sink the consumer belongs to (consumer `sink-<name>[-g<n>]`). */
  get sink(): string {
    return sinkOfConsumer(this.details.consumer);
  }
}

export function sinkOfConsumer(consumer: string): string {
  return consumer.replace(/^sink-/, '').replace(/-g\d+$/, '');
}

function describe(d: OffsetGoneDetails): string {
  const where = `${d.topic ? `topic ${d.topic} ` : ''}partition ${d.partition}`;
  const sink = sinkOfConsumer(d.consumer);
  const beyondEnd = d.end !== undefined && d.offset > d.end;
  const what = d.reason
    ? d.reason
    : beyondEnd
    ? `is past the end of the log (${d.end}): the log lost records or was recreated`
    : `is no longer held: the oldest offset still held is ${d.oldest}, so offsets ${d.offset}..${d.oldest - 1} were removed (retention, a deleted segment)`;
  return (
    `log consumer "${d.consumer}" stopped: its next offset ${d.offset} on ${where} ${what}. ` +
    `Resuming elsewhere would skip changes, so sink ${sink} stops instead. ` +
    `Rebuild it from what the log holds with \`cdc reprocess --sink ${sink}\` ` +
    `(complete only if the log keeps every row: a compacted topic, or the embedded log with its segments), ` +
    `then check it with \`cdc verify --sink ${sink}\``
  );
}
