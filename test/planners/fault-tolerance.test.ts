// Fault tolerance's rules as pure functions: which placement ids are secondaries, the per-host limits, pairs
// kept apart both ways, and a VM's FT status from one round to the next (a switch-over counted once).

import { test } from "node:test";
import assert from "node:assert/strict";
import { faultToleranceView, limitReached, primaryOf, secondaryId, withPairsApart } from "../../controller/planners/ha/fault-tolerance.ts";
import type { SecondaryObservation, SwitchoverObservation } from "../../controller/core/fault-tolerance.ts";

const LIMITS = { maxVmsPerHost: 4, maxVcpusPerHost: 8, maxVcpusPerVm: 8 };

test("a secondary's placement id names its primary, also the one asked for this round; other ids name none", () => {
  assert.equal(primaryOf(secondaryId("shop/db-1")), "shop/db-1");
  assert.equal(primaryOf(`${secondaryId("shop/db-1")}@esx-02`), "shop/db-1");
  assert.equal(primaryOf("shop/db-1"), undefined);
  assert.equal(primaryOf("shop/db-1@esx-02"), undefined);
  assert.equal(primaryOf("#secondary"), undefined);
});

test("a host takes one more FT VM while under both per-host limits, and says which it reached", () => {
  const load = new Map([["full", { vms: 4, vcpus: 4 }], ["busy", { vms: 2, vcpus: 7 }], ["free", { vms: 1, vcpus: 2 }]]);
  assert.equal(limitReached(load, "full", 1, LIMITS), "at the FT limit of 4 VMs per host");
  assert.equal(limitReached(load, "busy", 2, LIMITS), "at the FT limit of 8 vCPUs per host");
  assert.equal(limitReached(load, "busy", 1, LIMITS), undefined);
  assert.equal(limitReached(load, "free", 4, LIMITS), undefined);
  assert.equal(limitReached(load, "unknown", 8, LIMITS), undefined);
});

test("a pair is kept apart both ways: the primary from its secondary's host, the secondary from its primary's", () => {
  const apart = withPairsApart(undefined, [{ vm: "shop/db-1", primaryHost: "esx-01", secondaryHost: "esx-03" }]);
  assert.deepEqual(apart.get("shop/db-1"), [{ host: "esx-03", reason: "holds its fault-tolerant secondary" }]);
  assert.deepEqual(apart.get(secondaryId("shop/db-1")), [{ host: "esx-01", reason: "runs its fault-tolerant primary" }]);
  // A secondary asked for elsewhere while the old one still runs: the primary is kept from both hosts.
  const moving = withPairsApart(apart, [{ vm: "shop/db-1", primaryHost: "esx-01", secondaryHost: "esx-04" }]);
  assert.deepEqual(moving.get("shop/db-1")!.map((x) => x.host), ["esx-03", "esx-04"]);
  assert.deepEqual(apart.get("shop/db-1")!.map((x) => x.host), ["esx-03"], "the map given is left as it was");
});

const LOCKSTEP: SecondaryObservation = { vm: "shop/db-1", key: "k", host: "esx-03", primaryHost: "esx-01", state: "Lockstep", since: 0, lagMs: 5.4, slowdownPercent: 12.2, cpu: 2, memoryMiB: 4096 };
const T0 = Date.parse("2026-11-30T10:00:00Z");

test("the FT status: lag and slowdown while protected, a switch-over counted once however often it is seen, and since when the VM is without a secondary", () => {
  assert.equal(faultToleranceView({ now: T0 }), undefined, "no note, no fault tolerance");
  const protectedView = faultToleranceView({ note: { state: "Protected", secondaryHost: "esx-03" }, secondary: LOCKSTEP, now: T0 })!;
  assert.deepEqual(protectedView.status, { state: "Protected", secondaryHost: "esx-03", lagMs: 5, slowdownPercent: 12 });
  assert.deepEqual([protectedView.condition.status, protectedView.condition.reason], [true, "Protected"]);
  assert.match(protectedView.condition.message!, /lockstep on host esx-03, 5 ms behind; the FT logging link slows the primary 12 %/);

  const switchover: SwitchoverObservation = { vm: "shop/db-1", from: "esx-01", to: "esx-03", primaryLostAt: T0 + 1_000, at: T0 + 2_000 };
  const after = faultToleranceView({ previous: protectedView.status, note: { state: "NeedsSecondary", reason: "fault tolerance is declared" }, switchover, now: T0 + 3_000 })!;
  assert.equal(after.status.switchovers, 1);
  assert.deepEqual(after.status.lastSwitchover, { from: "esx-01", to: "esx-03", time: new Date(T0 + 2_000).toISOString() });
  assert.equal(after.status.unprotectedSince, new Date(T0 + 3_000).toISOString());
  assert.equal(after.condition.status, false);

  // The same switch-over seen again a round later is not counted again; unprotectedSince stays.
  const again = faultToleranceView({ previous: after.status, note: { state: "Starting", secondaryHost: "esx-02" }, switchover, now: T0 + 9_000 })!;
  assert.equal(again.status.switchovers, 1);
  assert.equal(again.status.unprotectedSince, after.status.unprotectedSince);
  // Protected again: no unprotectedSince; a new switch-over counts.
  const back = faultToleranceView({ previous: again.status, note: { state: "Protected", secondaryHost: "esx-02" }, secondary: { ...LOCKSTEP, host: "esx-02" }, switchover, now: T0 + 20_000 })!;
  assert.equal(back.status.unprotectedSince, undefined);
  const second = faultToleranceView({ previous: back.status, note: { state: "NeedsSecondary" }, switchover: { ...switchover, from: "esx-03", to: "esx-02", at: T0 + 30_000 }, now: T0 + 31_000 })!;
  assert.equal(second.status.switchovers, 2);
  assert.equal(second.status.lastSwitchover?.from, "esx-03");
});
