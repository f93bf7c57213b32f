// A guest's load changing while it runs (a daily peak, a burst): what it writes from then on follows the
// new workload, what it wrote before was booked at the old rate, and a workload that is not one is refused.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { refusal, running } from "../../support/migration.ts";
import { HALF_RPO_MS, WRITE_RATE, atSiteB, replication, siteAVm, syncsCompleted, twoSites } from "./replication-support.ts";

describe("a guest's workload changes while it runs", () => {
  it("writes at the new rate from the change on: a failover loses the old rate's writes before it and the new rate's after", async () => {
    const { clock, sim } = await twoSites();
    await running(clock, sim, { "shop/db": ["a1", siteAVm(20)] });
    const t0 = clock.now();
    await sim.replicateVm("shop/db", replication());
    await syncsCompleted({ clock, sim }, "shop/db", 2);
    const instanceAt = t0 + HALF_RPO_MS;
    await clock.advanceTo(instanceAt + 100_000);
    await sim.setGuestWorkload("shop/db", { profile: "Bursty", cpuPercent: 90, diskWriteRateMiBps: 10 });
    await clock.advance(50_000);
    await sim.crashHost("a1");
    await clock.advance(sim.timings.lockExpiryMs);
    await sim.recoverVm("shop/db", "b1", atSiteB(siteAVm(20)), { replicaOf: "shop/db" });
    const lost = sim.groundTruth().recoveries[0]!.lostMiB;
    assert.ok(Math.abs(lost - (WRITE_RATE * 100 + 10 * 50)) < 1e-6, `lost ${lost} MiB`);
  });

  it("refuses a workload that is not one, naming the field, and leaves the guest as it was", async () => {
    const { clock, sim } = await twoSites();
    await running(clock, sim, { "shop/db": ["a1", siteAVm(20)] });
    const before = sim.observeVm("shop/db")!.config.workload;
    assert.equal(await refusal(sim.setGuestWorkload("shop/db", { profile: "Busy" as never, cpuPercent: 10 })), "Invalid");
    await assert.rejects(sim.setGuestWorkload("shop/db", { profile: "Steady", cpuPercent: 120 }), /cpuPercent must be a number from 0 to 100/);
    assert.equal(await refusal(sim.setGuestWorkload("shop/nope", { profile: "Steady", cpuPercent: 10 })), "NotFound");
    assert.deepEqual(sim.observeVm("shop/db")!.config.workload, before);
  });
});
