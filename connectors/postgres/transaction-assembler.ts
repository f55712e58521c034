import { Pgoutput } from 'pg-logical-replication';
import { ChangeEvent, Op, Row } from '../../core/event/change-event';
import { makeVersion } from '../../core/event/version';
import { addSourceDetails } from '../../core/event/source-details';
import { pgColumnTypesOf, pgJsonText } from './column-types';
import { SourceBatch } from '../../core/contracts/source';
import { formatLsn, Lsn, parseLsn } from './lsn';
import { decodeValue } from './types';

type Relation = Pgoutput.MessageRelation;

interface OpenTransaction {
  commitLsn: Lsn;
  commitTimeMs: number;
  /** The transaction id as text, as every event of it carries it (made once). */
  txId: string;
  /** Index of the next change within the transaction; 0 is reserved for snapshot rows. */
  nextIndex: number;
}

export interface AssemblerOptions {
  sourceName: string;
  /** Build the events' SOURCE_DETAILS (SourceStreamOptions.sourceDetails); default true. */
  sourceDetails?: boolean;
  db: string;
  /** Primary-key columns per `schema.table`, from the catalog; replica identity columns otherwise. */
  primaryKeys: Map<string, string[]>;
  /** A transaction larger than this is handed over in parts, so memory stays bounded. */
  maxBatchEvents: number;
  /** ... or once its changes not yet handed over reach this many bytes of pgoutput messages (default: no byte bound). */
  maxBatchBytes?: number;
  /** Decodes a column's text value by type OID; defaults to the built-in types only. */
  decode?: (typeOid: number, text: string) => unknown;
  /** Sees every row change as it is assembled (resync watermark windows watch these). */
  onRowEvent?(event: ChangeEvent): void;
  /**
   * Sees each transactional logical message (heartbeats, resync watermarks) with
   * its transaction's commit LSN; events it returns join that transaction's batch.
   */
  onLogicalMessage?(message: Pgoutput.MessageMessage, commitLsn: Lsn): ChangeEvent[] | void;
}

/**
 * Turns the pgoutput message stream into change events grouped by transaction.
 * Each event's version is (commit LSN, index within the transaction), known at
 * BEGIN, so events are ordered by commit as docs/architecture.md §2 requires.
 */
export class TransactionAssembler {
  private open: OpenTransaction | null = null;
  private pending: ChangeEvent[] = [];
  /** Bytes of the pgoutput messages behind `pending`. */
  private pendingBytes = 0;
  /** End LSN of the last complete transaction: where a restart resumes. */
  private lastCommitEnd: Lsn;

  private readonly decode: (typeOid: number, text: string) => unknown;

  constructor(private readonly options: AssemblerOptions, resumeFrom: Lsn) {
    this.lastCommitEnd = resumeFrom;
    this.decode = options.decode ?? decodeValue;
  }

  get inTransaction(): boolean {
    return this.open !== null;
  }

  /** Feeds one message (`bytes`: its size on the wire, for the byte bound); returns a batch when one is ready for the log. */
  onMessage(lsnText: string, message: Pgoutput.Message, bytes = 0): SourceBatch | null {
    if (this.open) this.pendingBytes += bytes;
    switch (message.tag) {
      case 'begin':
        this.open = {
          commitLsn: parseLsn(message.commitLsn ?? lsnText),
          commitTimeMs: Number((message.commitTime as bigint) / 1000n),
          txId: String(message.xid),
          nextIndex: 1,
        };
        return null;
      case 'insert':
        this.add('c', lsnText, message.relation, null, message.new);
        return this.partialBatch();
      case 'update':
        this.addUpdate(lsnText, message);
        return this.partialBatch();
      case 'delete':
        this.add('d', lsnText, message.relation, message.old ?? message.key, null);
        return this.partialBatch();
      case 'truncate':
        for (const relation of message.relations) this.add('t', lsnText, relation, null, null);
        return this.partialBatch();
      case 'message': {
        if (!this.open) return null; // non-transactional messages carry no row change
        const injected = this.options.onLogicalMessage?.(message, this.open.commitLsn);
        if (injected) this.pending.push(...injected);
        return this.partialBatch();
      }
      case 'commit': {
        const tx = this.requireOpen('commit');
        this.lastCommitEnd = parseLsn(message.commitEndLsn ?? lsnText);
        this.open = null;
        return this.takeBatch(tx.commitTimeMs);
      }
      default:
        return null; // relation, type, origin: no row change
    }
  }

