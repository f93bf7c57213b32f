// Replication in the simulated hosts, on the virtual clock: the full first sync, incremental syncs every
// RPO/2, a link shared by the syncs on it, the RPO broken by a slow link, replication across a live
// migration, a crash mid-sync, the instances kept, pauses, errors and the end of replication.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { rpoViolated } from "../../../controller/core/replication.ts";
import { refusal, running, settings } from "../../support/migration.ts";
import { HALF_RPO_MS, WRITE_RATE, replicaOf, replication, runUntil, siteAVm, syncsCompleted, twoSites } from "./replication-support.ts";

describe("replication: syncs", () => {
  it("copies the whole disk first, taking its size over the link's bandwidth, and reflects the VM as of the sync's start", async () => {
    const { clock, sim } = await twoSites();
    await running(clock, sim, { "shop/db": ["a1", siteAVm(20)] });
    const t0 = clock.now();
    await sim.replicateVm("shop/db", replication());

    const first = await replicaOf(sim, "shop/db");
    assert.deepEqual([first.state, first.syncing?.full, first.syncing?.totalMiB, first.syncing?.startedAt], ["Initializing", true, 20 * 1024, t0], "the first sync begins at once");
    assert.equal(first.writeRateMiBps, WRITE_RATE);
    await clock.advance(100_000);
    assert.equal((await replicaOf(sim, "shop/db")).syncing?.sentMiB, 10_000, "100 s at 100 MiB/s");

    const done = await runUntil({ clock, sim }, "shop/db", (r) => r.lastSync !== undefined);
    assert.deepEqual(done.lastSync, { startedAt: t0, endedAt: t0 + 204_800, transferredMiB: 20_480 }, "20 GiB at 100 MiB/s: 204.8 s");
    assert.equal(done.state, "Replicating");
    assert.deepEqual(done.instances, [t0]);
    assert.equal(done.nextSyncAt, t0 + HALF_RPO_MS);
    assert.equal(sim.groundTruth().replicas[0]!.lastSyncStartedAt, t0);
  });

  it("ships what was written since the last sync began, every RPO/2, and keeps the RPO", async () => {
    const { clock, sim } = await twoSites();
    await running(clock, sim, { "shop/db": ["a1", siteAVm(20)] });
    const t0 = clock.now();
    await sim.replicateVm("shop/db", replication());
    const syncs: { startedAt: number; endedAt: number; transferredMiB: number }[] = [];
    await runUntil({ clock, sim }, "shop/db", () => syncs.length >= 5, (r) => {
      assert.equal(rpoViolated(r, clock.now()), false, `RPO violated at ${clock.now() - t0} ms`);
      if (r.lastSync && r.lastSync.startedAt !== syncs.at(-1)?.startedAt) syncs.push(r.lastSync);
    });
    assert.deepEqual(syncs.map((s) => s.startedAt - t0), [0, 1, 2, 3, 4].map((n) => n * HALF_RPO_MS));
    // Each incremental sync ships 450 s of writes at 2 MiB/s, 900 MiB, in 9 s.
    for (const sync of syncs.slice(1)) {
      assert.equal(sync.transferredMiB, WRITE_RATE * HALF_RPO_MS / 1000);
      assert.equal(sync.endedAt - sync.startedAt, 9_000);
    }
  });

  it("shares a link evenly between the syncs on it, each going faster once the other is done", async () => {
    const { clock, sim } = await twoSites();
    await running(clock, sim, { "shop/a": ["a1", siteAVm(10)], "shop/b": ["a2", siteAVm(20)] });
    const t0 = clock.now();
    await sim.replicateVm("shop/a", replication());
    await sim.replicateVm("shop/b", replication());
    await clock.advance(10_000);
    assert.deepEqual((await sim.observe()).replicas!.map((r) => r.syncing?.sentMiB), [500, 500], "50 MiB/s each");

    const a = await runUntil({ clock, sim }, "shop/a", (r) => r.lastSync !== undefined);
    assert.equal(a.lastSync!.endedAt - t0, 204_800, "10 GiB at half of 100 MiB/s");
    const b = await runUntil({ clock, sim }, "shop/b", (r) => r.lastSync !== undefined);
    assert.equal(b.lastSync!.endedAt - t0, 204_800 + 102_400, "the other 10 GiB of b at the whole link");
  });

  it("breaks the RPO over a slow link: a transfer longer than RPO/2", async () => {
    const { clock, sim } = await twoSites();
    await running(clock, sim, { "shop/db": ["a1", siteAVm(1)] });
    const t0 = clock.now();
    await sim.replicateVm("shop/db", replication({ linkBandwidthMiBps: 1 }));
    await clock.advance(HALF_RPO_MS);
    assert.equal(rpoViolated(await replicaOf(sim, "shop/db"), clock.now()), false, "at RPO/2 exactly it still holds");
    await clock.advance(1);
    assert.equal(rpoViolated(await replicaOf(sim, "shop/db"), clock.now()), true);
    const done = await runUntil({ clock, sim }, "shop/db", (r) => r.lastSync !== undefined);
    assert.equal(done.lastSync!.endedAt - t0, 1_024_000, "1 GiB at 1 MiB/s");
    // 1,024 s of writes at 2 MiB/s cannot cross a 1 MiB/s link in time: the next sync begins at once, and is late too.
    assert.deepEqual([done.syncing?.startedAt, done.syncing?.totalMiB], [done.lastSync!.endedAt, 2048]);
    await clock.advance(HALF_RPO_MS + 1);
    assert.equal(rpoViolated(await replicaOf(sim, "shop/db"), clock.now()), true);
  });

  it("keeps the instances asked for besides the latest, dropping the oldest", async () => {
    const { clock, sim } = await twoSites();
    await running(clock, sim, { "shop/db": ["a1", siteAVm(1)] });
    const t0 = clock.now();
    await sim.replicateVm("shop/db", replication({ instances: 2 }));
    const replica = await syncsCompleted({ clock, sim }, "shop/db", 6);
    assert.deepEqual(replica.instances.map((at) => at - t0), [3, 4, 5].map((n) => n * HALF_RPO_MS));
    assert.equal(sim.groundTruth().replicas[0]!.instances.length, 3);
    await sim.replicateVm("shop/db", replication({ instances: 0 }));
    assert.deepEqual((await replicaOf(sim, "shop/db")).instances.map((at) => at - t0), [5 * HALF_RPO_MS], "fewer instances apply at once");
  });
});

