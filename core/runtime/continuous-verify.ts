import { AdminError } from '../http/admin';
import { Metrics } from '../http/metrics';
import { verifySink } from '../verify/run-verify';
import { SourceRowReader, VerifyTarget } from '../verify/sink-reader';
import { compareChunk, sameRow, splitTable } from '../verify/verify-table';
import { ComponentContext, ComponentFactory } from './components';
import { sleep } from './backoff';
import { Logger } from './logger';

/** A sink's `verify:` settings (sinks/shared/config.ts). */
export interface ContinuousVerifySettings {
  intervalMs: number;
  chunksPerRun: number;
  chunkSize: number;
  recheckDelayMs: number;
}

export interface ContinuousVerifyOptions {
  sink: string;
  settings: ContinuousVerifySettings;
  createTarget(): VerifyTarget;
  sources: Array<{ name: string; createReader(): SourceRowReader }>;
  metrics: Metrics;
  logger: Logger;
  /** False while the pipeline is not streaming (snapshot, reconnect): a run then waits, as the sink is expected to lag. */
  ready?: () => boolean;
}

/** Rechecks of a mismatching key before it is given up on as still changing (neither counted nor reported). */
const RECHECKS = 3;
const KEYS_LOGGED = 5;

/**
 * Continuous verification of one sink: every `intervalMs` the next
 * `chunksPerRun` primary-key chunks, rolling over the sink's tables (a cursor
 * per table; at a table's end it starts over), are compared with the source
 * as `cdc verify` compares them. It only counts and logs, never repairs.
 *
 * Rows changing while checked: a chunk's source rows are read before the
 * sink's, so a mismatch may only mean the pipeline has not applied a change
 * yet. A mismatching key is read again (source, then sink) after
 * `recheckDelayMs`; it counts as a mismatch only when the source row is the
 * same as at the previous read, i.e. it did not change for a whole delay, and
 * the sink still differs from it: the sink then had that long to catch up. A
 * key whose source row keeps changing is rechecked up to RECHECKS times, then
 * let go (uncounted). Set `recheckDelayMs` above the sink's usual lag
 * (cdc_sink_lag_seconds). Rows the sink has beyond the source (extras) are
 * found by `cdc verify`, which scans the sink's keys; chunks here walk the
 * source's keys.
 */
export class ContinuousVerifier {
  /** Per source and table: the key after which the next chunk starts. */
  private readonly cursors = new Map<string, unknown[] | null>();
  private next = 0;
  /** How the first confirmed mismatch of a chunk differs, for its log line. */
  private example = '';

  constructor(private readonly options: ContinuousVerifyOptions) {}

  /** Until the signal aborts; a failing run is logged and the next one tried. */
  async run(signal: AbortSignal): Promise<void> {
    const { settings, logger, sink } = this.options;
    while (!signal.aborted) {
      await sleep(settings.intervalMs, signal);
      if (signal.aborted) return;
      if (this.options.ready && !this.options.ready()) continue;
      try {
        await this.runOnce(signal);
      } catch (error) {
        logger.warn('continuous verification run failed; trying again at the next interval', { sink, error });
      }
    }
  }

  /** One run: `chunksPerRun` chunks. Returns the rows checked and mismatches confirmed. */
  async runOnce(signal?: AbortSignal): Promise<{ checked: number; mismatches: number }> {
    const { settings } = this.options;
    const target = this.options.createTarget();
    const readers = this.options.sources.map((s) => ({ name: s.name, reader: s.createReader() }));
    const totals = { checked: 0, mismatches: 0 };
    try {
      const tables: Array<{ source: string; reader: SourceRowReader; table: string }> = [];
      for (const { name, reader } of readers) {
        for (const table of await reader.tables()) {
          const [schema, relation] = splitTable(table);
          if (target.includes(schema, relation)) tables.push({ source: name, reader, table });
        }
      }
      if (tables.length === 0) return totals;
      // An empty table or a table's end ends a chunk early; bounded so a run of empty tables ends too.
      for (let chunk = 0, tries = 0; chunk < settings.chunksPerRun && tries < settings.chunksPerRun + tables.length && !signal?.aborted; tries++) {
        const place = tables[this.next % tables.length];
        const found = await this.checkChunk(target, place.source, place.reader, place.table, signal);
        if (found === null) continue;
        chunk++;
        totals.checked += found.checked;
        totals.mismatches += found.mismatches;
      }
    } finally {
      await target.reader.close().catch(() => undefined);
      for (const { reader } of readers) await reader.close().catch(() => undefined);
    }
    return totals;
  }

  /** The table's next chunk; null at the table's end (the cursor starts over and the next table is up). */
  private async checkChunk(target: VerifyTarget, source: string, reader: SourceRowReader, table: string, signal?: AbortSignal): Promise<{ checked: number; mismatches: number } | null> {
    const { sink, settings, metrics, logger } = this.options;
    const place = `${source}\u0000${table}`;
    const [schema, name] = splitTable(table);
    const keyColumns = await reader.primaryKey(table);
    const { rows, lastKey } = await reader.chunk(table, this.cursors.get(place) ?? null, settings.chunkSize);
    if (rows.length < settings.chunkSize) {
      this.cursors.delete(place);
      this.next++;
    } else {
      this.cursors.set(place, lastKey);
    }
    if (rows.length === 0) return null;
    const found = await compareChunk(target.reader, schema, name, keyColumns, rows, target.project);
    metrics.verifyRowsChecked.inc({ sink, table }, rows.length);
    const suspects = [...found.missing, ...found.different];
    const bySource = new Map(found.keys.map((k, i) => [k, rows[i]]));
    this.example = '';
    const confirmed = suspects.length === 0 ? [] : await this.recheck(target, reader, table, keyColumns, suspects, bySource, signal);
    metrics.verifyMismatches.inc({ sink, table }, confirmed.length);
    if (confirmed.length > 0) {
      logger.warn('continuous verification: the sink does not hold these rows as the source does (cdc verify --repair fixes them)', {
        sink, table, mismatches: confirmed.length, keys: confirmed.slice(0, KEYS_LOGGED).join(', ') + (confirmed.length > KEYS_LOGGED ? ', ...' : ''), first: this.example,
      });
    }
    return { checked: rows.length, mismatches: confirmed.length };
  }

