import { ChangeEvent, Op, Row } from '../../core/event/change-event';
import { makeVersion } from '../../core/event/version';

export interface MakeEventOptions {
  table?: string;
  key?: Row;
  op?: Op;
  /** Defaults to a copy of the key for c/u/r, null for d/t. */
  after?: Row | null;
  version?: string;
}

/** A valid Postgres ChangeEvent of public.<table> for tests (a truncate gets an empty key). */
export function makeEvent({ table = 'items', key = { id: 1 }, op = 'c', after, version }: MakeEventOptions = {}): ChangeEvent {
  const rowKey = op === 't' ? {} : key;
  const now = Date.now();
  return {
    op,
    key: rowKey,
    before: null,
    after: after !== undefined ? after : op === 'd' || op === 't' ? null : { ...rowKey },
    source: {
      connector: 'postgresql',
      name: 'test',
      db: 'postgres',
      schema: 'public',
      table,
      position: '0/0',
      version: version ?? makeVersion(0n, 1),
      ts_ms: now,
    },
    ts_ms: now,
  };
}
