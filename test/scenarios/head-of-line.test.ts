// Admission control without head-of-line blocking, replayed on the virtual clock: a VM admission control
// refuses on its own account holds back no one; a VM that fits no host is Unschedulable and Stalled; every
// VM left waiting says why, in its status and in an Event.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Scenario, condition } from "../support/scenario.ts";
import { DATABASES, HOL_NAMESPACE, HUGE, WEB, headOfLineFleet } from "../support/head-of-line-fleet.ts";
import { dryRun } from "../../controller/engine/dry-run.ts";
import { ObjectStore } from "../../controller/sources/store.ts";

test("six hosts, one in maintenance, 22 VMs: every VM that fits runs, the fifth database says why it waits, the huge one is Unschedulable and Stalled", async () => {
  const s = await Scenario.start(headOfLineFleet());
  const vm = (name: string) => s.vm(name, HOL_NAMESPACE);
  const settled = () => [...DATABASES, ...WEB, HUGE].every((n) => ["Running", "Pending", "Unschedulable"].includes(vm(n).status?.phase ?? "") && condition(vm(n), "Reconciling")?.reason !== "Scheduling");
  await s.until(() => settled() && WEB.every((n) => vm(n).status?.phase === "Running"), 300_000);
  await s.advance(30_000);

  assert.deepEqual(WEB.filter((n) => vm(n).status?.phase !== "Running"), [], "no web VM waits behind the refused database");
  const running = DATABASES.filter((n) => vm(n).status?.phase === "Running");
  assert.equal(running.length, 4, "four databases run, one on each of four hosts");
  assert.equal(new Set(running.map((n) => vm(n).status?.host)).size, 4);

  const [fifth] = DATABASES.filter((n) => vm(n).status?.phase !== "Running");
  const ready = condition(vm(fifth!), "Ready");
  assert.equal(vm(fifth!).status?.phase, "Pending");
  assert.equal(ready?.reason, "InsufficientFailoverCapacity");
  assert.match(ready?.message ?? "", /refused on its own \(its required VM anti-affinity\)/);
  assert.ok(s.events.some((e) => e.object === `VirtualMachine/${HOL_NAMESPACE}/${fifth}` && e.type === "Warning" && e.reason === "InsufficientFailoverCapacity"), "the waiting VM has an event saying why");

  assert.equal(vm(HUGE).status?.phase, "Unschedulable");
  assert.equal(condition(vm(HUGE), "Stalled")?.status, "True");
  assert.match(condition(vm(HUGE), "Stalled")?.message ?? "", /^0\/6 hosts fit: .*insufficient memory/);
  assert.ok(s.events.some((e) => e.object === `VirtualMachine/${HOL_NAMESPACE}/${HUGE}` && e.reason === "Unschedulable"));

  const events = s.events.filter((e) => e.object === `VirtualMachine/${HOL_NAMESPACE}/${fifth}` && e.reason === "InsufficientFailoverCapacity").length;
  await s.advance(120_000);
  assert.equal(s.events.filter((e) => e.object === `VirtualMachine/${HOL_NAMESPACE}/${fifth}` && e.reason === "InsufficientFailoverCapacity").length, events, "the event is not repeated while the reason stays");

  const store = new ObjectStore();
  for (const kind of ["Host", "HostCluster", "VirtualMachine"] as const) for (const object of s.store.list(kind)) store.upsert(structuredClone(object));
  const plan = await dryRun(store, s.sim, s.clock);
  assert.deepEqual(plan.waiting.map((w) => [w.name, w.reason]), [[fifth, "InsufficientFailoverCapacity"]]);
  assert.match(plan.waiting[0]!.message, /refused on its own/);
  assert.deepEqual(plan.unschedulable.map((u) => u.name), [HUGE]);
  await s.stop();
});
