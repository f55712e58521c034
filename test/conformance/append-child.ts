// A writer for the kill -9 test: opens a log from the config in argv[2] and
// appends batches of 50 from three concurrent workers forever, printing
// "worker:batch" once each append has resolved (is durable).
import { createLog, LogContext } from '../../core/log/create-log';
import { LogConfig } from '../../core/log/log-config';
import { makeEvent } from '../support/events';

async function main(): Promise<void> {
  const { config, context } = JSON.parse(process.argv[2]) as { config: LogConfig; context: LogContext };
  const log = createLog(config, context);
  await log.open();
  const worker = async (w: number) => {
    for (let n = 0; ; n++) {
      await log.append(Array.from({ length: 50 }, (_, i) => makeEvent({ key: { id: `${w}:${n}:${i}` }, after: { w, n, i } })));
      process.stdout.write(`${w}:${n}\n`);
    }
  };
  await Promise.all([0, 1, 2].map(worker));
}

main().catch((error: Error) => {
  process.stderr.write(`append-child: ${error.message}\n`);
  process.exit(1);
});