  /** The suspects that still differ from a source row unchanged over a whole recheck delay. */
  private async recheck(
    target: VerifyTarget, reader: SourceRowReader, table: string, keyColumns: string[], suspects: string[],
    previous: Map<string, Record<string, unknown> | null>, signal?: AbortSignal,
  ): Promise<string[]> {
    const [schema, name] = splitTable(table);
    const confirmed: string[] = [];
    let pending = suspects;
    for (let attempt = 0; attempt < RECHECKS && pending.length > 0 && !signal?.aborted; attempt++) {
      await sleep(this.options.settings.recheckDelayMs, signal);
      const now = await reader.rowsByKey(table, pending);
      const held = await target.reader.rows(schema, name, keyColumns, pending);
      const changing: string[] = [];
      pending.forEach((key, i) => {
        const row = now.get(key) ?? null;
        if (sameRow(held[i], row === null ? null : target.project(schema, name, row))) return; // caught up
        if (sameRow(row, previous.get(key) ?? null)) {
          confirmed.push(key);
          if (!this.example) this.example = describeDifference(held[i], row === null ? null : target.project(schema, name, row));
        }
        else {
          previous.set(key, row);
          changing.push(key);
        }
      });
      pending = changing;
    }
    return confirmed;
  }
}

/** Which columns of a sink row differ from the source's (values shown cut short). */
function describeDifference(held: Record<string, unknown> | null, expected: Record<string, unknown> | null): string {
  if (held === null) return 'missing in the sink';
  if (expected === null) return 'not in the source';
  const show = (v: unknown) => JSON.stringify(v)?.slice(0, 40) ?? 'absent';
  const columns = [...new Set([...Object.keys(held), ...Object.keys(expected)])].filter((c) => !sameRow({ v: held[c] ?? null }, { v: expected[c] ?? null }));
  return columns.map((c) => `${c}: sink ${show(held[c])}, source ${show(expected[c])}`).join('; ');
}

/**
 * The continuous verifiers of the sinks that set `verify:` (when the factory
 * offers verification), each running until the signal aborts.
 */
export function startContinuousVerify<SourceConfig extends { name: string }, SinkConfig extends { name: string; verify?: ContinuousVerifySettings }>(
  sinks: readonly SinkConfig[], sources: readonly SourceConfig[], components: ComponentFactory<SourceConfig, SinkConfig>,
  context: ComponentContext & { metrics: Metrics }, signal: AbortSignal, ready?: () => boolean,
): Promise<void>[] {
  const { createVerifyTarget, createSourceRowReader } = components;
  if (!createVerifyTarget || !createSourceRowReader) return [];
  return sinks.filter((s) => s.verify).map((sinkConfig) => {
    const logger = context.logger.child(sinkConfig.name);
    const verifier = new ContinuousVerifier({
      sink: sinkConfig.name,
      settings: sinkConfig.verify!,
      createTarget: () => createVerifyTarget(sinkConfig, { ...context, logger }),
      sources: sources.map((s) => ({ name: s.name, createReader: () => createSourceRowReader(s) })),
      metrics: context.metrics,
      logger,
      ready,
    });
    logger.info('continuous verification on', { sink: sinkConfig.name, intervalMs: sinkConfig.verify!.intervalMs, chunksPerRun: sinkConfig.verify!.chunksPerRun });
    return verifier.run(signal);
  });
}

/**
 * The admin route `POST /api/verify { sink, tables?, repair? }` → `{ differences, report }`:
 * `cdc verify` run inside the service, for a sink only the service can open
 * (a DuckDB file it holds). Repairs resync through the service's own sources.
 */
export function verifyRoute<SourceConfig extends { name: string }, SinkConfig extends { name: string }>(
  sinks: readonly SinkConfig[], sources: readonly SourceConfig[], components: ComponentFactory<SourceConfig, SinkConfig>,
  context: ComponentContext, resync: (source: string, table: string, where: string) => Promise<string>,
): (input: { body: Record<string, unknown> }) => Promise<unknown> {
  return async ({ body }) => {
    const { createVerifyTarget, createSourceRowReader } = components;
    if (!createVerifyTarget || !createSourceRowReader) throw new AdminError(501, 'this service was built without verification');
    const sink = sinks.find((s) => s.name === body.sink);
    if (!sink) throw new AdminError(404, `no sink named "${String(body.sink)}" runs here (running: ${sinks.map((s) => s.name).join(', ') || 'none'})`);
    const tables = body.tables === undefined || body.tables === null ? undefined : body.tables;
    if (tables !== undefined && (!Array.isArray(tables) || !tables.every((t) => typeof t === 'string'))) throw new AdminError(400, 'tables must be a list of SCHEMA.TABLE names');
    const report: string[] = [];
    const differences = await verifySink({
      sink: { name: sink.name, createTarget: () => createVerifyTarget(sink, context) },
      sources: sources.map((s) => ({ name: s.name, createReader: () => createSourceRowReader(s) })),
      tables: tables as string[] | undefined,
      resync: body.repair === true ? resync : undefined,
      print: (line) => report.push(line),
    });
    return { differences, report };
  };
}
