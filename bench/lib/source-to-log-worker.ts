// Child-process entry of sourceToLogInChild(): argv[2] is the JSON spec; the result is the last stdout line.
import { tuneGarbageCollection } from '../../core/runtime/gc-tuning';
import { sourceToLog, SourceToLogSpec } from './source-to-log';

tuneGarbageCollection(); // the heap kept near its live data, as `cdc run` keeps it

sourceToLog(JSON.parse(process.argv[2]) as SourceToLogSpec).then(
  (result) => {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exit(0);
  },
  (error: Error) => {
    process.stderr.write(`${error.stack ?? error.message}\n`);
    process.exit(1);
  },
);
