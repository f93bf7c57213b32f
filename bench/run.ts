// Runs the benchmarks in sequence: `node bench/run.ts` runs all, `node bench/run.ts placement …` a subset.
// Each benchmark prints its own figures beside its baseline; add one by adding a line to `benchmarks`.

import { benchPlacement } from "./placement.ts";
import { benchCluster, benchCluster10k } from "./cluster.ts";
import { benchFileMode } from "./file-mode.ts";
import { benchFailover } from "./failover.ts";
import { benchFaultTolerance } from "./fault-tolerance.ts";
import { benchDrift } from "./drift.ts";
import { benchMigration } from "./migration.ts";
import { benchBalancing } from "./balancing.ts";
import { benchReplication } from "./replication.ts";
import { benchLabs } from "./labs.ts";
import { benchSimulate } from "./simulate.ts";
import { benchConsole } from "./console.ts";
import { benchFootprint } from "./footprint.ts";

interface Benchmark {
  name: string;
  run: () => Promise<void>;
}

const benchmarks: readonly Benchmark[] = [
  { name: "placement", run: benchPlacement },
  { name: "cluster", run: benchCluster },
  { name: "cluster-10k", run: benchCluster10k },
  { name: "file-mode", run: benchFileMode },
  { name: "failover", run: benchFailover },
  { name: "fault-tolerance", run: benchFaultTolerance },
  { name: "drift", run: benchDrift },
  { name: "migration", run: benchMigration },
  { name: "balancing", run: benchBalancing },
  { name: "replication", run: benchReplication },
  { name: "labs", run: benchLabs },
  { name: "simulate", run: benchSimulate },
  { name: "console", run: benchConsole },
  { name: "footprint", run: benchFootprint },
];

async function main(names: readonly string[]): Promise<void> {
  const unknown = names.filter((name) => !benchmarks.some((b) => b.name === name));
  if (unknown.length > 0) {
    console.error(`unknown benchmark: ${unknown.join(", ")} (known: ${benchmarks.map((b) => b.name).join(", ")})`);
    process.exitCode = 2;
    return;
  }
  const selected = names.length === 0 ? benchmarks : benchmarks.filter((b) => names.includes(b.name));
  for (const benchmark of selected) await benchmark.run();
}

await main(process.argv.slice(2));
