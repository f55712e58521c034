import { Kafka, KafkaMessage, logLevel } from 'kafkajs';

/** Reads `count` messages of `topic` from the beginning, as a Debezium consumer would (a fresh group). */
export async function readTopic(brokers: string[], topic: string, count: number, timeoutMs = 30_000): Promise<KafkaMessage[]> {
  const consumer = new Kafka({ clientId: 'debezium-consumer', brokers, logLevel: logLevel.NOTHING }).consumer({ groupId: `g${Date.now()}${Math.random()}`, sessionTimeout: 6000 });
  const got: KafkaMessage[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${got.length} of ${count} messages in ${topic}: ${got.map((m) => m.value?.toString().slice(0, 120) ?? 'tombstone').join(' | ')}`)), timeoutMs);
      void consumer.run({
        eachMessage: async ({ message }) => {
          got.push(message);
          if (got.length < count) return;
          clearTimeout(timer);
          resolve();
        },
      });
    });
  } finally {
    await consumer.disconnect();
  }
  return got;
}

/** The exact JSON text of the value's `after` (or `before`) object, digits as written. */
export function rowText(value: string, field: 'after' | 'before'): string {
  const start = value.indexOf(`"${field}":`) + field.length + 3;
  let depth = 0;
  let inString = false;
  for (let i = start; i < value.length; i++) {
    const ch = value[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === '{') depth++;
    else if (ch === '}' && --depth === 0) return value.slice(start, i + 1);
    else if (depth === 0 && ch === 'n') return 'null';
  }
  throw new Error(`no ${field} object in ${value.slice(0, 200)}`);
}

/** A header's text. */
export function headerText(message: KafkaMessage, name: string): string | undefined {
  const value = message.headers?.[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined ? undefined : first.toString();
}
