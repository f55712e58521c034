import Mocha from 'mocha';
import { relative } from 'node:path';

const SLOWEST_FILES_SHOWN = 12;

/**
 * Mocha's spec reporter plus one plain closing line, `N passed, N failed, N skipped`,
 * that CI reads whatever the test runner, and the slowest test files (where the suite's
 * time goes, to keep CI within its budget).
 */
class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner: Mocha.Runner, options?: Mocha.MochaOptions) {
    super(runner, options);
    // Summed from the tests' own durations (hooks such as server starts excluded): in
    // parallel mode (`npm test` runs files on two workers) a file's events arrive in one burst
    // when it ends, so timing them here would measure nothing.
    const secondsByFile = new Map<string, number>();
    runner.on('test end', (test) => {
      if (!test.file || test.duration === undefined) return;
      const file = relative(process.cwd(), test.file);
      secondsByFile.set(file, (secondsByFile.get(file) ?? 0) + test.duration / 1000);
    });
    runner.once('end', () => {
      const { passes, failures, pending } = runner.stats ?? { passes: 0, failures: 0, pending: 0 };
      const slowest = [...secondsByFile].sort((a, b) => b[1] - a[1]).slice(0, SLOWEST_FILES_SHOWN);
      if (slowest.length > 1) {
        process.stdout.write('\nslowest test files (their tests\' durations summed):\n');
        for (const [file, seconds] of slowest) process.stdout.write(`  ${seconds.toFixed(1).padStart(7)} s  ${file}\n`);
      }
      process.stdout.write(`\n${passes} passed, ${failures} failed, ${pending} skipped\n`);
    });
  }
}

export = SummaryReporter;
