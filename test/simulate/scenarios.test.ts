// The shipped scenarios run, and tell the story each describes: rack r2 lost at the afternoon peak (its
// VMs restart elsewhere, the database anti-affinity cannot place waits for r2), a rolling maintenance of
// prod (every host emptied by live migration and back, no VM down), a lab on a nearly full cluster (its web
// tier waits for memory until runners are deleted). The same seed gives the same bytes; another seed, another run.

import { before, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadScenario } from "../../controller/simulate/scenario.ts";
import { runScenario } from "../../controller/simulate/run.ts";
import type { RunResult } from "../../controller/simulate/run.ts";
import { runJson } from "../../controller/simulate/json-out.ts";
import { simulate } from "../../controller/cli/simulate.ts";
import { REPO } from "../support/process.ts";

const SCENARIOS = join(REPO, "manifests", "scenarios");
const RACK_R2 = new Set(["esx-03", "esx-04"]);
const CRASH_AT = 3600;
const R2_BACK_AT = CRASH_AT + 40 * 60;

const runs = new Map<string, RunResult>();

before(async () => {
  for (const name of ["rack-loss-at-peak", "rolling-maintenance", "lab-on-full-cluster"]) {
    runs.set(name, await runScenario(loadScenario(join(SCENARIOS, `${name}.yaml`))));
  }
});

function run(name: string): RunResult {
  const result = runs.get(name);
  assert.ok(result, `no run of ${name}`);
  return result;
}

test("rack r2 crashes at 13:30: every VM it ran goes down then, and each is running and Ready again with none started twice", () => {
  const { summary, timeline } = run("rack-loss-at-peak");
  assert.equal(summary.splitBrainAttempts, 0);
  assert.ok(summary.recoveries.length >= 4, `only ${summary.recoveries.length} recoveries`);
  for (const r of summary.recoveries) {
    assert.ok(RACK_R2.has(r.fromHost), `${r.vm} went down on ${r.fromHost}, outside rack r2`);
    assert.equal(r.cause, "HostFailure");
    assert.equal(r.downAt, CRASH_AT);
  }
  assert.deepEqual(summary.notRecovered, []);
  assert.deepEqual(summary.notRunning, []);
  assert.equal(timeline.filter((r) => r.kind === "event" && r.reason === "FaultInjected").length, 2);
});

test("the database of rack r2 waits for r2 (its anti-affinity keeps the databases on three racks); the rest restart on r1 and r3 before", () => {
  const { summary, timeline } = run("rack-loss-at-peak");
  const databases = summary.recoveries.filter((r) => r.vm.startsWith("shop/db-"));
  assert.equal(databases.length, 1);
  const db = databases[0]!;
  assert.equal(db.priority, "Highest");
  assert.ok(db.recoveredAt >= R2_BACK_AT, `the database was back at ${db.recoveredAt}s, before r2 at ${R2_BACK_AT}s`);
  assert.ok(RACK_R2.has(db.toHost), `the database came back on ${db.toHost}`);
  assert.ok(timeline.some((r) => r.kind === "state" && r.object === `VirtualMachine/${db.vm}` && /anti-affinity/.test(r.message ?? "")), "its status never said why it waited");
  for (const r of summary.recoveries.filter((x) => x !== db)) {
    assert.ok(!RACK_R2.has(r.toHost), `${r.vm} came back on ${r.toHost}, in rack r2`);
    assert.ok(r.recoveredAt < R2_BACK_AT, `${r.vm} was back only at ${r.recoveredAt}s`);
  }
  assert.deepEqual(summary.byPriority.map((p) => p.priority), [...new Set(summary.recoveries.map((r) => r.priority))].sort((a, b) => ORDER.indexOf(a) - ORDER.indexOf(b)));
});

const ORDER = ["Highest", "High", "Medium", "Low", "Lowest", "Disabled", "Unprotected"];

test("at the peak, with two hosts down, the four left run hot; the replicas keep their RPO", () => {
  const { summary, series } = run("rack-loss-at-peak");
  assert.ok((summary.peakUtilization.cpu?.percent ?? 0) >= 90, `peak CPU ${summary.peakUtilization.cpu?.percent}%`);
  assert.ok(!RACK_R2.has(summary.peakUtilization.cpu!.host));
  const r2 = series.hosts.filter((h) => RACK_R2.has(h.name));
  const crashed = series.t.findIndex((t) => t > CRASH_AT);
  for (const host of r2) assert.equal(host.state[crashed], "Down");
  assert.ok(summary.rpo.length > 0 && summary.rpo.every((r) => r.met), JSON.stringify(summary.rpo));
});