  private addUpdate(lsnText: string, message: Pgoutput.MessageUpdate): void {
    const relation = message.relation;
    const oldKey = message.key ?? message.old;
    if (oldKey) {
      const keyColumns = this.keyColumns(relation);
      const before = this.decodeRow(relation, oldKey).row;
      const after = this.decodeRow(relation, message.new).row;
      if (keyColumns.some((c) => before[c] !== undefined && before[c] !== after[c])) {
        // The primary key changed: readers see the old key go and the new one come.
        const gone = this.add('d', lsnText, relation, oldKey, null);
        const came = this.add('c', lsnText, relation, null, message.new);
        if (this.options.sourceDetails !== false) {
          addSourceDetails(gone, { newKey: came.key });
          addSourceDetails(came, { oldKey: gone.key });
        }
        return;
      }
    }
    this.add('u', lsnText, relation, message.old, message.new);
  }

  private add(op: Op, lsnText: string, relation: Relation, beforeTuple: Row | null, afterTuple: Row | null): ChangeEvent {
    const tx = this.requireOpen(op);
    const before = beforeTuple ? this.decodeRow(relation, beforeTuple).row : null;
    const decodedAfter = afterTuple ? this.decodeRow(relation, afterTuple) : null;
    const after = decodedAfter?.row ?? null;
    const event: ChangeEvent = {
      op,
      key: op === 't' ? {} : this.extractKey(relation, (after ?? before)!),
      before,
      after,
      source: {
        connector: 'postgresql',
        name: this.options.sourceName,
        db: this.options.db,
        schema: relation.schema,
        table: relation.name,
        position: lsnText,
        version: makeVersion(tx.commitLsn, tx.nextIndex++),
        txId: tx.txId,
        ts_ms: tx.commitTimeMs,
      },
      ts_ms: Date.now(),
    };
    if (decodedAfter && decodedAfter.unchanged.length > 0) event.unchanged = decodedAfter.unchanged;
    if (this.options.sourceDetails !== false) this.addDetails(event, op, relation, beforeTuple, afterTuple);
    this.pending.push(event);
    this.options.onRowEvent?.(event);
    return event;
  }

  /** For the Debezium topics: column types, json text, Debezium's source.sequence[0] (never in the native log). */
  private addDetails(event: ChangeEvent, op: Op, relation: Relation, beforeTuple: Row | null, afterTuple: Row | null): void {
    const columnTypes = pgColumnTypesOf(relation);
    const json = { before: pgJsonText(columnTypes, beforeTuple), after: pgJsonText(columnTypes, afterTuple) };
    // Keyed by REPLICA IDENTITY FULL or USING INDEX, not a primary key: Debezium writes a null message key.
    const noPrimaryKey = op !== 't' && relation.replicaIdentity !== 'default' && !this.options.primaryKeys.has(`${relation.schema}.${relation.name}`) ? { noPrimaryKey: true as const } : {};
    addSourceDetails(event, { columnTypes, lastCommitLsn: formatLsn(this.lastCommitEnd), ...((json.before || json.after) && { jsonText: json }), ...noPrimaryKey });
  }

  private decodeRow(relation: Relation, tuple: Row): { row: Row; unchanged: string[] } {
    const row: Row = {};
    const unchanged: string[] = [];
    for (const column of relation.columns) {
      const raw = tuple[column.name];
      if (raw === undefined) {
        // Unchanged TOAST value: the source did not send it; sinks keep the old one.
        if (column.name in tuple) unchanged.push(column.name);
        continue;
      }
      row[column.name] = raw === null ? null : this.decode(column.typeOid, raw as string);
    }
    return { row, unchanged };
  }

  private keyColumns(relation: Relation): string[] {
    return this.options.primaryKeys.get(`${relation.schema}.${relation.name}`) ?? relation.keyColumns;
  }

  private extractKey(relation: Relation, row: Row): Row {
    const columns = this.keyColumns(relation);
    if (columns.length === 0) {
      throw new Error(
        `source ${this.options.sourceName}: table ${relation.schema}.${relation.name} has no primary key or replica identity ` +
          `(add a primary key or ALTER TABLE ... REPLICA IDENTITY FULL)`,
      );
    }
    const key: Row = {};
    for (const column of columns) key[column] = row[column];
    return key;
  }

  private partialBatch(): SourceBatch | null {
    if (this.pending.length === 0) return null;
    if (this.pending.length < this.options.maxBatchEvents && this.pendingBytes < (this.options.maxBatchBytes ?? Infinity)) return null;
    // Part of a transaction: the checkpoint stays at the last complete one, so a
    // crash replays the whole transaction (same versions, so sinks ignore repeats).
    return this.takeBatch(this.open?.commitTimeMs ?? Date.now());
  }

  private takeBatch(commitTimeMs: number): SourceBatch {
    const events = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    return { events, checkpoint: formatLsn(this.lastCommitEnd), commitTimeMs };
  }

  private requireOpen(what: string): OpenTransaction {
    if (!this.open) throw new Error(`pgoutput protocol error: ${what} message outside a transaction`);
    return this.open;
  }
}
