import { IHeaders, KafkaMessage } from 'kafkajs';
import { ChangeEvent, keyString } from '../event/change-event';
import { compactionKeyOf } from './log-keys';
import { partitionsOf } from './partitioner';

/** Header of a tombstone holding the delete event it follows, so a consumer can still apply it once compaction dropped the event. */
export const TOMBSTONE_EVENT_HEADER = 'cdc.event';

export interface OutgoingMessage {
  topic: string;
  partition: number;
  key: string;
  value: string | null;
  headers?: IHeaders;
  bytes: number;
}

/**
 * The Kafka messages of one event: keyed by table + primary key (the
 * compaction key, see log-keys.ts), value = the event as JSON, partition
 * chosen by the same hash as the embedded log. A truncate goes to every
 * partition of its topic; a delete is followed by a tombstone when enabled.
 */
export function messagesOf(event: ChangeEvent, topic: string, partitions: number, tombstones: boolean): OutgoingMessage[] {
  const key = compactionKeyOf(event);
  const value = JSON.stringify(event);
  const out: OutgoingMessage[] = [];
  for (const partition of partitionsOf(event, partitions)) {
    out.push({ topic, partition, key, value, bytes: key.length + value.length });
    if (tombstones && event.op === 'd') {
      out.push({ topic, partition, key, value: null, headers: { [TOMBSTONE_EVENT_HEADER]: value }, bytes: key.length + value.length });
    }
  }
  return out;
}

/** The event of a message, or undefined for a tombstone without our header (written by someone else). */
export function eventOf(message: KafkaMessage, topic: string, partition: number): ChangeEvent | undefined {
  const raw = message.value ?? headerValue(message.headers?.[TOMBSTONE_EVENT_HEADER]);
  if (raw === undefined) return undefined;
  try {
    return JSON.parse(raw.toString('utf8')) as ChangeEvent;
  } catch (error) {
    throw new Error(
      `kafka log: topic ${topic} partition ${partition} offset ${message.offset} does not hold a change event ` +
        `(${(error as Error).message}); only tidewater should write to this topic`,
    );
  }
}

/** True when `event` (from a tombstone) repeats `previous`, the delete it follows. */
export function isTombstoneOf(message: KafkaMessage, event: ChangeEvent, previous: ChangeEvent | undefined): boolean {
  return (
    message.value === null &&
    previous !== undefined &&
    previous.op === 'd' &&
    previous.source.version === event.source.version &&
    keyString(previous.key) === keyString(event.key) &&
    previous.source.table === event.source.table &&
    previous.source.schema === event.source.schema
  );
}

function headerValue(value: IHeaders[string] | undefined): Buffer | undefined {
  if (value === undefined) return undefined;
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined ? undefined : Buffer.isBuffer(first) ? first : Buffer.from(first);
}
