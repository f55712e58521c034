import { Logger } from '../../runtime/logger';

/** The last problem a component reported (error or warning), for the console's "reconnecting: why". */
export interface ComponentProblem {
  message: string;
  at: string;
  level: 'warn' | 'error';
}

export interface CompactionEvent {
  at: string;
  partition: string;
  fields: Record<string, unknown>;
}

/** A resync's table finished (the source logs `resync of table done`). */
export interface ResyncDone {
  requestId: string;
  table: string;
  rows: number;
  at: number;
}

/**
 * Watches what the service logs, without changing it: the last problem per
 * component (`cdc/<source or sink name>`), the last log compaction and the
 * resyncs that finished. The components already say all of it in their log
 * lines; the console shows it instead of grepping.
 */
export class ServiceEvents {
  readonly problems = new Map<string, ComponentProblem>();
  lastCompaction: CompactionEvent | null = null;
  readonly resyncsDone: ResyncDone[] = [];

  tap(logger: Logger, component = 'cdc'): Logger {
    const name = component.split('/')[1] ?? '';
    const record = (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => {
      if (level !== 'info' && name) this.problems.set(name, { message, at: new Date().toISOString(), level });
      if (level === 'info' && name === 'log' && message.startsWith('compacted partition')) {
        this.lastCompaction = { at: new Date().toISOString(), partition: message.replace('compacted partition ', ''), fields: fields ?? {} };
      }
      if (level === 'info' && message === 'resync of table done' && fields) {
        this.resyncsDone.push({ requestId: String(fields.requestId), table: String(fields.table), rows: Number(fields.rows ?? 0), at: Date.now() });
        if (this.resyncsDone.length > 200) this.resyncsDone.shift();
      }
    };
    return {
      info: (message, fields) => {
        record('info', message, fields);
        logger.info(message, fields);
      },
      warn: (message, fields) => {
        record('warn', message, fields);
        logger.warn(message, fields);
      },
      error: (message, fields) => {
        record('error', message, fields);
        logger.error(message, fields);
      },
      child: (child) => this.tap(logger.child(child), `${component}/${child}`),
    };
  }
}
