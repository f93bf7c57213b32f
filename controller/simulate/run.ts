// One `vireo simulate` run: the scenario's fleet applied, the real controller started against the
// simulated hosts on a virtual clock, the timeline's steps carried out at their times, the fleet sampled at
// a fixed interval, and what happened summed up. Time jumps from timer to timer, so an hour of simulated
// operation takes seconds; nothing reads the wall clock, and every random draw (the guests' load, the work
// queue's retry jitter) comes from the run's seed.

import { basename } from "node:path";
import { keyOf } from "../api/types.ts";
import { settle } from "../core/clock.ts";
import type { Scenario } from "./scenario.ts";
import { RunRecorder } from "./recorder.ts";
import type { TimelineRecord } from "./recorder.ts";
import { emptySeries, padSeries, sample } from "./samples.ts";
import type { Series } from "./samples.ts";
import { summarize } from "./results.ts";
import type { RunSummary } from "./results.ts";
import { applyStep } from "./steps.ts";
import type { RollingMaintenance } from "./steps.ts";
import { SimulatedWorld } from "./world.ts";

export interface RunHeader {
  name: string;
  description?: string;
  file: string;
  seed: number;
  start: string;
  durationSeconds: number;
  sampleSeconds: number;
  steps: { step: number; at: number; summary: string; note?: string }[];
}

/** Everything a run produced: the JSON timeline's content, and what the report draws. */
export interface RunResult {
  scenario: RunHeader;
  summary: RunSummary;
  timeline: TimelineRecord[];
  series: Series;
}

export interface RunOptions {
  /** Overrides the scenario's seed. */
  seed?: number;
}

export async function runScenario(scenario: Readonly<Scenario>, options: RunOptions = {}): Promise<RunResult> {
  const seed = options.seed ?? scenario.seed;
  let now = (): number => scenario.startMs;
  const recorder = new RunRecorder(scenario.startMs, () => now());
  const world = new SimulatedWorld({ seed, startMs: scenario.startMs, statusWriter: recorder, events: recorder });
  now = () => world.clock.now();
  recorder.attach(world.sim, world.store);
  const rollouts: RollingMaintenance[] = [];
  const series = emptySeries();
  const initial = new Set<string>();
  // A step on a timer makes its change when the timer fires; a step that failed fails the run at the next turn.
  const failedSteps: unknown[] = [];
  try {
    world.apply(scenario.fleet);
    // Steps at the very start happen before the controller's first look, as if they were in the manifests.
    for (const step of scenario.steps) {
      if (step.atMs === 0) await applyStep(world, recorder, step, rollouts);
      else world.clock.setTimer(step.atMs, () => { applyStep(world, recorder, step, rollouts).catch((error: unknown) => { failedSteps.push(error); }); });
    }
    for (const kind of ["VirtualMachine", "LabTopology"] as const) for (const object of world.store.list(kind)) initial.add(keyOf(object));
    await world.start();
    const afterStep = async (): Promise<boolean> => {
      if (failedSteps.length > 0) throw new Error("a step of the timeline failed", { cause: failedSteps[0] });
      await recorder.afterStep();
      let changed = false;
      for (const rollout of rollouts) if (!rollout.done && rollout.poll()) changed = true;
      return changed;
    };
    for (const at of sampleTimes(scenario)) {
      await world.runUntil(scenario.startMs + at, afterStep);
      sample(series, at / 1000, { observation: await world.sim.observe(), truth: world.sim.groundTruth(), store: world.store });
    }
    await recorder.finish(world.sim);
    await settle(1);
  } finally {
    await world.stop();
  }
  padSeries(series);
  return {
    scenario: header(scenario, seed),
    summary: summarize({ store: world.store, outages: recorder.outages, migrations: recorder.migrations, series, records: recorder.records, initial, splitBrainAttempts: world.sim.splitBrainAttempts() }),
    timeline: recorder.records,
    series,
  };
}

/** Every sample interval from the start, and the end. */
function sampleTimes(scenario: Readonly<Scenario>): number[] {
  const times: number[] = [];
  for (let at = 0; at < scenario.durationMs; at += scenario.sampleIntervalMs) times.push(at);
  times.push(scenario.durationMs);
  return times;
}

function header(scenario: Readonly<Scenario>, seed: number): RunHeader {
  return {
    name: scenario.name,
    ...(scenario.description !== undefined ? { description: scenario.description } : {}),
    file: basename(scenario.file),
    seed,
    start: new Date(scenario.startMs).toISOString(),
    durationSeconds: scenario.durationMs / 1000,
    sampleSeconds: scenario.sampleIntervalMs / 1000,
    steps: scenario.steps.map((s) => ({ step: s.index, at: s.atMs / 1000, summary: s.summary, ...(s.note !== undefined ? { note: s.note } : {}) })),
  };
}