test("the same scenario and seed give byte-identical JSON; another seed gives another run", async () => {
  const scenario = loadScenario(join(SCENARIOS, "rack-loss-at-peak.yaml"));
  const again = runJson(await runScenario(scenario));
  assert.equal(again, runJson(run("rack-loss-at-peak")));
  const reseeded = await runScenario(scenario, { seed: 7 });
  assert.equal(reseeded.scenario.seed, 7);
  assert.notEqual(runJson(reseeded), again);
});

test("a rolling maintenance empties every host of prod in turn by live migration, and no VM goes down", () => {
  const { summary, series, timeline } = run("rolling-maintenance");
  assert.equal(summary.splitBrainAttempts, 0);
  assert.deepEqual(summary.recoveries, []);
  assert.deepEqual(summary.notRecovered, []);
  assert.deepEqual(summary.notRunning, []);
  assert.ok(summary.migrations.length >= 6, `${summary.migrations.length} migrations`);
  for (const m of summary.migrations) {
    assert.equal(m.phase, "Succeeded", `${m.vm}: ${m.reason}`);
    assert.equal(m.why, "Maintenance");
    assert.ok((m.downtimeMs ?? Infinity) < 1000, `${m.vm} paused ${m.downtimeMs} ms`);
  }
  const prod = series.hosts.filter((h) => h.cluster === "prod");
  assert.equal(prod.length, 6);
  for (const host of prod) {
    assert.ok(host.state.includes("Maintenance"), `${host.name} never went into maintenance`);
    assert.equal(host.state.at(-1), "Up");
  }
  const notes = timeline.filter((r) => r.kind === "note").map((r) => (r.kind === "note" ? r.message : ""));
  assert.equal(notes.at(-1), "rolling maintenance done: 6 hosts");
  // One host at a time: each host is empty before the next one enters.
  const entering = notes.filter((n) => n.endsWith(" enters maintenance")).length;
  assert.equal(entering, 5);
});

test("a lab on a nearly full cluster: db and app start, the web tier waits for memory until runners are deleted, then the lab runs", () => {
  const { summary, scenario } = run("lab-on-full-cluster");
  const deletedAt = scenario.steps.find((s) => s.summary.startsWith("delete"))!.at;
  const lab = summary.arrivals.find((a) => a.object === "LabTopology/qa/checkout");
  assert.ok(lab?.readyAt !== undefined, "the lab was never Ready");
  assert.ok(lab.readyAt >= deletedAt);
  assert.match(lab.waitedFor ?? "", /insufficient memory/);
  const web = summary.arrivals.filter((a) => a.object.includes("/checkout-0-web-"));
  assert.equal(web.length, 2);
  for (const w of web) {
    assert.ok(w.readyAt !== undefined && w.readyAt >= deletedAt, `${w.object} Ready at ${w.readyAt}`);
    assert.match(w.waitedFor ?? "", /insufficient memory/);
  }
  for (const early of summary.arrivals.filter((a) => /checkout-0-(db|app)-/.test(a.object))) {
    assert.ok(early.readyAt !== undefined && early.readyAt < deletedAt, `${early.object} Ready at ${early.readyAt}`);
  }
  assert.equal(summary.splitBrainAttempts, 0);
});

test("vireo simulate -o json prints the JSON timeline, the same bytes as the run", async () => {
  const out: string[] = [];
  const err: string[] = [];
  const code = await simulate([join(SCENARIOS, "lab-on-full-cluster.yaml"), "-o", "json"], { out: (s) => out.push(s), err: (s) => err.push(s) });
  assert.equal(code, 0, err.join("\n"));
  assert.equal(`${out.join("\n")}\n`, runJson(run("lab-on-full-cluster")));
  const parsed = JSON.parse(out.join("\n")) as RunResult;
  assert.deepEqual(Object.keys(parsed), ["scenario", "summary", "timeline", "series"]);
  for (const record of parsed.timeline) assert.deepEqual(Object.keys(record).slice(0, 2), ["t", "kind"]);
});
