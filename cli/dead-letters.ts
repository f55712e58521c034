import { Command } from 'commander';
import { loadConfig, LoadedConfig } from '../config/load';
import { DeadLetter, DeadLetterStore, ReplayOutcome } from '../core/runtime/dead-letters';
import { callAdmin } from './admin-client';

/** What `cdc dead-letters list --json` prints. */
export interface DeadLetterListing {
  sink: string;
  table: string | null;
  files: string[];
  total: number;
  /** Per table: its count and its counts per reason (values in quotes and keys left out, so alike reasons group). */
  tables: Record<string, { count: number; reasons: Record<string, number> }>;
  /** The newest `limit` letters, newest last. */
  letters: DeadLetter[];
}

/**
 * `cdc dead-letters list|replay`. list reads `<dataDir>/dead-letters/` itself (it works while
 * the service is stopped, e.g. before a restart with a fixed config); replay asks the running
 * service, which writes the events through the sink between its batches.
 */
export function registerDeadLetterCommands(program: Command): void {
  const group = program.command('dead-letters').description("a sink's dead letters: events it could not apply, kept with the reason to replay once fixed");
  group
    .command('list')
    .description('count dead letters per table and reason, and print the newest ones (newest last); reads the data directory')
    .requiredOption('-c, --config <file>', 'the YAML config file')
    .requiredOption('--sink <name>', 'the sink')
    .option('--table <schema.table>', 'only this table')
    .option('--limit <n>', 'print at most this many letters (default 20; 0: counts only)', '20')
    .option('--json', 'print JSON: { sink, files, total, tables: { T: { count, reasons } }, letters }')
    .action(async (options: { config: string; sink: string; table?: string; limit: string; json?: boolean }) => {
      const config = loadConfig(options.config);
      const limit = Number(options.limit);
      if (!Number.isInteger(limit) || limit < 0) throw new Error(`--limit must be a whole number of 0 or more (got ${JSON.stringify(options.limit)})`);
      const listing = await listDeadLetters(config, options.sink, options.table ?? null, limit);
      if (options.json) return void process.stdout.write(JSON.stringify(listing, null, 2) + '\n');
      process.stdout.write(formatListing(listing, options.config));
    });
  group
    .command('replay')
    .description('ask the running service to write the dead letters through the sink again (after fixing the cause); those that still fail stay with the new reason (exit 2)')
    .requiredOption('-c, --config <file>', 'the YAML config file')
    .requiredOption('--sink <name>', 'the sink')
    .option('--table <schema.table>', 'only this table')
    .option('--json', 'print JSON: { sink, table, replayed, succeeded, failed, failures, remaining }')
    .action(async (options: { config: string; sink: string; table?: string; json?: boolean }) => {
      const config = loadConfig(options.config);
      checkSink(config, options.sink);
      const outcome = (await callAdmin(config, 'POST', '/api/dead-letters/replay', { sink: options.sink, table: options.table })) as ReplayOutcome;
      if (outcome.failed > 0) process.exitCode = 2;
      if (options.json) return void process.stdout.write(JSON.stringify(outcome, null, 2) + '\n');
      process.stdout.write(formatReplay(outcome, options.config));
    });
}

export async function listDeadLetters(config: LoadedConfig, sink: string, table: string | null, limit: number): Promise<DeadLetterListing> {
  checkSink(config, sink);
  const store = new DeadLetterStore(config.service.dataDir, sink);
  const tables: DeadLetterListing['tables'] = {};
  const newest: DeadLetter[] = [];
  let total = 0;
  // Streamed: the files may hold hundreds of MB; only the newest `limit` letters are kept.
  await store.scan((letter) => {
    if (table && letter.table !== table) return;
    total++;
    const entry = (tables[letter.table] ??= { count: 0, reasons: {} });
    entry.count++;
    const reason = reasonKind(letter.reason);
    entry.reasons[reason] = (entry.reasons[reason] ?? 0) + 1;
    if (limit > 0) {
      newest.push(letter);
      if (newest.length > limit) newest.shift();
    }
  });
  return { sink, table, files: await store.files(), total, tables, letters: newest };
}

function formatListing(listing: DeadLetterListing, configFile: string): string {
  const scope = listing.table ? ` of ${listing.table}` : '';
  if (listing.total === 0) return `sink ${listing.sink}: no dead letters${scope}\n`;
  const lines = [`sink ${listing.sink}: ${listing.total} dead letter(s)${scope} in ${listing.files.length} file(s)`];
  for (const [table, { count, reasons }] of Object.entries(listing.tables)) {
    lines.push(`  ${table}: ${count}`);
    for (const [reason, n] of Object.entries(reasons).sort(([, a], [, b]) => b - a)) lines.push(`    ${String(n).padStart(6)}  ${reason}`);
  }
  if (listing.letters.length > 0) {
    lines.push(`newest ${listing.letters.length} (newest last):`);
    for (const l of listing.letters) {
      const where = l.log ? `, log ${l.log.topic ? `${l.log.topic}/` : ''}${l.log.partition}:${l.log.offset}` : '';
      lines.push(`  ${l.time}  ${l.table} key ${l.key} op ${l.event.op} version ${l.version}${where}${l.attempts ? `, refused ${l.attempts} times` : ''}: ${l.reason}`);
    }
  }
  lines.push(`after fixing the cause: cdc dead-letters replay -c ${configFile} --sink ${listing.sink}${listing.table ? ` --table ${listing.table}` : ''}`);
  return lines.join('\n') + '\n';
}

function formatReplay(o: ReplayOutcome, configFile: string): string {
  const scope = o.table ? ` of ${o.table}` : '';
  if (o.replayed === 0) return `sink ${o.sink}: no dead letters${scope} to replay\n`;
  const lines = [
    `sink ${o.sink}: replayed ${o.replayed} dead letter(s)${scope}: ${o.succeeded} succeeded (written, or older than the row the sink holds), ` +
      `${o.failed} failed again (kept with the new reason); ${o.remaining} left in all`,
  ];
  for (const f of o.failures) lines.push(`  ${f.table} key ${f.key}: ${f.reason}`);
  if (o.failed > 0) lines.push(`see them all: cdc dead-letters list -c ${configFile} --sink ${o.sink}`);
  return lines.join('\n') + '\n';
}

/** A reason with the values that differ from letter to letter left out (quoted text, ids), so alike reasons group. */
export function reasonKind(reason: string): string {
  const kind = reason.replace(/'[^']*'/g, "'…'").replace(/\b(key|id|version) [^\s,;)]+/g, '$1 …');
  return kind.length > 200 ? `${kind.slice(0, 199)}…` : kind;
}

function checkSink(config: LoadedConfig, sink: string): void {
  if (!config.sinks.some((s) => s.name === sink)) {
    throw new Error(`no sink named "${sink}" in ${config.configFile} (configured: ${config.sinks.map((s) => s.name).join(', ') || 'none'})`);
  }
}