describe("replication: the VM moves, stops and fails", () => {
  it("carries on while the VM live-migrates, shipping from its new host afterwards", async () => {
    const { clock, sim } = await twoSites();
    await running(clock, sim, { "shop/db": ["a1", siteAVm(20)] });
    const t0 = clock.now();
    await sim.replicateVm("shop/db", replication());
    await runUntil({ clock, sim }, "shop/db", (r) => r.syncing?.full === false);
    await sim.migrateVm("shop/db", "a2", { key: "m1", settings: settings() });
    const next = await syncsCompleted({ clock, sim }, "shop/db", 2, t0 + HALF_RPO_MS);
    assert.equal(sim.observeVm("shop/db")!.host, "a2");
    assert.equal((await sim.observe()).migrations![0]!.phase, "Succeeded");
    assert.deepEqual([next.state, next.lastSync!.startedAt - t0, next.lastSync!.transferredMiB], ["Replicating", 2 * HALF_RPO_MS, 900]);
  });

  it("fails the sync under way when the VM's host crashes: no instance, paused until the host is back", async () => {
    const { clock, sim } = await twoSites();
    await running(clock, sim, { "shop/db": ["a1", siteAVm(20)] });
    const t0 = clock.now();
    await sim.replicateVm("shop/db", replication());
    await runUntil({ clock, sim }, "shop/db", (r) => r.syncing?.full === false);
    await clock.advance(3_000);
    await sim.crashHost("a1");
    const crashed = await replicaOf(sim, "shop/db");
    assert.equal(crashed.syncing, undefined);
    assert.deepEqual([crashed.state, crashed.reason, crashed.instances], ["Paused", "host a1 is not responding", [t0]]);
    await clock.advance(3_600_000);
    assert.deepEqual((await replicaOf(sim, "shop/db")).instances, [t0], "a crashed host's VM ships nothing");

    // Back up, the VM is off: what it wrote up to the crash (450 s + 3 s at 2 MiB/s) is shipped at once, then it pauses.
    await sim.recoverHost("a1");
    const resumed = await runUntil({ clock, sim }, "shop/db", (r) => r.instances.length === 2);
    assert.equal(resumed.lastSync!.transferredMiB, 906);
    assert.deepEqual([resumed.state, resumed.reason], ["Paused", "the VM is off"]);
  });

  it("ships a VM's last writes after it shuts down, then pauses; a sync asked for still runs, once per key", async () => {
    const { clock, sim } = await twoSites();
    await running(clock, sim, { "shop/db": ["a1", siteAVm(20)] });
    const t0 = clock.now();
    await sim.replicateVm("shop/db", replication());
    await runUntil({ clock, sim }, "shop/db", (r) => r.lastSync !== undefined);
    await clock.advanceTo(t0 + 300_000);
    await sim.stopVm("shop/db", "Shutdown");
    await clock.advance(sim.timings.guestShutdownMs);
    const off = await replicaOf(sim, "shop/db");
    assert.deepEqual([off.state, off.nextSyncAt! - t0], ["Replicating", HALF_RPO_MS], "writes up to the shutdown are still to ship");

    await sim.syncReplica("shop/db", "final");
    await sim.syncReplica("shop/db", "final");
    const final = await runUntil({ clock, sim }, "shop/db", (r) => r.lastSync?.key === "final");
    assert.deepEqual([final.lastSync!.startedAt - t0, final.lastSync!.transferredMiB], [310_000, WRITE_RATE * 310], "every write up to the end of the shutdown");
    assert.deepEqual([final.state, final.reason, final.nextSyncAt], ["Paused", "the VM is off", undefined]);

    await sim.syncReplica("shop/db", "final");
    await sim.syncReplica("shop/db", "again");
    const again = await runUntil({ clock, sim }, "shop/db", (r) => r.lastSync?.key === "again");
    assert.deepEqual([again.lastSync!.transferredMiB, again.instances.length], [0, 3], "one more sync, of nothing");
  });

  it("ships nothing while the VM's storage is in APD, and then only what the guest wrote before it froze", async () => {
    const { clock, sim } = await twoSites();
    await running(clock, sim, { "shop/db": ["a1", siteAVm(20)] });
    await sim.replicateVm("shop/db", replication());
    const first = await runUntil({ clock, sim }, "shop/db", (r) => r.lastSync !== undefined);
    await sim.setStoragePathsUp("a1", 0, "site-a");
    const frozen = await replicaOf(sim, "shop/db");
    assert.deepEqual([frozen.state, frozen.reason], ["Paused", "host a1 has all paths down to datastore site-a"]);
    await clock.advance(600_000);
    await sim.setStoragePathsUp("a1", 2, "site-a");
    const thawed = await runUntil({ clock, sim }, "shop/db", (r) => r.instances.length === 2);
    // Written from the first sync's start to the APD only: a frozen guest writes nothing.
    const apdAt = first.lastSync!.endedAt;
    assert.equal(thawed.lastSync!.transferredMiB, WRITE_RATE * (apdAt - first.lastSync!.startedAt) / 1000);
  });
});

