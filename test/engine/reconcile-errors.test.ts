// A reconcile that throws shows it in the object's conditions, not only in the log, and the next
// successful reconcile clears it.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Scenario, clusterYaml, condition, hostYaml, vmYaml } from "../support/scenario.ts";

test("a VM whose shutdown keeps failing says so in Ready and Reconciling, with the cause, until the host answers again", async () => {
  const s = await Scenario.start(clusterYaml() + hostYaml("h1") + vmYaml("web"));
  await s.until(() => s.vm("web").status?.phase === "Running");

  const stopVm = s.sim.stopVm.bind(s.sim);
  s.sim.stopVm = async () => { throw new Error("the host's management agent is restarting"); };
  s.apply(vmYaml("web", { runStrategy: "Halted" }));
  await s.until(() => condition(s.vm("web"), "Ready")?.reason === "ReconcileError", 60_000);
  assert.match(condition(s.vm("web"), "Ready")?.message ?? "", /reconcile failed, retrying with backoff: shut down default\/web: runStrategy is Halted failed: the host's management agent is restarting/);
  assert.equal(condition(s.vm("web"), "Reconciling")?.reason, "ReconcileError");
  assert.equal(condition(s.vm("web"), "Stalled"), undefined, "retried, so not stalled");

  s.sim.stopVm = stopVm;
  await s.until(() => s.vm("web").status?.phase === "Stopped", 120_000);
  assert.equal(condition(s.vm("web"), "Ready")?.reason, "Halted");
  await s.stop();
});
