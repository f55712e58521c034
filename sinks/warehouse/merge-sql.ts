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
function latestRows(engine: SqlEngine, shape: TableShape, stage: string, where: string) {
  const fields = new Map([...shape.columns].map(([c, col]) => [c, col.inferred ? col.sqlType : engine.typeName('text')]));
  return engine.jsonRows(stage, `latest = '1' AND ${where}`, IMAGE, fields);
}

/**
 * The MERGE that applies a staged batch. It changes a row only when the staged
 * version is newer than the stored one (docs/architecture.md §4); deletes are soft
 * (`_cdc_deleted`), so a deleted row keeps its version and an older insert
 * replayed later is refused. Versions at or below the table's last truncate
 * (`truncatedExpr`, '' when none) are refused as a whole.
 */
export function mergeSql(engine: SqlEngine, shape: TableShape, stage: string, staged: StagedBatch, truncatedExpr: string): string {
  const q = quoteIdent;
  const rows = latestRows(engine, shape, stage, `version > ${truncatedExpr}`);
  const columns = [...shape.columns.keys()];
  const select = [
    ...columns.map((c) => {
      const { inferred, sqlType } = shape.columns.get(c)!;
      return `${inferred ? rows.field(c) : `CAST(${rows.field(c)} AS ${sqlType})`} AS ${q(c)}`;
    }),
    ...[...staged.unchangedColumns].filter((c) => shape.columns.has(c)).map((c, i) => `${engine.listHas('s.unchanged', c)} AS _cdc_keep${i}`),
    's.op AS _cdc_op',
    's.version AS _cdc_version',
  ];
  const kept = new Map([...staged.unchangedColumns].filter((c) => shape.columns.has(c)).map((c, i) => [c, `_cdc_keep${i}`]));
  const on = shape.keyColumns.map((k) => `t.${q(k)} = s.${q(k)}`).join(' AND ');
  const set = columns.filter((c) => !shape.keyColumns.includes(c)).map((c) => {
    const keep = kept.get(c);
    return `${q(c)} = ${keep ? `CASE WHEN s.${keep} THEN t.${q(c)} ELSE s.${q(c)} END` : `s.${q(c)}`}`;
  });
  return `MERGE INTO ${engine.table(shape.name)} AS t
USING (SELECT ${select.join(', ')} FROM ${rows.from}) AS s
ON ${on}
WHEN MATCHED AND s._cdc_version > t._cdc_version AND s._cdc_op = 'd' THEN
  UPDATE SET _cdc_deleted = true, _cdc_version = s._cdc_version, _cdc_synced_at = current_timestamp
WHEN MATCHED AND s._cdc_version > t._cdc_version THEN
  UPDATE SET ${[...set, '_cdc_deleted = false', '_cdc_version = s._cdc_version', '_cdc_synced_at = current_timestamp'].join(', ')}
WHEN NOT MATCHED THEN
  INSERT (${[...columns.map(q), '_cdc_version', '_cdc_deleted', '_cdc_synced_at'].join(', ')})
  VALUES (${[...columns.map((c) => `s.${q(c)}`), 's._cdc_version', "s._cdc_op = 'd'", 'current_timestamp'].join(', ')})`;
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
