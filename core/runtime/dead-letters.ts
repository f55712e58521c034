import { mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ChangeEvent, keyString } from '../event/change-event';
import { fsyncDir, writeFileAtomic } from '../fs/durable-fs';
import { Metrics } from '../http/metrics';
import { LogRecord } from '../log/change-log';
import { Logger } from './logger';

/** One event a sink could not apply, with why and when, and where it stood in the log (for replay). */
export interface DeadLetter {
  /** When it was (last) refused. */
  time: string;
  sink: string;
  table: string;
  key: string;
  version: string;
  /** The source position of the change. */
  position: string;
  reason: string;
  /** The log record's event as the sink received it (before any projection), so replay writes exactly it again. */
  event: ChangeEvent;
  /** The log record: topic (Kafka log only), partition, offset. Absent in letters recorded before these were kept. */
  log?: { topic?: string; partition: number; offset: number };
  /** When it was first refused, once a replay refused it again. */
  firstTime?: string;
  /** How many times it was refused (1 unless replayed). */
  attempts?: number;
}

export interface DeadLetterLimits {
  /** The current file rolls over once an append would take it past this many bytes. */
  maxFileBytes: number;
  /** Files kept, the current one included; the oldest beyond that is deleted (logged and counted). */
  maxFiles: number;
}

export const DEFAULT_DEAD_LETTER_LIMITS: DeadLetterLimits = { maxFileBytes: 64 * 1024 * 1024, maxFiles: 8 };

/** Dead letters per table, over every file of a sink. */
export interface DeadLetterCounts {
  total: number;
  tables: Record<string, number>;
}

export interface ReplayOutcome {
  sink: string;
  table: string | null;
  /** Letters written through the sink again (copies of one event count once). */
  replayed: number;
  /** Written, or older than the row the sink holds (its version guard refused them): removed. */
  succeeded: number;
  /** Refused again: kept, with the new reason. */
  failed: number;
  /** Up to 5 new reasons of those refused again. */
  failures: Array<{ table: string; key: string; reason: string }>;
  /** Letters left for the sink (every table). */
  remaining: number;
}

export interface ReplayDriver {
  /** Writes the records through the sink and makes them durable (the sink's usual write + flush). */
  write(records: LogRecord[]): Promise<void>;
  /**
   * Runs `work` while nothing else writes through the sink (ManagedSink: between the runner's
   * batches). Every dead letter the sink records inside `work` is taken as a replayed one refused again.
   */
  exclusive<T>(work: () => Promise<T>): Promise<T>;
}

type Entry = { event: ChangeEvent; reason: string };

/** Replays in progress, by current file path: the sink's add() hands refusals here instead of the disk. */
const capturing = new Map<string, (entries: readonly Entry[]) => void>();
/** Appends, rollovers and rewrites of one sink's files, one at a time (instances share the files). */
const locks = new Map<string, Promise<unknown>>();
/** Per file: how far it was counted, and the counts (cdc status asks often; files only grow between rewrites). */
const countCache = new Map<string, { ino: number; size: number; tables: Map<string, number> }>();

const REPLAY_CHUNK = 500;
/** Letters replayed per exclusive turn: the runner's batches wait meanwhile (its stall alarm is at 5 s). */
const REPLAY_TURN = 2000;

/**
 * A sink's dead letters: `<dataDir>/dead-letters/<sink>.jsonl` (the current file; one JSON
 * line per event, fsynced before add() resolves, so a letter is never lost: the log offset
 * is committed after the sink's flush), rolled over by size into `<sink>.<n>.jsonl` (n grows;
 * the lowest is the oldest). Counted in `cdc_sink_dead_letters_total{sink,table}`.
 */
export class DeadLetterStore {
  readonly file: string;
  readonly dir: string;
  private readonly limits: DeadLetterLimits;
  private readonly logger?: Logger;

  constructor(dataDir: string, readonly sink: string, private readonly metrics?: Metrics, options: Partial<DeadLetterLimits> & { logger?: Logger } = {}) {
    this.dir = join(dataDir, 'dead-letters');
    this.file = join(this.dir, `${sink}.jsonl`);
    this.limits = { maxFileBytes: options.maxFileBytes ?? DEFAULT_DEAD_LETTER_LIMITS.maxFileBytes, maxFiles: options.maxFiles ?? DEFAULT_DEAD_LETTER_LIMITS.maxFiles };
    this.logger = options.logger;
  }

