import { quoteIdent, quoteText, SqlEngine } from './engine';
import { StagedBatch } from './staging';
import { TableShape } from './table-schema';

/** The row image of a staged change: its after image, or its key for a delete. */
const IMAGE = 'coalesce(s.after, s.key_json)';

/**
 * The staged newest changes with their columns typed: inferred columns are
 * read straight as their type, declared ones as text and CAST (after
 * badCastsSql() has sent the values that do not cast to the dead letters).
 */
function latestRows(engine: SqlEngine, shape: TableShape, stage: string, where: string, only?: readonly string[]) {
  const columns = [...shape.columns].filter(([c]) => !only || only.includes(c));
  const fields = new Map(columns.map(([c, col]) => [c, col.inferred ? col.sqlType : engine.typeName('text')]));
  return engine.jsonRows(stage, `latest = '1' AND ${where}`, IMAGE, fields);
}

/**
 * The staged newest changes as typed columns (alias `s`), plus `_cdc_keep<i>`
 * (the change left column i unchanged: the stored value stays), `_cdc_op` and
 * `_cdc_version`. Versions at or below the table's last truncate
 * (`truncatedExpr`, '' when none) are left out as a whole. `only`: these
 * columns alone (and no `_cdc_keep<i>`).
 */
function stagedLatest(engine: SqlEngine, shape: TableShape, stage: string, staged: StagedBatch, truncatedExpr: string, only?: readonly string[]) {
  const rows = latestRows(engine, shape, stage, `version > ${truncatedExpr}`, only);
  const keptColumns = only ? [] : [...staged.unchangedColumns].filter((c) => shape.columns.has(c));
  const select = [
    ...[...shape.columns].filter(([c]) => !only || only.includes(c)).map(([c, { inferred, sqlType }]) => `${inferred ? rows.field(c) : `CAST(${rows.field(c)} AS ${sqlType})`} AS ${quoteIdent(c)}`),
    ...keptColumns.map((c, i) => `${engine.listHas('s.unchanged', c)} AS _cdc_keep${i}`),
    's.op AS _cdc_op',
    's.version AS _cdc_version',
  ];
  return {
    sql: `SELECT ${select.join(', ')} FROM ${rows.from}`,
    /** Column → the staged flag saying its stored value stays. */
    kept: new Map(keptColumns.map((c, i) => [c, `_cdc_keep${i}`])),
    on: (stored: string, fresh: string) => shape.keyColumns.map((k) => `${stored}.${quoteIdent(k)} = ${fresh}.${quoteIdent(k)}`).join(' AND '),
  };
}

/**
 * The MERGE that applies a staged batch (Postgres). It changes a row only when the staged
 * version is newer than the stored one (docs/architecture.md §4); deletes are soft
 * (`_cdc_deleted`), so a deleted row keeps its version and an older insert
 * replayed later is refused.
 */
export function mergeSql(engine: SqlEngine, shape: TableShape, stage: string, staged: StagedBatch, truncatedExpr: string): string {
  const q = quoteIdent;
  const latest = stagedLatest(engine, shape, stage, staged, truncatedExpr);
  const columns = [...shape.columns.keys()];
  const set = columns.filter((c) => !shape.keyColumns.includes(c)).map((c) => {
    const keep = latest.kept.get(c);
    return `${q(c)} = ${keep ? `CASE WHEN s.${keep} THEN t.${q(c)} ELSE s.${q(c)} END` : `s.${q(c)}`}`;
  });
  return `MERGE INTO ${engine.table(shape.name)} AS t
USING (${latest.sql}) AS s
ON ${latest.on('t', 's')}
WHEN MATCHED AND s._cdc_version > t._cdc_version AND s._cdc_op = 'd' THEN
  UPDATE SET _cdc_deleted = true, _cdc_version = s._cdc_version, _cdc_synced_at = current_timestamp
WHEN MATCHED AND s._cdc_version > t._cdc_version THEN
  UPDATE SET ${[...set, '_cdc_deleted = false', '_cdc_version = s._cdc_version', '_cdc_synced_at = current_timestamp'].join(', ')}
WHEN NOT MATCHED THEN
  INSERT (${[...columns.map(q), '_cdc_version', '_cdc_deleted', '_cdc_synced_at'].join(', ')})
  VALUES (${[...columns.map((c) => `s.${q(c)}`), 's._cdc_version', "s._cdc_op = 'd'", 'current_timestamp'].join(', ')})`;
}

