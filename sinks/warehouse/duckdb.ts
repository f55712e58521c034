import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { DuckDBConnection, DuckDBValue } from '@duckdb/node-api';
import { ColumnType } from '../shared/column-types';
import { acquireDatabase, releaseDatabase, SharedDatabase } from './duckdb-instances';
import { BULK_FREE_RETURNS_MEMORY_FROM, checkpointThreshold, DuckDbSettings, parseSize, VACUUM_TASKS } from './duckdb-settings';
import { quoteIdent, quoteText, SqlEngine, SqlRow, TransactionSize } from './engine';

const TYPE_NAMES: Record<ColumnType, string> = { boolean: 'BOOLEAN', integer: 'BIGINT', double: 'DOUBLE', text: 'VARCHAR', json: 'JSON' };

/**
 * Bytes of DuckDB memory per byte of changes in a transaction (roughEventBytes),
 * on top of the configured limit, once they would not fit in it. One 50 MB
 * value, applied alone: the staging row, the MERGE's JSON extraction and the
 * history row took the process from 125 to 620 MB, and the transaction failed
 * under a 256MB memory_limit, passed under 512MB; two 3 MB values failed under
 * 53MB and passed under 64MB.
 */
const BIG_CHANGE_MEMORY_FACTOR = 12;
/** A change this big or bigger makes its transaction one of big changes (beforeTransaction). */
const BIG_CHANGE_BYTES = 1024 * 1024;
/** Between transactions the limit keeps this many times the biggest change's bytes above the configured one (see afterCommit). */
const CHECKPOINT_ROOM_FACTOR = 2;
const MIB = 1024 * 1024;

/**
 * DuckDB, embedded: one database file, one connection per sink. Batches are
 * staged with the appender. Every use of the connection goes through one
 * queue: statements of a transaction never interleave with a read from
 * elsewhere (which would run inside that transaction), and the statement
 * in flight is known when a write hangs.
 */
export class DuckDbEngine implements SqlEngine {
  readonly historyJsonType = 'JSON';
  /** Failed transactions (and databases invalidated) by running out of memory since the last flush that committed. */
  private outOfMemoryInARow = 0;
  /** Whether this instance's invalidation by an out-of-memory checkpoint was counted in outOfMemoryInARow. */
  private invalidationCounted = false;
  /** The memory_limit in bytes while raised above the configured one (0: not raised). */
  private raisedTo = 0;
  /** The biggest change a transaction was given room for (beforeTransaction); 0 while none was big. */
  private biggestChangeBytes = 0;
  readonly keyedTables = false;
  readonly applyLatest = 'replace';
  readonly currentTableStorage = '';
  readonly historyDedup = 'scan';
  readonly commitSeqType = 'UBIGINT';
  private connection: DuckDBConnection | null = null;
  private database: SharedDatabase | null = null;
  /** Held from begin() to commit() or rollback(): the file's write turn (see duckdb-instances.ts). */
  private turn: (() => void) | null = null;
  /**
   * begin() was called and BEGIN not sent yet: it goes with the transaction's
   * first statement. Each round trip waits for a turn of the event loop, which
   * the source and the other sinks stretch to 30-300 ms while they catch up.
   */
  private beginPending = false;
  private queue: Promise<unknown> = Promise.resolve();
  /** The statement running on the connection, and since when. */
  private running: { sql: string; sinceMs: number; settled: Promise<unknown> } | null = null;

  /** The configured memoryLimit in bytes (null: DuckDB's default). */
  private readonly configuredLimit: number | null;

  constructor(private readonly path: string, private readonly settings: DuckDbSettings = {}) {
    this.configuredLimit = parseSize(settings.memoryLimit ?? '') ?? null;
  }

  /** The statement in flight for longer than `ms`, for a stall report; null when none. */
  pendingLongerThan(ms: number): string | null {
    const running = this.running;
    if (!running || Date.now() - running.sinceMs < ms) return null;
    return `${running.sql.replace(/\s+/g, ' ').slice(0, 160)} (running for ${Math.round((Date.now() - running.sinceMs) / 1000)} s)`;
  }

  table(name: string): string {
    return quoteIdent(name);
  }

  typeName(type: ColumnType): string {
    return TYPE_NAMES[type];
  }

  castFails(textExpr: string, sqlType: string): string {
    return `(${textExpr} IS NOT NULL AND TRY_CAST(${textExpr} AS ${sqlType}) IS NULL)`;
  }