  /**
   * Records events the sink refused. `batch`, the records the sink was handed, gives each
   * letter its log coordinates and the event as it came from the log (a sink may have
   * projected or completed its copy).
   */
  async add(entries: readonly Entry[], batch?: readonly LogRecord[]): Promise<void> {
    if (entries.length === 0) return;
    const capture = capturing.get(this.file);
    if (capture) return capture(entries);
    const records = new Map((batch ?? []).map((record) => [identity(record.event), record]));
    const time = new Date().toISOString();
    const lines = entries.map(({ event, reason }) => {
      const record = records.get(identity(event));
      const letter: DeadLetter = {
        time,
        sink: this.sink,
        table: tableOf(event),
        key: keyString(event.key),
        version: event.source.version,
        position: event.source.position,
        reason,
        event: record?.event ?? event,
        ...(record ? { log: { ...(record.topic === undefined ? {} : { topic: record.topic }), partition: record.partition, offset: record.offset } } : {}),
      };
      return JSON.stringify(letter) + '\n';
    });
    const text = lines.join('');
    await this.locked(async () => {
      await mkdir(this.dir, { recursive: true });
      await this.rollOverFor(Buffer.byteLength(text));
      const handle = await open(this.file, 'a');
      try {
        await handle.writeFile(text, 'utf8');
        await handle.sync();
      } finally {
        await handle.close();
      }
    });
    for (const { event } of entries) this.metrics?.sinkDeadLetters.inc({ sink: this.sink, table: tableOf(event) });
  }

  /** The files, oldest first (the current one last). */
  async files(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const prefix = `${this.sink}.`;
    const rolled = names
      .filter((name) => name.startsWith(prefix) && /^\d+\.jsonl$/.test(name.slice(prefix.length)))
      .map((name) => ({ name, n: Number(name.slice(prefix.length, -'.jsonl'.length)) }))
      .sort((a, b) => a.n - b.n)
      .map(({ name }) => join(this.dir, name));
    return names.includes(`${this.sink}.jsonl`) ? [...rolled, this.file] : rolled;
  }

  /** Every dead letter kept, oldest first (unreadable lines are skipped). */
  async read(): Promise<DeadLetter[]> {
    const out: DeadLetter[] = [];
    await this.scan((letter) => void out.push(letter));
    return out;
  }

  /** Hands every dead letter kept to `visit`, oldest first, a file at a time in small reads (files may be large). */
  async scan(visit: (letter: DeadLetter) => void): Promise<void> {
    for (const file of await this.files()) {
      await forEachLine(file, 0, (line) => {
        const letter = parseLetter(line);
        if (letter) visit(letter);
      });
    }
  }

  /** Letters per table over every file; reads only what was appended since the last call. */
  async counts(): Promise<DeadLetterCounts> {
    const tables = new Map<string, number>();
    const files = await this.files();
    for (const [file] of countCache) if (file.startsWith(this.dir) && belongsTo(file, this.sink) && !files.includes(file)) countCache.delete(file);
    for (const file of files) {
      const counted = await countFile(file).catch((error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? new Map<string, number>() : Promise.reject(error)));
      for (const [table, n] of counted) tables.set(table, (tables.get(table) ?? 0) + n);
    }
    const sorted = [...tables].sort(([a], [b]) => (a < b ? -1 : 1));
    return { total: sorted.reduce((n, [, c]) => n + c, 0), tables: Object.fromEntries(sorted) };
  }

  /**
   * Writes the letters (of `table`, or all) through the sink again, file by file, oldest
   * first, in turns the driver runs exclusively. The sink's version guards apply as for any
   * write: an event older than the row the sink holds changes nothing and counts as done.
   * Done letters leave their file; refused ones stay with the new reason. A crash midway
   * leaves letters in place (replaying them again is harmless), never loses one.
   */
  async replay(table: string | null, driver: ReplayDriver): Promise<ReplayOutcome> {
    const outcome: ReplayOutcome = { sink: this.sink, table, replayed: 0, succeeded: 0, failed: 0, failures: [], remaining: 0 };
    const tried = new Set<string>();
    for (;;) {
      const more = await driver.exclusive(() => this.locked(() => this.replayTurn(table, tried, driver, outcome)));
      if (!more) break;
    }
    outcome.remaining = (await this.counts()).total;
    return outcome;
  }