/**
 * The same outcome as mergeSql() with appends and deletes instead of updates
 * (DuckDB). DuckDB keeps an UPDATE's old values per touched vector of 2,048
 * rows and column, and counts them toward its checkpoint threshold: updates
 * scattered over a big table made every COMMIT a checkpoint that rewrote the
 * whole table (a 4,000-row MERGE into a 2M-row table: 3.3-3.7 s, nearly all of
 * it the COMMIT's checkpoint; appending the new images and deleting the rows
 * they replace: 0.14 s). In the caller's transaction:
 * 1. the stored rows of the batch's keys are found once, with their row ids,
 *    keys and versions (and the columns a change left unchanged), never their
 *    other values, beside the staged op and version of their key: the only
 *    statement that reads the whole table's keys (three did, one per step
 *    below: 2.0 s of 3.3 s for 40,000 changes into a 1M-row table);
 * 2. the new images are appended where the staged version is newer than the
 *    stored one (a delete only for a row not stored: its key, soft-deleted);
 * 3. a delete of a stored row is soft: an UPDATE of its three bookkeeping
 *    columns by row id, so it keeps its last image without reading it;
 * 4. the stored rows older than an image appended in 2 are deleted by row id.
 * Row ids hold within the transaction as long as no other connection commits
 * (a checkpoint may move them): connections on one file take turns
 * (duckdb-instances.ts). The rows appended in 2 are not among those found in
 * 1, so 3 and 4 touch only rows stored before the batch.
 */
export function replaceSql(engine: SqlEngine, shape: TableShape, stage: string, staged: StagedBatch, truncatedExpr: string): string[] {
  const q = quoteIdent;
  const latest = stagedLatest(engine, shape, stage, staged, truncatedExpr);
  const keys = stagedLatest(engine, shape, stage, staged, truncatedExpr, shape.keyColumns);
  const table = engine.table(shape.name);
  const stored = q(`${stage}_stored`);
  const columns = [...shape.columns.keys()];
  const storedColumns = [...shape.keyColumns, ...latest.kept.keys(), '_cdc_version'].map((c) => `t.${q(c)}`).join(', ');
  const image = columns.map((c) => {
    const keep = latest.kept.get(c);
    return keep ? `CASE WHEN s.${keep} THEN t.${q(c)} ELSE s.${q(c)} END` : `s.${q(c)}`;
  });
  const statements = [
    `CREATE OR REPLACE TEMP TABLE ${stored} AS SELECT t.rowid AS _cdc_rowid, ${storedColumns}, s._cdc_op AS _cdc_new_op, s._cdc_version AS _cdc_new_version
FROM ${table} AS t JOIN (${keys.sql}) AS s ON ${keys.on('t', 's')}`,
    `INSERT INTO ${table} (${[...columns.map(q), '_cdc_version', '_cdc_deleted', '_cdc_synced_at'].join(', ')})
SELECT ${[...image, 's._cdc_version', "s._cdc_op = 'd'", 'current_timestamp'].join(', ')}
FROM (${latest.sql}) AS s LEFT JOIN ${stored} AS t ON ${latest.on('t', 's')}
WHERE t._cdc_version IS NULL OR (s._cdc_op <> 'd' AND s._cdc_version > t._cdc_version)`,
  ];
  if ([...staged.latestByRow.values()].some((e) => e.op === 'd')) {
    statements.push(`UPDATE ${table} SET _cdc_deleted = true, _cdc_version = x._cdc_new_version, _cdc_synced_at = current_timestamp
FROM (SELECT _cdc_rowid, _cdc_new_version FROM ${stored} WHERE _cdc_new_op = 'd' AND _cdc_new_version > _cdc_version) AS x
WHERE ${table}.rowid = x._cdc_rowid`);
  }
  statements.push(`DELETE FROM ${table} WHERE rowid IN (SELECT _cdc_rowid FROM ${stored} WHERE _cdc_new_op <> 'd' AND _cdc_version < _cdc_new_version)`);
  return statements;
}

