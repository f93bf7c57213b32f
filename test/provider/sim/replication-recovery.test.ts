// Recovering VMs from their replicas in the simulated hosts: a failover after site A's host crashes is
// refused while the crashed host's disk locks live and loses exactly what was written since the instance
// began; a planned migration (shut down, final sync, recover) loses nothing; a test copy runs beside
// production; and every refusal has its code.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { refusal, running } from "../../support/migration.ts";
import { HALF_RPO_MS, WRITE_RATE, atSiteB, replicaOf, replication, runUntil, siteAVm, syncsCompleted, twoSites } from "./replication-support.ts";

/** shop/db on a1, replicated to site-b, with its first incremental sync (begun RPO/2 after the full one) done. */
async function replicated() {
  const { clock, sim } = await twoSites();
  await running(clock, sim, { "shop/db": ["a1", siteAVm(20)] });
  const t0 = clock.now();
  await sim.replicateVm("shop/db", replication());
  await syncsCompleted({ clock, sim }, "shop/db", 2);
  return { clock, sim, t0 };
}

describe("recovery from a replica: failover", () => {
  it("is refused, and counted, while the crashed host's locks live; after, the VM runs on site B and lost what was written since the instance began", async () => {
    const { clock, sim, t0 } = await replicated();
    const instanceAt = t0 + HALF_RPO_MS;
    await clock.advanceTo(instanceAt + 200_000);
    const crashAt = clock.now();
    await sim.crashHost("a1");

    const early = sim.recoverVm("shop/db", "b1", atSiteB(siteAVm(20)), { replicaOf: "shop/db" });
    await assert.rejects(early, { code: "LockHeld", message: /disk root on datastore site-a is locked by host a1/ });
    assert.equal(sim.splitBrainAttempts(), 1);
    assert.equal((await replicaOf(sim, "shop/db")).state, "Paused", "nothing changed but the count");

    await clock.advance(sim.timings.lockExpiryMs);
    const started = await sim.recoverVm("shop/db", "b1", atSiteB(siteAVm(20)), { replicaOf: "shop/db" });
    assert.deepEqual([started.host, started.power, started.config.disks[0]!.datastore], ["b1", "Starting", "site-b"]);
    await clock.advance(sim.timings.bootMs);
    assert.equal(sim.observeVm("shop/db")!.power, "Running");
    assert.deepEqual(sim.diskLocks().map((lock) => [lock.datastore, lock.host]), [["site-b", "b1"]]);

    const replica = await replicaOf(sim, "shop/db");
    assert.equal(replica.state, "FailedOver");
    assert.deepEqual(replica.recovery, { at: crashAt + sim.timings.lockExpiryMs, instanceAt, host: "b1" });
    assert.deepEqual(sim.groundTruth().recoveries, [{ vm: "shop/db", instanceAt, stoppedWritingAt: crashAt, lostMiB: WRITE_RATE * 200 }]);
    assert.equal(sim.splitBrainAttempts(), 1);

    const again = await sim.recoverVm("shop/db", "b1", atSiteB(siteAVm(20)), { replicaOf: "shop/db" });
    assert.equal(again.revision, sim.observeVm("shop/db")!.revision, "a retry is a no-op");
    assert.equal(await refusal(sim.recoverVm("shop/db", "b2", atSiteB(siteAVm(20)), { replicaOf: "shop/db" })), "Conflict");
    assert.equal(await refusal(sim.syncReplica("shop/db", "k")), "Conflict");
    await clock.advance(3_600_000);
    assert.equal((await replicaOf(sim, "shop/db")).lastSync!.startedAt, instanceAt, "a failed-over replica ships nothing more");
  });

  it("is refused while the original runs on a host that answers", async () => {
    const { sim } = await replicated();
    await assert.rejects(sim.recoverVm("shop/db", "b1", atSiteB(siteAVm(20)), { replicaOf: "shop/db" }), { code: "LockHeld" });
    assert.equal(sim.splitBrainAttempts(), 1);
    assert.deepEqual([sim.observeVm("shop/db")!.host, sim.observeVm("shop/db")!.power], ["a1", "Running"]);
  });

  it("loses nothing on the planned path: shut down, a final sync, recover", async () => {
    const { clock, sim } = await replicated();
    await clock.advance(120_000);
    await sim.stopVm("shop/db", "Shutdown");
    await clock.advance(sim.timings.guestShutdownMs);
    await sim.syncReplica("shop/db", "final");
    const final = await runUntil({ clock, sim }, "shop/db", (r) => r.lastSync?.key === "final");
    assert.equal(final.state, "Paused");

    await sim.recoverVm("shop/db", "b2", atSiteB(siteAVm(20)), { replicaOf: "shop/db" });
    const [recovery] = sim.groundTruth().recoveries;
    assert.deepEqual(recovery, { vm: "shop/db", instanceAt: final.lastSync!.startedAt, stoppedWritingAt: final.lastSync!.startedAt, lostMiB: 0 });
    assert.equal(sim.splitBrainAttempts(), 0);
    assert.equal(sim.observeVm("shop/db")!.host, "b2");
  });

  it("recovers from an older instance when asked, losing what was written since that one began", async () => {
    const { clock, sim, t0 } = await replicated();
    await sim.stopVm("shop/db", "PowerOff");
    const offAt = clock.now();
    await sim.recoverVm("shop/db", "b1", atSiteB(siteAVm(20)), { replicaOf: "shop/db", instanceAt: t0 });
    assert.deepEqual(sim.groundTruth().recoveries.map((r) => [r.instanceAt, r.lostMiB]), [[t0, WRITE_RATE * (offAt - t0) / 1000]]);
  });
});