  /** One turn: the next untried letters of one file; returns whether any were found. */
  private async replayTurn(table: string | null, tried: Set<string>, driver: ReplayDriver, outcome: ReplayOutcome): Promise<boolean> {
    for (const file of await this.files()) {
      // Lines as read, with their letter's identity: parsed letters are kept for the picked ones only.
      const lines: Array<{ line: string; id: string | null }> = [];
      const picked = new Map<string, DeadLetter>();
      await forEachLine(file, 0, (line) => {
        const letter = parseLetter(line);
        const id = letter ? identity(letter.event) : null;
        lines.push({ line, id });
        if (!letter || !id || (table && letter.table !== table) || tried.has(id) || picked.has(id) || picked.size >= REPLAY_TURN) return;
        picked.set(id, letter);
      });
      if (picked.size === 0) continue;
      const refused = new Map<string, string>();
      const done = new Set<string>();
      let failure: unknown = null;
      const letters = [...picked.values()];
      for (let i = 0; i < letters.length && failure === null; i += REPLAY_CHUNK) {
        const chunk = letters.slice(i, i + REPLAY_CHUNK);
        capturing.set(this.file, (entries) => entries.forEach(({ event, reason }) => refused.set(identity(event), reason)));
        try {
          await driver.write(chunk.map(toRecord));
          chunk.forEach((letter) => done.add(identity(letter.event)));
        } catch (error) {
          failure = error;
        } finally {
          capturing.delete(this.file);
        }
      }
      for (const id of done) tried.add(id);
      const time = new Date().toISOString();
      const kept: string[] = [];
      const keptIds = new Set<string>();
      for (const { line, id } of lines) {
        if (!id || !done.has(id)) kept.push(line);
        else if (refused.has(id) && !keptIds.has(id)) {
          keptIds.add(id);
          const letter = picked.get(id)!;
          kept.push(JSON.stringify({ ...letter, time, reason: refused.get(id), firstTime: letter.firstTime ?? letter.time, attempts: (letter.attempts ?? 1) + 1 }));
        }
      }
      if (done.size > 0) {
        if (kept.length === 0) await unlink(file).catch(ignoreMissing);
        else await writeFileAtomic(file, kept.join('\n') + '\n');
        countCache.delete(file);
      }
      outcome.replayed += done.size;
      outcome.failed += [...done].filter((id) => refused.has(id)).length;
      outcome.succeeded += [...done].filter((id) => !refused.has(id)).length;
      for (const letter of letters) {
        const reason = refused.get(identity(letter.event));
        if (reason && done.has(identity(letter.event)) && outcome.failures.length < 5) outcome.failures.push({ table: letter.table, key: letter.key, reason });
      }
      if (failure !== null) {
        throw new Error(`writing dead letters of sink ${this.sink} from ${file} failed: ${(failure as Error).message}; ` +
          `${outcome.succeeded} succeeded and ${outcome.failed} failed again before that (recorded), the rest stay for the next replay`, { cause: failure });
      }
      return true;
    }
    return false;
  }

  /** Makes room for `bytes` more: rolls the current file over and drops the oldest beyond maxFiles. */
  private async rollOverFor(bytes: number): Promise<void> {
    const size = await stat(this.file).then((s) => s.size, () => 0);
    if (size === 0 || size + bytes <= this.limits.maxFileBytes) return;
    const rolled = (await this.files()).filter((f) => f !== this.file);
    const last = rolled.length ? Number(rolled[rolled.length - 1].slice(this.dir.length + this.sink.length + 2, -'.jsonl'.length)) : 0;
    const target = join(this.dir, `${this.sink}.${last + 1}.jsonl`);
    await rename(this.file, target);
    countCache.delete(this.file);
    rolled.push(target);
    while (rolled.length + 1 > this.limits.maxFiles) {
      const oldest = rolled.shift()!;
      let lost = 0;
      await forEachLine(oldest, 0, () => void lost++);
      await unlink(oldest);
      countCache.delete(oldest);
      this.metrics?.sinkDeadLetterFilesDropped.inc({ sink: this.sink });
      this.metrics?.sinkDeadLettersDropped.inc({ sink: this.sink }, lost);
      this.logger?.warn(`sink ${this.sink}: dead-letter file ${oldest} deleted with its ${lost} dead letter(s): the sink keeps at most deadLetters.maxFiles = ${this.limits.maxFiles} files ` +
        `of deadLetters.maxFileBytes = ${this.limits.maxFileBytes} bytes; fix the cause and replay (cdc dead-letters replay --sink ${this.sink}), or raise the limits`,
        { sink: this.sink, file: oldest, deadLetters: lost });
    }
    await fsyncDir(this.dir);
  }