/**
 * Appends the batch's changes to the history table; a change already there
 * (same key and version: a duplicate in the log, or a replay) is skipped.
 * `minCommitSeq` is the batch's lowest commit position: a change already in
 * the history sits at or above it, so the duplicate check reads only that
 * part (numeric zone maps prune; DuckDB keeps only 8-byte prefixes of text).
 */
export function historySql(engine: SqlEngine, shape: TableShape, stage: string, minCommitSeq: string): string {
  const json = engine.historyJsonType;
  const history = engine.table(shape.changes);
  const notThere = engine.historyDedup === 'primary-key' ? '' : ` AND NOT EXISTS (SELECT 1 FROM ${history} h
  WHERE h._cdc_commit_seq >= ${minCommitSeq} AND h._cdc_version = s.version AND h._cdc_key = s.key)`;
  return `INSERT INTO ${history}
  (_cdc_key, _cdc_version, _cdc_commit_seq, _cdc_op, _cdc_position, _cdc_commit_ts, _cdc_tx, _cdc_before, _cdc_after, _cdc_unchanged, _cdc_synced_at)
SELECT s.key, s.version, CAST(s.commit_seq AS ${engine.commitSeqType}), s.op, s.position, CAST(s.commit_ts AS TIMESTAMPTZ), s.tx, CAST(s.before AS ${json}), CAST(s.after AS ${json}), s.unchanged, current_timestamp
FROM ${quoteIdent(stage)} s WHERE s.hist = '1'${notThere}${engine.historyDedup === 'primary-key' ? '\nON CONFLICT DO NOTHING' : ''}`;
}

/** Stage rows (newest changes) whose value does not cast to a declared column type. */
export function badCastsSql(engine: SqlEngine, shape: TableShape, stage: string): string | null {
  const declared = [...shape.columns].filter(([, c]) => c.inferred === null);
  if (declared.length === 0) return null;
  const rows = latestRows(engine, shape, stage, 'true');
  const checks = declared.map(([c, { sqlType }]) => engine.castFails(rows.field(c), sqlType));
  return `SELECT s.r AS r FROM ${rows.from} WHERE ${checks.join(' OR ')}`;
}

/** Soft-deletes the rows older than a truncate and lifts them to its version, so older events stay refused. */
export function truncateSql(engine: SqlEngine, shape: TableShape, version: string): string {
  return `UPDATE ${engine.table(shape.name)} SET _cdc_deleted = true, _cdc_version = ${quoteText(version)}, _cdc_synced_at = current_timestamp
WHERE _cdc_version < ${quoteText(version)}`;
}

/**
 * Stage rows (newest changes) with unchanged TOAST columns whose row the table
 * does not hold: the MERGE would insert them with NULL in those columns.
 */
export function missingStoredRowsSql(engine: SqlEngine, shape: TableShape, stage: string): string {
  const rows = latestRows(engine, shape, stage, 'unchanged IS NOT NULL');
  const typed = (c: string) => {
    const { inferred, sqlType } = shape.columns.get(c)!;
    return inferred ? rows.field(c) : `CAST(${rows.field(c)} AS ${sqlType})`;
  };
  const on = shape.keyColumns.map((k) => `t.${quoteIdent(k)} = ${typed(k)}`).join(' AND ');
  return `SELECT s.r AS r FROM ${rows.from} WHERE NOT EXISTS (SELECT 1 FROM ${engine.table(shape.name)} t WHERE ${on})`;
}
