// npm run bench -- [scenario ...] [--quick]: every benchmark beside its physical
// limit, in one table (see bench/lib/runner.ts for the options).
import { mysqlSourceScenario } from './mysql-source';
import { latencyScenario } from './latency';
import { main } from './lib/runner';
import { memoryScenario } from './memory';
import { pgSourceScenario } from './pg-source';
import { scaleScenario } from './scale';
import { sinksScenario } from './sinks';
import { snapshotScenario } from './snapshot';

export const scenarios = [pgSourceScenario, mysqlSourceScenario, snapshotScenario, sinksScenario, latencyScenario, memoryScenario, scaleScenario];

if (require.main === module) main(scenarios);
