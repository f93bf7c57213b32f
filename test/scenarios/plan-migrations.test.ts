// `vireo plan` and migrations, on the virtual clock: the migrations asked for and not ended are listed with
// the planner's verdict, their target and estimate; a copy under way, one waiting for a slot, and the
// cancel of a copy whose request is gone, which the actions table shows with the host it was going to.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Scenario, clusterYaml, hostYaml, vmYaml } from "../support/scenario.ts";
import { dryRun } from "../../controller/engine/dry-run.ts";
import { formatPlan } from "../../controller/cli/plan-format.ts";
import { ObjectStore } from "../../controller/sources/store.ts";
import { KINDS, keyOf, objectKey } from "../../controller/api/types.ts";
import type { VirtualMachineMigration } from "../../controller/api/types.ts";

function migrationYaml(name: string, vm: string, target: string): string {
  return `apiVersion: vireo.dev/v1alpha1\nkind: VirtualMachineMigration\nmetadata: {name: ${name}, namespace: default}\nspec: {vmName: ${vm}, targetHost: ${target}}\n---\n`;
}

/** What `vireo plan` reads: a copy of the scenario's objects, less those named. */
function planStore(s: Scenario, without: string[] = []): ObjectStore {
  const store = new ObjectStore();
  for (const kind of KINDS) for (const object of s.store.list(kind)) if (!without.includes(keyOf(object))) store.upsert(structuredClone(object));
  return store;
}

test("vireo plan lists a copy under way and a migration waiting for a slot with their estimates, and the cancel of a copy whose request is gone with its target", async () => {
  // One migration may leave a host at once, on a slow link: the 16 GiB guest copies for minutes.
  const cluster = clusterYaml("prod", "Pack").replace("placement: {strategy: Pack}\n", "placement: {strategy: Pack}\n  migration: {bandwidthMiBps: 16, parallelOutboundPerHost: 1}\n");
  const vms = vmYaml("big", { memoryMiB: 16384, extra: "  workload: {profile: Steady, dirtyRateMiBps: 4}\n" }) + vmYaml("small", { extra: "  workload: {profile: Idle}\n" });
  const s = await Scenario.start(cluster + hostYaml("h1") + hostYaml("h2") + vms);
  await s.until(() => s.vm("big").status?.phase === "Running" && s.vm("small").status?.phase === "Running");
  const source = s.vm("big").status!.host!;
  assert.equal(s.vm("small").status?.host, source, "packed on one host");
  const target = source === "h1" ? "h2" : "h1";
  const request = (name: string) => s.store.get(objectKey("VirtualMachineMigration", name, "default")) as VirtualMachineMigration;

  s.apply(migrationYaml("move-big", "big", target));
  await s.until(() => request("move-big").status?.phase === "PreCopy", 60_000);
  s.apply(migrationYaml("move-small", "small", target));
  await s.advance(5_000);
  assert.equal(request("move-small").status?.phase, "Pending");

  const plan = await dryRun(planStore(s), s.sim, s.clock);
  const byName = new Map(plan.migrations.map((m) => [m.name, m]));
  assert.deepEqual([...byName.keys()], ["move-big", "move-small"]);
  const big = byName.get("move-big")!;
  assert.deepEqual([big.vm, big.phase, big.verdict, big.target], ["big", "PreCopy", "Live", target]);
  assert.ok(big.estimate && big.estimate.durationSeconds > 60, `a long copy expected: ${JSON.stringify(big.estimate)}`);
  const small = byName.get("move-small")!;
  assert.deepEqual([small.phase, small.verdict, small.target], ["Pending", "Waiting", target]);
  assert.match(small.message ?? "", /waiting for a migration slot/);
  assert.equal(small.estimate?.converges, true);
  const table = formatPlan(plan);
  assert.match(table, /^MIGRATION\s+VM\s+TARGET\s+EXPECTED$/m);
  assert.match(table, new RegExp(`^VirtualMachineMigration default/move-big\\s+default/big\\s+${target}\\s+PreCopy; \\d+ rounds, ~\\d+ ms downtime, ~[\\d.]+ s$`, "m"));
  assert.match(table, new RegExp(`^VirtualMachineMigration default/move-small\\s+default/small\\s+${target}\\s+waits: waiting for a migration slot .*; \\d+ rounds`, "m"));

  // The request of the copy under way is gone: the plan cancels the copy, and says where it was going.
  const cancel = await dryRun(planStore(s, ["VirtualMachineMigration/default/move-big"]), s.sim, s.clock);
  const action = cancel.actions.find((a) => a.action === "CancelMigration");
  assert.deepEqual(action && [action.namespace, action.name, action.host], ["default", "big", target]);
  assert.match(formatPlan(cancel), new RegExp(`^VirtualMachine default/big\\s+CancelMigration\\s+${target}\\s+its VirtualMachineMigration was deleted$`, "m"));
  assert.equal(s.controller.ctx.observed.migration("default/big")?.phase, "PreCopy", "planning touched nothing");
  await s.stop();
});
