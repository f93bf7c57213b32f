import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { VirtualClock } from "../../../controller/core/clock.ts";
import { ProviderError } from "../../../controller/provider/provider.ts";
import type { HostConfig, VmConfig } from "../../../controller/core/observation.ts";
import { SimulatedHosts } from "../../../controller/provider/sim/index.ts";
import { refusal } from "../../support/provider.ts";

function hostConfig(): HostConfig {
  return {
    hypervisor: "kvm",
    cpu: { cores: 16, vendor: "amd", features: [], overcommitRatio: 4 },
    memoryMiB: 65536,
    datastores: ["shared"],
    networks: ["prod"],
    storagePaths: 2,
    labels: {},
  };
}

function vmConfig(disks = [{ name: "root", sizeGiB: 20, datastore: "shared" }]): VmConfig {
  return { cpu: 2, memoryMiB: 4096, cpuFeatures: [], disks, nics: [], workload: { profile: "Steady", cpuPercent: 25 } };
}

async function runningOnH1() {
  const clock = new VirtualClock();
  const t0 = clock.now();
  // The lease figures of BEHAVIOUR.md ("Locks and fencing"), not the shorter defaults: the offsets below assume them.
  const sim = new SimulatedHosts({ clock, seed: 3, timings: { lockRenewIntervalMs: 20_000, lockExpiryMs: 80_000 } });
  await sim.registerHost("h1", hostConfig());
  await sim.registerHost("h2", hostConfig());
  await sim.startVm("shop/db-1", "h1", vmConfig());
  await clock.advance(sim.timings.bootMs);
  return { clock, sim, t0 };
}

describe("disk locks and split-brain", () => {
  it("refuses and counts a start on a second host while the first, isolated, still holds the lock", async () => {
    const { clock, sim } = await runningOnH1();
    await sim.isolateHost("h1");
    await clock.advance(10 * 60_000);
    assert.equal(await refusal(sim.startVm("shop/db-1", "h2", vmConfig())), "LockHeld");
    assert.equal(await refusal(sim.startVm("shop/db-1", "h2", vmConfig())), "LockHeld");
    const observation = await sim.observe();
    assert.equal(observation.splitBrainAttempts, 2);
    assert.equal(observation.vms[0]?.host, "h1");
    assert.equal(observation.vms[0]?.power, "Running", "an isolated host keeps running its VMs");
  });

  it("lets the lock of a crashed host's VM expire only after the lease time, then the VM starts elsewhere", async () => {
    const { clock, sim, t0 } = await runningOnH1();
    const { lockRenewIntervalMs: renew, lockExpiryMs: lease } = sim.timings;
    await clock.advanceTo(t0 + 3 * renew + 7_000);
    await sim.crashHost("h1");
    const lastRenewal = t0 + 3 * renew;
    assert.deepEqual(sim.diskLocks().map((lock) => [lock.host, lock.lastRenewal, lock.expiresAt]), [["h1", lastRenewal, lastRenewal + lease]]);

    await clock.advanceTo(lastRenewal + lease - 1);
    assert.equal(await refusal(sim.startVm("shop/db-1", "h2", vmConfig())), "LockHeld");
    assert.equal((await sim.observe()).splitBrainAttempts, 1);

    await clock.advanceTo(lastRenewal + lease);
    const restarted = await sim.startVm("shop/db-1", "h2", vmConfig());
    assert.equal(restarted.host, "h2");
    assert.equal(restarted.power, "Starting");
    assert.deepEqual(sim.diskLocks().map((lock) => lock.host), ["h2"]);
    assert.equal((await sim.observe()).splitBrainAttempts, 1);
  });

  it("freezes a crashed host's report and its VMs' at the moment it went down", async () => {
    const { clock, sim } = await runningOnH1();
    await clock.advance(2_500);
    const before = await sim.observe();
    await sim.crashHost("h1");
    await clock.advance(300_000);
    const after = await sim.observe();
    assert.deepEqual(after.hosts[0], before.hosts[0]);
    assert.deepEqual(after.vms[0], before.vms[0]);
    assert.equal(after.vms[0]?.power, "Running", "the host never reported the VM's death");
    assert.deepEqual(sim.groundTruth().vms, [{ id: "shop/db-1", host: "h1", power: "Off" }]);
  });

  it("does not resurrect a crashed host's VMs when it recovers: they are Off after a HostFailure", async () => {
    const { clock, sim } = await runningOnH1();
    await sim.crashHost("h1");
    const crashedAt = clock.now();
    await clock.advance(30_000);
    await sim.recoverHost("h1");
    await clock.advance(sim.timings.bootMs * 2);
    const vm = sim.observeVm("shop/db-1")!;
    assert.equal(vm.power, "Off");
    assert.deepEqual(vm.lastExit, { reason: "HostFailure", at: crashedAt });
    const host = (await sim.observe()).hosts[0]!;
    assert.deepEqual(host.allocated, { cpu: 0, memoryMiB: 0 });
    assert.equal(host.vmCount, 1);
    assert.equal(sim.diskLocks().length, 0, "a host that boots afresh holds no lock");
    assert.equal((await sim.startVm("shop/db-1", "h2", vmConfig())).host, "h2");
  });

  it("refuses a second copy of a VM without disks while the first still runs on an isolated host", async () => {
    const { clock, sim } = await runningOnH1();
    await sim.startVm("lab/pxe", "h1", vmConfig([]));
    await sim.isolateHost("h1");
    await clock.advance(600_000);
    assert.equal(await refusal(sim.startVm("lab/pxe", "h2", vmConfig([]))), "LockHeld");
    await sim.healIsolation("h1");
    assert.equal(await refusal(sim.startVm("lab/pxe", "h2", vmConfig([]))), "Conflict");
  });

  it("refuses stop and remove of a VM whose host does not answer", async () => {
    const { sim } = await runningOnH1();
    await sim.isolateHost("h1");
    assert.equal(await refusal(sim.stopVm("shop/db-1", "PowerOff")), "Unavailable");
    assert.equal(await refusal(sim.removeVm("shop/db-1")), "Unavailable");
    await sim.healIsolation("h1");
    await sim.crashHost("h1");
    assert.equal(await refusal(sim.removeVm("shop/db-1")), "Unavailable");
  });
});

