// Preloaded with `node --require` into a benchmark child whose code we do not
// own: prints its peak resident memory as its last stderr line when it exits.
import { PEAK_RSS_PREFIX, peakRssMb } from './rss';

process.on('exit', () => process.stderr.write(`\n${PEAK_RSS_PREFIX}${peakRssMb() ?? 0}\n`));