  jsonRows(stage: string, where: string, imageExpr: string, fields: ReadonlyMap<string, string>) {
    const structure = JSON.stringify(Object.fromEntries(fields)).replace(/'/g, "''");
    return {
      from: `(SELECT *, json_transform(${imageExpr}, '${structure}') AS cdc_image FROM ${quoteIdent(stage)} AS s WHERE ${where}) AS s`,
      field: (column: string) => `struct_extract(s.cdc_image, ${quoteText(column)})`,
    };
  }

  /**
   * DuckDB keeps the rows written since its last checkpoint in memory, and a
   * batch of big values needs its staging copy and the MERGE's hash table on
   * top: under a small memory_limit one transaction can fail with "Out of
   * Memory Error" however often it is retried. After such a failure the limit
   * doubles from the resting one (up to 16×) for each failure in a row, then
   * a CHECKPOINT writes the resident rows to the file; the limit goes back to
   * rest once a flush commits (afterCommit). The raise comes first: a
   * CHECKPOINT that cannot pin a big value's block invalidates the database
   * ("FATAL Error … Failed to create checkpoint"), and the reopened database
   * then failed the same way, for good (seen with 50 MB values under a
   * 164 MiB resting limit). Bounded, and never stuck on one batch.
   */
  async afterFailedTransaction(error: unknown): Promise<string | null> {
    if (!isOutOfMemory(error)) return null;
    this.outOfMemoryInARow++;
    const configured = this.configuredLimit;
    if (configured !== null && this.escalatedLimit(configured) > this.raisedTo) await this.raiseMemoryLimit(this.escalatedLimit(configured));
    const checkpointed = await this.query('CHECKPOINT').then(() => true, () => false);
    const limit = this.raisedTo ? `memory_limit raised to ${Math.ceil(this.raisedTo / MIB)}MiB until a flush commits` : 'memory_limit default';
    return `DuckDB ran out of memory (${this.outOfMemoryInARow} in a row): ${limit}, ${checkpointed ? 'checkpointed' : 'its CHECKPOINT failed too'}; `
      + `retrying (configured ${this.settings.memoryLimit ?? 'default'}; raise warehouse memoryLimit if this repeats)`;
  }

  /** The limit after `outOfMemoryInARow` failures in a row: the resting one doubled each time, at most 16×. */
  private escalatedLimit(configured: number): number {
    const resting = this.restingLimit(configured);
    return Math.min(resting * 16, resting * 2 ** Math.max(1, this.outOfMemoryInARow));
  }

  /**
   * A transaction of big changes gets the memory it will need before it
   * starts, instead of failing and retrying its way up: DuckDB holds several
   * copies of such values at once (BIG_CHANGE_MEMORY_FACTOR).
   */
  async beforeTransaction(size: TransactionSize): Promise<string | null> {
    const configured = this.configuredLimit;
    if (configured === null) return null;
    const needed = BIG_CHANGE_MEMORY_FACTOR * size.bytes;
    // Many small rows stream through DuckDB within its limit (spilling if they must): only multi-MB values are held whole.
    if (size.largestEventBytes < BIG_CHANGE_BYTES || needed <= configured) return null;
    this.biggestChangeBytes = Math.max(this.biggestChangeBytes, size.largestEventBytes);
    if (configured + needed <= this.raisedTo) return null;
    await this.raiseMemoryLimit(configured + needed);
    return `a transaction of ${(size.bytes / MIB).toFixed(1)} MB of changes: DuckDB memory_limit raised to ${Math.ceil((configured + needed) / MIB)}MiB until it commits (configured ${this.settings.memoryLimit})`;
  }

  private async raiseMemoryLimit(bytes: number): Promise<void> {
    await this.query(`SET GLOBAL memory_limit = '${Math.ceil(bytes / MIB)}MiB'`);
    this.raisedTo = Math.max(this.raisedTo, bytes);
  }

  /**
   * After a flush that raised the limit: a CHECKPOINT while the memory is still
   * there, then back to the configured limit — plus room for a later checkpoint
   * to rewrite the biggest value written so far. A checkpoint that cannot pin
   * such a value's block fails at an autocheckpoint, after the COMMIT, and
   * DuckDB then invalidates the whole database ("FATAL Error … autocheckpoint
   * failed"): seen with one 12 MB value under a 16MB limit.
   */
  async afterCommit(): Promise<void> {
    this.outOfMemoryInARow = 0;
    const configured = this.configuredLimit;
    if (this.raisedTo === 0 || configured === null) return;
    await this.query('CHECKPOINT').catch(() => undefined);
    const resting = this.restingLimit(configured);
    // DuckDB refuses a limit below what it holds right now: then the next commit tries again.
    await this.query(`SET GLOBAL memory_limit = '${Math.ceil(resting / MIB)}MiB'`).then(
      () => (this.raisedTo = 0),
      () => undefined,
    );
  }

  /** The limit between raised transactions: room for a later checkpoint to rewrite the biggest value written so far. */
  private restingLimit(configured: number): number {
    return configured + CHECKPOINT_ROOM_FACTOR * this.biggestChangeBytes;
  }

  emptyCopySql(from: string, to: string): string {
    return `CREATE TABLE ${this.table(to)} AS SELECT * FROM ${this.table(from)} LIMIT 0`;
  }

  listHas(listExpr: string, column: string): string {
    return `coalesce(json_contains(${listExpr}, ${quoteText(JSON.stringify(column))}), false)`;
  }

  async open(): Promise<void> {
    mkdirSync(dirname(this.path), { recursive: true });
    this.database = await acquireDatabase(this.path);
    try {
      this.connection = await this.database.instance.connect();
      const { memoryLimit, threads } = this.settings;
      await this.connection.run(`SET GLOBAL checkpoint_threshold = ${quoteText(checkpointThreshold(memoryLimit))}`);
      // A new connection (after a failure) sets its limit itself: what a failed attempt raised is not assumed.
      this.raisedTo = 0;
      this.invalidationCounted = false;
      if (memoryLimit) {
        const configured = this.configuredLimit;
        let limit = configured === null || this.biggestChangeBytes === 0 ? memoryLimit : `${Math.ceil(this.restingLimit(configured) / MIB)}MiB`;
        // The last instance died out of memory (a failed checkpoint invalidated it): this one starts raised, or it dies the same way.
        if (configured !== null && this.outOfMemoryInARow > 0) {
          this.raisedTo = this.escalatedLimit(configured);
          limit = `${Math.ceil(this.raisedTo / MIB)}MiB`;
        }
        await this.connection.run(`SET GLOBAL memory_limit = ${quoteText(limit)}`);
      }
      if (threads) await this.connection.run(`SET GLOBAL threads = ${Math.max(1, Math.floor(threads))}`);
      await this.connection.run(`SET GLOBAL allocator_bulk_deallocation_flush_threshold = ${quoteText(BULK_FREE_RETURNS_MEMORY_FROM)}`);
      await this.connection.run(`SET GLOBAL max_vacuum_tasks = ${VACUUM_TASKS}`);
    } catch (error) {
      this.connection = null;
      this.database = null;
      await releaseDatabase(this.path);
      throw error;
    }
  }

  /**
   * A connection with a statement still in flight (a hung write being given
   * up on) is interrupted and left to the garbage collector: closing it
   * synchronously would block the event loop until the statement ends.
   */
  async close(): Promise<void> {
    const connection = this.connection;
    if (!connection) return;
    this.connection = null;
    this.queue = Promise.resolve();
    const running = this.running;
    const giveBackTurn = this.turn ?? (() => undefined);
    this.turn = null;
    if (running) {
      this.running = null;
      connection.interrupt();
      // Kept referenced (a collected connection frees memory its statement still uses) and closed once the statement ends.
      void running.settled.finally(async () => {
        connection.closeSync();
        giveBackTurn(); // the interrupted transaction is rolled back with its connection
        await releaseDatabase(this.path);
      }).catch(() => undefined);
      return;
    }
    connection.closeSync();
    giveBackTurn();
    await releaseDatabase(this.path);
  }

  /** Opens a transaction once no other connection to the file has one open (see duckdb-instances.ts); BEGIN goes with its first statement. */
  async begin(): Promise<void> {
    if (this.turn) throw new Error(`duckdb ${this.path}: begin() inside a transaction`);
    this.turn = await this.takeTurn();
    this.beginPending = true;
  }

  /** Commits; the turn is kept when COMMIT fails (the caller rolls back). */
  async commit(): Promise<void> {
    if (!this.beginPending) await this.serially('COMMIT', (connection) => connection.run('COMMIT'));
    this.beginPending = false; // nothing ran: nothing to commit
    this.giveBackTurn();
  }

  async rollback(): Promise<void> {
    try {
      if (!this.beginPending) await this.serially('ROLLBACK', (connection) => connection.run('ROLLBACK'));
    } finally {
      this.beginPending = false;
      this.giveBackTurn();
    }
  }

  /** `sql`, preceded by the pending BEGIN if it is the transaction's first statement (DuckDB runs them in order). */
  private withPendingBegin(sql: string): string {
    if (!this.beginPending) return sql;
    this.beginPending = false;
    return `BEGIN TRANSACTION;\n${sql}`;
  }

  /** The file's write turn, for the connection open now: given back at once if it was closed while waiting. */
  private async takeTurn(): Promise<() => void> {
    const connection = this.requireOpen();
    const giveBack = await this.database!.takeTurn(); // set whenever a connection is
    if (this.connection !== connection) {
      giveBack();
      throw new Error(`duckdb ${this.path}: the connection was closed while it waited for its turn to write`);
    }
    return giveBack;
  }

  private giveBackTurn(): void {
    const giveBack = this.turn;
    this.turn = null;
    giveBack?.();
  }

  /** Runs `work` inside this connection's transaction, or else in a turn of its own: a statement that commits may checkpoint. */
  private async inTurn<T>(work: () => Promise<T>): Promise<T> {
    if (this.turn) return work();
    const giveBack = await this.takeTurn();
    try {
      return await work();
    } finally {
      giveBack();
    }
  }

  query(sql: string, params?: readonly unknown[]): Promise<SqlRow[]> {
    return this.inTurn(() => this.serially(sql, async (connection) => {
      if (params?.length && this.beginPending) {
        this.beginPending = false; // parameters bind to one statement only: BEGIN goes on its own
        await connection.run('BEGIN TRANSACTION');
      }
      const reader = await connection.runAndReadAll(this.withPendingBegin(sql), params as DuckDBValue[] | undefined);
      return reader.getRowObjectsJS() as SqlRow[];
    }));
  }

  stage(name: string, columns: readonly string[], rows: readonly (readonly (string | null)[])[]): Promise<void> {
    return this.inTurn(() => this.serially(`stage ${rows.length} rows into ${name}`, async (connection) => {
      await connection.run(this.withPendingBegin(`CREATE OR REPLACE TEMP TABLE ${quoteIdent(name)} (${columns.map((c) => `${quoteIdent(c)} VARCHAR`).join(', ')})`));
      const appender = await connection.createAppender(name, 'main', 'temp');
      try {
        for (const row of rows) {
          for (const value of row) {
            if (value === null) appender.appendNull();
            else appender.appendVarchar(value);
          }
          appender.endRow();
        }
        appender.flushSync();
      } finally {
        appender.closeSync();
      }
    }));
  }

  /** Runs `work` on the connection once everything queued before it has settled. */
  private serially<T>(what: string, work: (connection: DuckDBConnection) => Promise<T>): Promise<T> {
    // Work queued for a connection that was closed meanwhile (a hung one given up on) must not run on its successor.
    const owner = this.connection;
    const run = async () => {
      const connection = this.requireOpen();
      if (connection !== owner) throw new Error(`duckdb ${this.path}: the connection this statement was queued for was closed`);
      const settled = work(connection);
      const mark = { sql: what, sinceMs: Date.now(), settled: settled.catch(() => undefined) };
      this.running = mark;
      try {
        return await settled;
      } catch (error) {
        // A checkpoint that ran out of memory invalidates the database: every statement after it fails, naming it.
        if (!this.invalidationCounted && /FATAL/.test(String((error as Error)?.message)) && isOutOfMemory(error)) {
          this.invalidationCounted = true;
          this.outOfMemoryInARow++;
        }
        throw error;
      } finally {
        if (this.running === mark) this.running = null;
      }
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  async columns(name: string): Promise<Map<string, string> | null> {
    const rows = await this.query(
      `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'main' AND table_catalog = current_database() AND table_name = $1 ORDER BY ordinal_position`,
      [name],
    );
    return rows.length ? new Map(rows.map((r) => [String(r.column_name), String(r.data_type)])) : null;
  }

  private requireOpen(): DuckDBConnection {
    if (!this.connection) throw new Error(`duckdb ${this.path}: used before open() or after close()`);
    return this.connection;
  }
}

/** DuckDB's "Out of Memory Error", or a database invalidated by a checkpoint that could not allocate a block. */
function isOutOfMemory(error: unknown): boolean {
  return /Out of Memory Error|could not allocate block/i.test(String((error as Error)?.message ?? error));
}
