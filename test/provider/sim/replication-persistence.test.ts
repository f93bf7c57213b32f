// Replication is saved with the simulated world: syncs saved mid-copy and loaded again end exactly as they
// would have without the restart, syncs that fell due while nothing ran replay at their own times, and a
// failover (with what it lost) and a storage-cutting partition survive a restart.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { VirtualClock } from "../../../controller/core/clock.ts";
import { SimulatedHosts } from "../../../controller/provider/sim/index.ts";
import { running } from "../../support/migration.ts";
import { atSiteB, replicaOf, replication, siteAVm, twoSites } from "./replication-support.ts";

let root: string;
let cases = 0;
before(async () => {
  root = await mkdtemp(join(tmpdir(), "vireo-replication-state-"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

function statePath(): string {
  cases += 1;
  return join(root, `world-${cases}.json`);
}

/** Two VMs sharing link a-b, `ms` into their full syncs (10 and 20 GiB at 50 MiB/s each: 204.8 s and 307.2 s). */
async function midSync(path: string | undefined, ms: number) {
  const { clock, sim } = await twoSites(path === undefined ? {} : { statePath: path });
  await running(clock, sim, { "shop/a": ["a1", siteAVm(10)], "shop/b": ["a2", siteAVm(20, 5)] });
  await sim.replicateVm("shop/a", replication());
  await sim.replicateVm("shop/b", replication({ instances: 1 }));
  await clock.advance(ms);
  return { clock, sim };
}

/** The replicas two hours on, as observed and as they truly are. */
async function outcome(clock: VirtualClock, sim: SimulatedHosts) {
  await clock.advance(7_200_000);
  return { replicas: (await sim.observe()).replicas, truth: sim.groundTruth().replicas };
}

describe("replication: durable", () => {
  it("carries on syncs saved mid-copy and loaded again to the same end, exactly", async () => {
    const reference = await midSync(undefined, 150_000);
    const expected = await outcome(reference.clock, reference.sim);
    assert.equal(expected.truth.map((r) => r.instances.length).join(), "3,2");

    const path = statePath();
    const { clock, sim } = await midSync(path, 150_000);
    const saved = await sim.observe();
    assert.deepEqual(saved.replicas!.map((r) => r.syncing?.sentMiB), [7_500, 7_500]);
    await sim.close();
    const restored = await SimulatedHosts.load({ clock, statePath: path });
    assert.deepEqual(await restored.observe(), saved, "the same syncs, shares and schedule");
    assert.deepEqual(await outcome(clock, restored), expected);
    await restored.close();
  });

  it("replays at once, each at its own time, the syncs that fell due while nothing ran", async () => {
    const reference = await midSync(undefined, 150_000);
    await reference.clock.advance(3_600_000);
    const expected = await outcome(reference.clock, reference.sim);

    const path = statePath();
    const { clock, sim } = await midSync(path, 150_000);
    await sim.close();
    await clock.advance(3_600_000);
    const restored = await SimulatedHosts.load({ clock, statePath: path });
    assert.deepEqual(await outcome(clock, restored), expected);
    await restored.close();
  });

  it("keeps a failover, what it lost and its idempotence across a restart", async () => {
    const path = statePath();
    const { clock, sim } = await midSync(path, 400_000);
    await sim.crashHost("a1");
    await clock.advance(sim.timings.lockExpiryMs);
    await sim.recoverVm("shop/a", "b1", atSiteB(siteAVm(10)), { replicaOf: "shop/a" });
    const truth = sim.groundTruth();
    assert.equal(truth.recoveries.length, 1);
    await sim.close();
    const restored = await SimulatedHosts.load({ clock, statePath: path });
    assert.deepEqual(restored.groundTruth(), truth);
    assert.equal((await replicaOf(restored, "shop/a")).state, "FailedOver");
    const revision = restored.revision();
    await restored.recoverVm("shop/a", "b1", atSiteB(siteAVm(10)), { replicaOf: "shop/a" });
    assert.equal(restored.revision(), revision, "the failover is not made twice");
    await restored.close();
  });
});

describe("partitions that cut storage off", () => {
  it("make a site's datastores unreachable and freeze its hosts' datastore heartbeat at the cut, although they run", async () => {
    const { clock, sim } = await twoSites();
    await running(clock, sim, { "shop/db": ["a1", siteAVm(1)] });
    await sim.replicateVm("shop/db", replication());
    await clock.advance(30_000);
    const cutAt = clock.now();
    await sim.partitionHosts(["a1", "a2"], { storage: true });
    await clock.advance(60_000);

    const seen = await sim.observe();
    assert.deepEqual(seen.unreachableDatastores, ["a-local", "site-a"]);
    for (const name of ["a1", "a2"]) {
      const host = seen.hosts.find((h) => h.name === name)!;
      assert.ok(host.lastDatastoreHeartbeat <= cutAt && host.lastNetworkHeartbeat <= cutAt, `${name} looks failed from outside`);
    }
    assert.ok(seen.hosts.find((h) => h.name === "b1")!.lastDatastoreHeartbeat > cutAt);
    const truth = sim.groundTruth();
    assert.deepEqual(truth.hosts.filter((h) => h.name === "a1").map((h) => [h.up, h.partitioned]), [[true, true]]);
    assert.deepEqual(truth.vms.map((vm) => vm.power), ["Running"], "the VM runs on behind the cut");
    assert.deepEqual([seen.replicas![0]!.state, seen.replicas![0]!.reason], ["Paused", "host a1 is not responding"]);
    await assert.rejects(sim.recoverVm("shop/db", "b1", atSiteB(siteAVm(1)), { replicaOf: "shop/db" }), { code: "LockHeld" });
    assert.equal(sim.splitBrainAttempts(), 1);

    await sim.healPartition(["a1", "a2"]);
    await clock.advance(5_000);
    const healed = await sim.observe();
    assert.deepEqual(healed.unreachableDatastores, []);
    assert.ok(healed.hosts.find((h) => h.name === "a1")!.lastDatastoreHeartbeat > cutAt + 60_000);
  });

  it("leave reachable a datastore that a host outside still sees: the cut-off host looks isolated, not failed", async () => {
    const { clock, sim } = await twoSites();
    await sim.partitionHosts(["a1"], { storage: true });
    await sim.partitionHosts(["b1"]);
    const cutAt = clock.now();
    await clock.advance(60_000);
    const seen = await sim.observe();
    assert.deepEqual(seen.unreachableDatastores, []);
    assert.ok(seen.hosts.find((h) => h.name === "a1")!.lastDatastoreHeartbeat > cutAt);
  });

  it("survive a restart", async () => {
    const path = statePath();
    const { clock, sim } = await twoSites({ statePath: path });
    await sim.partitionHosts(["b1", "b2"], { storage: true });
    await clock.advance(10_000);
    const saved = await sim.observe();
    await sim.close();
    const restored = await SimulatedHosts.load({ clock, statePath: path });
    assert.deepEqual(await restored.observe(), saved);
    assert.deepEqual(saved.unreachableDatastores, ["b-local", "site-b"]);
    await restored.close();
  });
});