describe("replication: settings, errors and the end of it", () => {
  it("is in Error while no registered host sees the target datastore, and starts once one does", async () => {
    const { clock, sim } = await twoSites();
    await running(clock, sim, { "shop/db": ["a1", siteAVm(1)] });
    await sim.replicateVm("shop/db", replication({ targetDatastore: "site-c" }));
    const error = await replicaOf(sim, "shop/db");
    assert.deepEqual([error.state, error.reason, error.syncing], ["Error", "no registered host sees the target datastore site-c", undefined]);
    await sim.registerHost("c1", { ...(await sim.observe()).hosts[0]!.config, datastores: ["site-c"] });
    assert.equal((await replicaOf(sim, "shop/db")).syncing?.full, true);
  });

  it("begins afresh with a full sync on a new target, and applies other new settings from the next sync", async () => {
    const { clock, sim } = await twoSites();
    await running(clock, sim, { "shop/db": ["a1", siteAVm(1)] });
    await sim.replicateVm("shop/db", replication());
    const first = await runUntil({ clock, sim }, "shop/db", (r) => r.lastSync !== undefined);
    await sim.replicateVm("shop/db", replication({ rpoMs: 2 * 3_600_000 }));
    assert.equal((await replicaOf(sim, "shop/db")).nextSyncAt, first.lastSync!.startedAt + 3_600_000);
    const revision = sim.revision();
    await sim.replicateVm("shop/db", replication({ rpoMs: 2 * 3_600_000 }));
    assert.equal(sim.revision(), revision, "the same settings again change nothing");
    await sim.registerHost("b3", { ...(await sim.observe()).hosts[0]!.config, datastores: ["site-b", "site-b2"] });
    await sim.replicateVm("shop/db", replication({ targetDatastore: "site-b2" }));
    const fresh = await replicaOf(sim, "shop/db");
    assert.deepEqual([fresh.state, fresh.instances, fresh.syncing?.full], ["Initializing", [], true]);
  });

  it("refuses settings out of range and an unknown VM", async () => {
    const { clock, sim } = await twoSites();
    await running(clock, sim, { "shop/db": ["a1", siteAVm(1)] });
    await assert.rejects(sim.replicateVm("shop/db", replication({ rpoMs: 60_000 })), { code: "Invalid", message: /settings\.rpoMs must be between 300000 and 86400000/ });
    await assert.rejects(sim.replicateVm("shop/db", replication({ instances: 25 })), { code: "Invalid", message: /settings\.instances/ });
    await assert.rejects(sim.replicateVm("shop/db", replication({ linkBandwidthMiBps: 0 })), { code: "Invalid" });
    await assert.rejects(sim.replicateVm("shop/db", replication({ link: "" })), { code: "Invalid" });
    assert.equal(await refusal(sim.replicateVm("shop/nobody", replication())), "NotFound");
    assert.deepEqual((await sim.observe()).replicas, []);
  });

  it("keeps the replica when the VM is removed, and deletes it only on stopReplication", async () => {
    const { clock, sim } = await twoSites();
    await running(clock, sim, { "shop/db": ["a1", siteAVm(1)] });
    await sim.replicateVm("shop/db", replication());
    await runUntil({ clock, sim }, "shop/db", (r) => r.lastSync !== undefined);
    await sim.removeVm("shop/db");
    const orphan = await replicaOf(sim, "shop/db");
    assert.deepEqual([orphan.state, orphan.reason, orphan.instances.length], ["Paused", "VM shop/db is not registered on any host", 1]);
    await sim.stopReplication("shop/db");
    await sim.stopReplication("shop/db");
    assert.deepEqual((await sim.observe()).replicas, []);
    assert.deepEqual(sim.groundTruth().replicas, []);
    assert.equal(await refusal(sim.syncReplica("shop/db", "k")), "NotFound");
  });

  it("stops a sync under way when replication stops, giving its share of the link to the others", async () => {
    const { clock, sim } = await twoSites();
    await running(clock, sim, { "shop/a": ["a1", siteAVm(10)], "shop/b": ["a2", siteAVm(10)] });
    const t0 = clock.now();
    await sim.replicateVm("shop/a", replication());
    await sim.replicateVm("shop/b", replication());
    await clock.advance(100_000);
    await sim.stopReplication("shop/a");
    const b = await runUntil({ clock, sim }, "shop/b", (r) => r.lastSync !== undefined);
    assert.equal(b.lastSync!.endedAt - t0, 100_000 + (10_240 - 5_000) * 10, "the rest at the whole link");
  });
});
