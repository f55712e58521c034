import { Command } from 'commander';
import { loadConfig } from '../config/load';
import { callAdmin } from './admin-client';

interface PauseReply {
  table: string;
  sink: string | null;
  paused: Array<{ table: string; sink: string | null; since: string }>;
}

/** `cdc pause|resume -c cdc.yaml --table SCHEMA.TABLE [--sink NAME] [--json]`: per-table control of the running service. */
export function registerPauseCommands(program: Command): void {
  for (const action of ['pause', 'resume'] as const) {
    program
      .command(action)
      .description(
        action === 'pause'
          ? "stop applying one table's changes to a sink (or all sinks) without stopping the pipeline; they keep landing in the log (survives restarts)"
          : "apply a paused table's held changes from the log, in order, and keep it flowing",
      )
      .requiredOption('-c, --config <file>', 'the YAML config file')
      .requiredOption('--table <schema.table>', 'the table')
      .option('--sink <name>', 'only this sink (default: every sink)')
      .option('--json', 'print JSON')
      .action(async (options: { config: string; table: string; sink?: string; json?: boolean }) => {
        const reply = (await callAdmin(loadConfig(options.config), 'POST', `/api/${action}`, { table: options.table, sink: options.sink })) as PauseReply;
        if (options.json) return void process.stdout.write(JSON.stringify(reply, null, 2) + '\n');
        const target = reply.sink ? `sink ${reply.sink}` : 'every sink';
        process.stdout.write(
          action === 'pause'
            ? `paused ${reply.table} for ${target}: its changes stay in the log until \`cdc resume -c ${options.config} --table ${reply.table}\`\n`
            : `resumed ${reply.table} for ${target}: its held changes are being applied in order\n`,
        );
        const still = reply.paused.map((p) => `${p.table}${p.sink ? ` (sink ${p.sink})` : ''}`);
        process.stdout.write(`paused now: ${still.join(', ') || 'none'}\n`);
      });
  }
}
