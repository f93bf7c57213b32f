// The real kstatus library (sigs.k8s.io/cli-utils/pkg/kstatus, what Flux's health checks run), through the
// small Go command in test/tools/kstatus, reads the objects Vireo's controller wrote: Current when Ready,
// InProgress while reconciling or before the latest generation is observed, Failed when stalled.

import { before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { ensureKstatus } from "../tools/setup.ts";
import { recoveryPlanSamples, sampleObjects, type Sample } from "./fleet.ts";

interface Computed {
  kind: string;
  name: string;
  status: string;
  message: string;
}

let samples: Map<string, Sample>;
let computed: Map<string, Computed>;

before(async () => {
  const kstatus = await ensureKstatus();
  samples = new Map([...await sampleObjects(), ...await recoveryPlanSamples()]);
  const names = [...samples.keys()];
  const r = spawnSync(kstatus, [], { input: JSON.stringify(names.map((n) => samples.get(n)!.object)), encoding: "utf8" });
  assert.equal(r.status, 0, `kstatus failed:\n${r.stderr}`);
  const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Computed);
  assert.equal(lines.length, names.length);
  computed = new Map(names.map((n, i) => [n, lines[i]!]));
});

function statusOf(name: string): string {
  const c = computed.get(name);
  assert.ok(c, `no sample ${name}`);
  return c.status;
}

test("objects whose desired state is reached are Current: a Running VM, a Halted stopped VM, hosts, a cluster, a policy", () => {
  for (const name of ["running-vm", "halted-vm", "ready-host", "maintenance-host", "cluster", "policy"]) {
    assert.equal(statusOf(name), "Current", `${name}: ${computed.get(name)?.message}`);
  }
});

test("objects Vireo is still working on are InProgress: a booting VM, a draining host", () => {
  assert.equal(statusOf("starting-vm"), "InProgress");
  assert.equal(statusOf("draining-host"), "InProgress");
});

test("an object whose latest generation is not observed yet is InProgress even though Ready=True", () => {
  assert.equal(statusOf("generation-behind-vm"), "InProgress");
  assert.match(computed.get("generation-behind-vm")!.message, /generation is 2, but latest observed generation is 1/);
});

test("stalled objects are Failed: an unschedulable VM, a VM marked Failed by VM monitoring", () => {
  assert.equal(statusOf("unschedulable-vm"), "Failed");
  assert.equal(statusOf("failed-vm"), "Failed");
});

test("RecoveryPlans: Succeeded is Current, one under way InProgress, one Failed or waiting for a person Failed", () => {
  assert.equal(statusOf("succeeded-plan"), "Current");
  assert.equal(statusOf("running-plan"), "InProgress");
  assert.equal(statusOf("failed-plan"), "Failed");
  assert.equal(statusOf("waiting-plan"), "Failed");
});
