import { quoteText, SqlEngine } from './engine';

/**
 * The sink's bookkeeping tables, written in the same transactions as the data:
 * - _cdc_offsets: the next log offset per partition, per sink and generation
 *   (so a warehouse sink resumes exactly where its data ends: exactly once in effect);
 * - _cdc_truncates: the version of each table's last truncate;
 * - _cdc_generations: the generation readers see, per sink;
 * - _cdc_tables: the reader-facing tables each generation wrote.
 */
export class WarehouseMeta {
  constructor(private readonly engine: SqlEngine, private readonly sink: string) {}

  private t(name: string): string {
    return this.engine.table(name);
  }

  async create(): Promise<void> {
    const statements = [
      `CREATE TABLE IF NOT EXISTS ${this.t('_cdc_offsets')} (sink VARCHAR NOT NULL, generation INTEGER NOT NULL, topic VARCHAR NOT NULL,
        partition_no INTEGER NOT NULL, next_offset BIGINT NOT NULL, PRIMARY KEY (sink, generation, topic, partition_no))`,
      `CREATE TABLE IF NOT EXISTS ${this.t('_cdc_truncates')} (sink VARCHAR NOT NULL, generation INTEGER NOT NULL, table_name VARCHAR NOT NULL,
        version VARCHAR NOT NULL, PRIMARY KEY (sink, generation, table_name))`,
      `CREATE TABLE IF NOT EXISTS ${this.t('_cdc_generations')} (sink VARCHAR PRIMARY KEY, live INTEGER NOT NULL)`,
      `CREATE TABLE IF NOT EXISTS ${this.t('_cdc_tables')} (sink VARCHAR NOT NULL, generation INTEGER NOT NULL, table_name VARCHAR NOT NULL,
        PRIMARY KEY (sink, generation, table_name))`,
      `INSERT INTO ${this.t('_cdc_generations')} (sink, live) VALUES (${quoteText(this.sink)}, 1) ON CONFLICT DO NOTHING`,
    ];
    for (const sql of statements) await this.engine.query(sql);
  }

  async liveGeneration(): Promise<number> {
    const rows = await this.engine.query(`SELECT live FROM ${this.t('_cdc_generations')} WHERE sink = $1`, [this.sink]);
    return rows.length ? Number(rows[0].live) : 1;
  }

  async setLiveGeneration(generation: number): Promise<void> {
    await this.engine.query(`UPDATE ${this.t('_cdc_generations')} SET live = ${generation} WHERE sink = $1`, [this.sink]);
  }

  async offsets(generation: number): Promise<Map<string, Map<number, number>>> {
    const rows = await this.engine.query(
      `SELECT topic, partition_no, next_offset FROM ${this.t('_cdc_offsets')} WHERE sink = $1 AND generation = ${generation}`, [this.sink]);
    const out = new Map<string, Map<number, number>>();
    for (const row of rows) {
      const topic = String(row.topic);
      if (!out.has(topic)) out.set(topic, new Map());
      out.get(topic)!.set(Number(row.partition_no), Number(row.next_offset));
    }
    return out;
  }

  /** Never moves an offset backwards (a replay of older records must not rewind it). */
  async saveOffsets(generation: number, offsets: Map<string, number>): Promise<void> {
    const sql = this.saveOffsetsSql(generation, offsets);
    if (sql) await this.engine.query(sql);
  }

  /** saveOffsets() as one statement (no parameters), to send with others; '' when there is nothing to save. */
  saveOffsetsSql(generation: number, offsets: Map<string, number>): string {
    if (offsets.size === 0) return '';
    const values = [...offsets].map(([place, next]) => {
      const [topic, partition] = splitPlace(place);
      return `(${quoteText(this.sink)}, ${generation}, ${quoteText(topic)}, ${partition}, ${next})`;
    });
    return `INSERT INTO ${this.t('_cdc_offsets')} (sink, generation, topic, partition_no, next_offset) VALUES ${values.join(', ')}
      ON CONFLICT (sink, generation, topic, partition_no) DO UPDATE SET next_offset = GREATEST(${this.t('_cdc_offsets')}.next_offset, excluded.next_offset)`;
  }

  /** SQL for the table's last truncate version in `generation`, '' when none. */
  truncatedExpr(generation: number, table: string): string {
    return `COALESCE((SELECT version FROM ${this.t('_cdc_truncates')} WHERE sink = ${quoteText(this.sink)} AND generation = ${generation} AND table_name = ${quoteText(table)}), '')`;
  }

  async saveTruncate(generation: number, table: string, version: string): Promise<void> {
    await this.engine.query(`INSERT INTO ${this.t('_cdc_truncates')} (sink, generation, table_name, version) VALUES ($1, ${generation}, $2, $3)
      ON CONFLICT (sink, generation, table_name) DO UPDATE SET version = GREATEST(${this.t('_cdc_truncates')}.version, excluded.version)`, [this.sink, table, version]);
  }

  async tables(generation: number): Promise<string[]> {
    const rows = await this.engine.query(`SELECT table_name FROM ${this.t('_cdc_tables')} WHERE sink = $1 AND generation = ${generation} ORDER BY table_name`, [this.sink]);
    return rows.map((r) => String(r.table_name));
  }

  async addTable(generation: number, table: string): Promise<void> {
    await this.engine.query(`INSERT INTO ${this.t('_cdc_tables')} (sink, generation, table_name) VALUES ($1, ${generation}, $2) ON CONFLICT DO NOTHING`, [this.sink, table]);
  }

  /** After a promotion: the bookkeeping of generations other than the live one goes. */
  async dropOtherGenerations(live: number): Promise<void> {
    for (const table of ['_cdc_offsets', '_cdc_truncates', '_cdc_tables']) {
      await this.engine.query(`DELETE FROM ${this.t(table)} WHERE sink = $1 AND generation <> ${live}`, [this.sink]);
    }
  }
}

/** A record's place in the log: topic (empty for the embedded log) and partition. */
export function placeOf(topic: string | undefined, partition: number): string {
  return `${topic ?? ''}\u0000${partition}`;
}

function splitPlace(place: string): [string, number] {
  const cut = place.lastIndexOf('\u0000');
  return [place.slice(0, cut), Number(place.slice(cut + 1))];
}