  private locked<T>(work: () => Promise<T>): Promise<T> {
    const previous = locks.get(this.file) ?? Promise.resolve();
    const run = previous.then(work, work);
    const tail = run.catch(() => undefined);
    locks.set(this.file, tail);
    void tail.then(() => locks.get(this.file) === tail && locks.delete(this.file));
    return run;
  }
}

/** One change of one row: what a replay and a refusal are matched by. */
function identity(event: ChangeEvent): string {
  return `${tableOf(event)}\u0000${keyString(event.key)}\u0000${event.source.version}\u0000${event.op}`;
}

function tableOf(event: ChangeEvent): string {
  return `${event.source.schema}.${event.source.table}`;
}

function belongsTo(file: string, sink: string): boolean {
  const name = file.slice(file.lastIndexOf('/') + 1);
  return name === `${sink}.jsonl` || (name.startsWith(`${sink}.`) && /^\d+\.jsonl$/.test(name.slice(sink.length + 1)));
}

/** The log record a letter came from; a letter without coordinates (written before they were kept) gets partition 0, offset 0. */
function toRecord(letter: DeadLetter): LogRecord {
  const log = letter.log ?? { partition: 0, offset: 0 };
  return { partition: log.partition, offset: log.offset, event: letter.event, ...(log.topic === undefined ? {} : { topic: log.topic }) };
}

function parseLetter(line: string): DeadLetter | null {
  try {
    const letter = JSON.parse(line) as DeadLetter;
    return letter && typeof letter === 'object' && letter.event ? letter : null;
  } catch {
    return null;
  }
}

const READ_BYTES = 1024 * 1024;

/**
 * Calls `visit` with each complete line of `file` from byte `start` on, reading 1 MiB at a
 * time; returns the byte offset after the last complete line (a line being appended is left
 * for later). A missing file has no lines.
 */
async function forEachLine(file: string, start: number, visit: (line: string) => void): Promise<number> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return start;
    throw error;
  }
  try {
    let position = start;
    let carry = Buffer.alloc(0);
    const buffer = Buffer.alloc(READ_BYTES);
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, READ_BYTES, position + carry.length);
      if (bytesRead === 0) return position;
      let chunk = carry.length ? Buffer.concat([carry, buffer.subarray(0, bytesRead)]) : buffer.subarray(0, bytesRead);
      let from = 0;
      for (let newline = chunk.indexOf(0x0a, from); newline !== -1; newline = chunk.indexOf(0x0a, from)) {
        if (newline > from) visit(chunk.toString('utf8', from, newline));
        from = newline + 1;
      }
      position += from;
      chunk = chunk.subarray(from);
      carry = Buffer.from(chunk); // a copy: `buffer` is read into again
    }
  } finally {
    await handle.close();
  }
}

/** A file's letters per table, reading only what was appended since it was last counted. */
async function countFile(file: string): Promise<Map<string, number>> {
  const info = await stat(file);
  let cached = countCache.get(file);
  if (!cached || cached.ino !== info.ino || info.size < cached.size) cached = { ino: info.ino, size: 0, tables: new Map() };
  if (info.size > cached.size) {
    const tables = new Map(cached.tables);
    const end = await forEachLine(file, cached.size, (line) => {
      const table = /"table":"((?:[^"\\]|\\.)*)"/.exec(line)?.[1]; // the first "table" is the letter's own (it precedes the event)
      if (table !== undefined) tables.set(table, (tables.get(table) ?? 0) + 1);
    });
    cached = { ino: info.ino, size: end, tables };
  }
  countCache.set(file, cached);
  return cached.tables;
}

function ignoreMissing(error: NodeJS.ErrnoException): void {
  if (error.code !== 'ENOENT') throw error;
}
