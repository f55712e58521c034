// `--cpu-prof` for a child we start through someone else's spawn (the `cdc`
// service via ServiceProcess): NODE_OPTIONS refuses --cpu-prof but allows
// --require, so this preload runs V8's profiler and writes
// <BENCH_CPU_PROF>/<pid>.cpuprofile when the process exits.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

const dir = process.env.BENCH_CPU_PROF;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 1000 });
  session.post('Profiler.start');
  // A same-thread inspector session answers synchronously, so this works inside 'exit'.
  process.on('exit', () => session.post('Profiler.stop', (error, result) => {
    if (!error) writeFileSync(join(dir, `${process.pid}.cpuprofile`), JSON.stringify(result.profile));
  }));
}