describe("recovery from a replica: test copies and refusals", () => {
  it("runs a test copy beside production, leaving the VM and its replica untouched", async () => {
    const { clock, sim, t0 } = await replicated();
    const copy = await sim.recoverVm("shop/db-test", "b1", atSiteB(siteAVm(20)), { replicaOf: "shop/db", instanceAt: t0 });
    assert.deepEqual([copy.id, copy.host, copy.power], ["shop/db-test", "b1", "Starting"]);
    const retried = await sim.recoverVm("shop/db-test", "b1", atSiteB(siteAVm(20)), { replicaOf: "shop/db", instanceAt: t0 });
    assert.equal(retried.revision, copy.revision);

    const next = await syncsCompleted({ clock, sim }, "shop/db", 1, t0 + 2 * HALF_RPO_MS);
    assert.deepEqual([next.state, next.lastSync!.transferredMiB], ["Replicating", WRITE_RATE * HALF_RPO_MS / 1000]);
    assert.deepEqual([sim.observeVm("shop/db")!.host, sim.observeVm("shop/db")!.power], ["a1", "Running"]);
    assert.equal(sim.observeVm("shop/db-test")!.power, "Running");
    assert.deepEqual(sim.groundTruth().recoveries, []);
    assert.equal(sim.splitBrainAttempts(), 0);
    assert.equal(await refusal(sim.recoverVm("shop/db-test", "b2", atSiteB(siteAVm(20)), { replicaOf: "shop/db" })), "Conflict", "the id is taken");
  });

  it("refuses what cannot be recovered, with the provider's codes", async () => {
    const { clock, sim } = await twoSites();
    await running(clock, sim, { "shop/db": ["a1", siteAVm(20)], "shop/web": ["a2", siteAVm(1)] });
    const config = atSiteB(siteAVm(20));
    const copy = (host: string, options: { replicaOf: string; instanceAt?: number }, vm = config) => sim.recoverVm("shop/copy", host, vm, options);
    assert.equal(await refusal(copy("b1", { replicaOf: "shop/db" })), "NotFound", "no replica");
    await sim.replicateVm("shop/db", replication());
    assert.equal(await refusal(copy("b1", { replicaOf: "shop/db" })), "Conflict", "no completed sync yet");
    await runUntil({ clock, sim }, "shop/db", (r) => r.lastSync !== undefined);
    assert.equal(await refusal(copy("b9", { replicaOf: "shop/db" })), "NotFound", "no such host");
    assert.equal(await refusal(copy("b1", { replicaOf: "shop/db", instanceAt: 1 })), "NotFound", "no such instance");
    assert.equal(await refusal(copy("a2", { replicaOf: "shop/db" })), "Unavailable", "a host that does not see the replica's datastore");
    await sim.isolateHost("b2");
    assert.equal(await refusal(copy("b2", { replicaOf: "shop/db" })), "Unavailable", "a host that does not answer");
    assert.equal(await refusal(copy("b1", { replicaOf: "shop/db" }, siteAVm(20))), "Invalid", "disks not on the replica's datastore");
    assert.equal(await refusal(copy("b1", { replicaOf: "shop/db" }, { ...config, memoryMiB: 100_000 })), "InsufficientResources");
    assert.deepEqual([sim.splitBrainAttempts(), sim.observeVm("shop/copy")], [0, undefined], "nothing was started");
  });
});