describe("storage paths", () => {
  it("keeps VMs running with one of two paths down", async () => {
    const { clock, sim } = await runningOnH1();
    await sim.setStoragePathsUp("h1", 1);
    await clock.advance(300_000);
    const observation = await sim.observe();
    assert.equal(observation.hosts[0]?.storagePathsUp, 1);
    assert.equal(observation.hosts[0]?.lastDatastoreHeartbeat, clock.now());
    assert.equal(observation.vms[0]?.guestHeartbeat, clock.now());
  });

  it("freezes guests with all paths down, and kills them when the host's locks expire", async () => {
    const { clock, sim, t0 } = await runningOnH1();
    const { lockRenewIntervalMs: renew, lockExpiryMs: lease } = sim.timings;
    await clock.advanceTo(t0 + renew + 5_000);
    await sim.setStoragePathsUp("h1", 0);
    const lostAt = clock.now();
    await clock.advance(10_000);
    let observation = await sim.observe();
    assert.equal(observation.hosts[0]?.lastDatastoreHeartbeat, lostAt);
    assert.equal(observation.hosts[0]?.lastNetworkHeartbeat, clock.now());
    assert.equal(observation.vms[0]?.power, "Running");
    assert.equal(observation.vms[0]?.guestHeartbeat, lostAt);
    assert.equal(observation.vms[0]?.cpuUsage, 0);
    assert.equal(await refusal(sim.startVm("shop/db-1", "h2", vmConfig())), "Conflict", "the host still answers for its VM");

    await clock.advanceTo(t0 + renew + lease);
    observation = await sim.observe();
    assert.equal(observation.vms[0]?.power, "Off");
    assert.deepEqual(observation.vms[0]?.lastExit, { reason: "PoweredOff", at: t0 + renew + lease });
    assert.equal((await sim.startVm("shop/db-1", "h2", vmConfig())).host, "h2");
  });

  it("lets guests carry on when a path comes back before the locks expire", async () => {
    const { clock, sim } = await runningOnH1();
    await sim.setStoragePathsUp("h1", 0);
    await clock.advance(30_000);
    await sim.setStoragePathsUp("h1", 2);
    await clock.advance(600_000);
    const vm = sim.observeVm("shop/db-1")!;
    assert.equal(vm.power, "Running");
    assert.equal(vm.guestHeartbeat, clock.now());
    assert.ok(vm.cpuUsage > 0);
  });

  it("refuses a path count the host does not have", async () => {
    const { sim } = await runningOnH1();
    await assert.rejects(sim.setStoragePathsUp("h1", 3), (error: unknown) => error instanceof ProviderError && error.code === "Invalid");
  });
});
