// `vireo simulate SCENARIO.yaml`: a what-if run of the real controller against the simulated hosts on a
// virtual clock — a fleet, a timeline of faults, maintenance, migrations, workload changes and arrivals, and
// a duration in; a summary, a JSON timeline and a self-contained HTML report out. docs/simulate.md.

import { writeFileSync } from "node:fs";
import { parseArgs, usage, UsageError, type FlagSpec } from "./args.ts";
import type { Output } from "./get.ts";
import { loadScenario } from "../simulate/scenario.ts";
import { ScenarioError } from "../simulate/problems.ts";
import { runScenario } from "../simulate/run.ts";
import type { RunResult } from "../simulate/run.ts";
import { runJson } from "../simulate/json-out.ts";
import { formatSummary } from "../simulate/summary-text.ts";
import { renderReport } from "../simulate/report.ts";

const SIMULATE_FLAGS: FlagSpec = {
  seed: { type: "string", help: "seed of the simulated guests' load (default: the scenario's seed, else 1); the same seed replays the same run" },
  report: { type: "string", help: "write a self-contained HTML report (charts and tables, opens offline) to this file" },
  timeline: { type: "string", help: "write the JSON timeline to this file" },
  output: { type: "string", short: "o", default: "text", help: "text (the summary) or json (the JSON timeline, on stdout)" },
  help: { type: "boolean", short: "h", help: "this help" },
};

export const SIMULATE_HELP = `vireo simulate — a what-if run on a virtual clock: the real controller against the simulated hosts

Usage:
  vireo simulate SCENARIO.yaml [--seed N] [--report report.html] [--timeline run.json] [-o text|json]

A scenario names a fleet (manifests, inline or files relative to the scenario), a duration, and a timeline
of steps at times: faults (HostCrash, NetworkIsolation, NetworkPartition, StoragePathLoss, GuestHang,
SlowHost on a host, a list of hosts or a label selector), maintenance on or off, a rolling maintenance,
migrations, workload changes, manifests arriving (new VMs, labs) and deletions. Shipped scenarios are in
manifests/scenarios/; docs/simulate.md describes the format.

The summary gives each VM's recovery time and each priority's, the VMs that never came back and why, the
migrations and their downtime, whether each RPO was met, peak host use and imbalance, and split-brain
attempts, which must be 0: the command exits 1 when any was made, and 2 when the scenario is refused.

Flags:
${usage(SIMULATE_FLAGS)}`;

export async function simulate(argv: readonly string[], io: Output): Promise<number> {
  const { flags, positionals } = parseArgs(argv, SIMULATE_FLAGS);
  if (flags["help"]) {
    io.out(SIMULATE_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? "vireo simulate needs a scenario file" : `vireo simulate takes one scenario file, got ${positionals.length}`);
  const output = flags["output"] as string;
  if (output !== "text" && output !== "json") throw new UsageError(`-o must be text or json, got ${output}`);
  const seed = seedFlag(flags["seed"] as string | undefined);

  let scenario;
  try {
    scenario = loadScenario(positionals[0]!);
  } catch (error) {
    if (!(error instanceof ScenarioError)) throw error;
    io.err(`error: the scenario is refused:\n${error.message}`);
    return 2;
  }
  const result = await runScenario(scenario, seed === undefined ? {} : { seed });
  writeOutputs(result, { output, timeline: flags["timeline"] as string | undefined, report: flags["report"] as string | undefined }, io);
  if (result.summary.splitBrainAttempts > 0) {
    io.err(`error: ${result.summary.splitBrainAttempts} split-brain attempt(s): a VM was started while another copy of it might still run`);
    return 1;
  }
  return 0;
}

/** The summary or the JSON on stdout, and the timeline and report files asked for. */
function writeOutputs(result: Readonly<RunResult>, outputs: { output: string; timeline: string | undefined; report: string | undefined }, io: Output): void {
  const json = runJson(result);
  if (outputs.timeline) writeFileSync(outputs.timeline, json);
  if (outputs.report) writeFileSync(outputs.report, renderReport(result));
  if (outputs.output === "json") {
    io.out(json.trimEnd());
    return;
  }
  io.out(formatSummary(result));
  const written = ([["timeline", outputs.timeline], ["report", outputs.report]] as const).filter(([, file]) => file).map(([what, file]) => `Wrote the ${what} to ${file}`);
  if (written.length > 0) io.out(`\n${written.join("\n")}`);
}

function seedFlag(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) > 2147483647) throw new UsageError(`--seed must be a whole number from 0 to 2147483647, got "${text}"`);
  return Number(text);
}
