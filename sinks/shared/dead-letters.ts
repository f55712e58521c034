import { mkdir, open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ChangeEvent, keyString } from '../../core/event/change-event';
import { Metrics } from '../../core/http/metrics';

/** One event a sink could not apply, with why and when. */
export interface DeadLetter {
  time: string;
  sink: string;
  table: string;
  key: string;
  version: string;
  position: string;
  reason: string;
  event: ChangeEvent;
}

/**
 * A sink's dead-letter place: `<dataDir>/dead-letters/<sink>.jsonl`, one JSON
 * line per event, fsynced before add() resolves (the log offset is committed
 * after the sink's flush, so a dead letter is never lost). Counted in
 * `cdc_sink_dead_letters_total{sink,table}`.
 */
export class DeadLetterStore {
  readonly file: string;

  constructor(dataDir: string, private readonly sink: string, private readonly metrics?: Metrics) {
    this.file = join(dataDir, 'dead-letters', `${sink}.jsonl`);
  }

  async add(entries: readonly { event: ChangeEvent; reason: string }[]): Promise<void> {
    if (entries.length === 0) return;
    const time = new Date().toISOString();
    const lines = entries.map(({ event, reason }) => {
      const letter: DeadLetter = {
        time,
        sink: this.sink,
        table: `${event.source.schema}.${event.source.table}`,
        key: keyString(event.key),
        version: event.source.version,
        position: event.source.position,
        reason,
        event,
      };
      return JSON.stringify(letter) + '\n';
    });
    await mkdir(join(this.file, '..'), { recursive: true });
    const handle = await open(this.file, 'a');
    try {
      await handle.writeFile(lines.join(''), 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    for (const { event } of entries) {
      this.metrics?.sinkDeadLetters.inc({ sink: this.sink, table: `${event.source.schema}.${event.source.table}` });
    }
  }

  /** Every dead letter recorded so far (for `cdc status` and tests). */
  async read(): Promise<DeadLetter[]> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    return text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as DeadLetter);
  }
}
