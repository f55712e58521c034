// Preloaded into a service (NODE_OPTIONS=--require .../memory-trace-preload.js,
// BENCH_MEMORY_TRACE=<file>): appends one JSON line per second with
// process.memoryUsage() and V8's heap-space sizes, so a bench can tell which
// memory grows (old space, large objects, external buffers, or outside V8).
import { appendFileSync } from 'node:fs';
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';

const file = process.env.BENCH_MEMORY_TRACE;
// NODE_OPTIONS reaches every node process of a run (npm, the harness): trace only the service.
if (file && /cli[\\/]main\.js$/.test(process.argv[1] ?? '')) {
  const started = Date.now();
  const mb = (n: number) => Math.round((n / 1048576) * 10) / 10;
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    const h = getHeapStatistics();
    const spaces: Record<string, number> = {};
    for (const s of getHeapSpaceStatistics()) spaces[s.space_name.replace(/_space$/, '')] = mb(s.space_size);
    appendFileSync(file, `${JSON.stringify({
      pid: process.pid, at: new Date().toISOString().slice(11, 21), t: Math.round((Date.now() - started) / 100) / 10,
      rss: mb(m.rss), heapTotal: mb(m.heapTotal), heapUsed: mb(m.heapUsed), external: mb(m.external), arrayBuffers: mb(m.arrayBuffers),
      limit: mb(h.heap_size_limit), spaces,
    })}\n`);
  }, 1000);
  timer.unref();
}
