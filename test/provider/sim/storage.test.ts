import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { VirtualClock } from "../../../controller/core/clock.ts";
import { ProviderError } from "../../../controller/provider/provider.ts";
import type { HostConfig, VmConfig } from "../../../controller/core/observation.ts";
import { SimulatedHosts } from "../../../controller/provider/sim/index.ts";

function hostConfig(datastores = ["ds1", "ds2", "ds3"]): HostConfig {
  return { hypervisor: "esx", cpu: { cores: 16, vendor: "intel", features: [], overcommitRatio: 4 }, memoryMiB: 65536, datastores, networks: [], storagePaths: 2, labels: {} };
}

function vmConfig(datastore: string): VmConfig {
  return { cpu: 2, memoryMiB: 4096, cpuFeatures: [], disks: [{ name: "root", sizeGiB: 20, datastore }], nics: [], workload: { profile: "Steady", cpuPercent: 25 } };
}

async function fleet() {
  const clock = new VirtualClock();
  const sim = new SimulatedHosts({ clock, seed: 5 });
  await sim.registerHost("h1", hostConfig());
  await sim.registerHost("h2", hostConfig());
  await sim.startVm("on-ds1", "h1", vmConfig("ds1"));
  await sim.startVm("on-ds3", "h1", vmConfig("ds3"));
  await clock.advance(sim.timings.bootMs);
  return { clock, sim };
}

async function code(action: Promise<unknown>): Promise<string> {
  try {
    await action;
  } catch (error) {
    if (error instanceof ProviderError) return error.code;
    throw error;
  }
  return "ok";
}

describe("storage paths per datastore", () => {
  it("reports one path down to a datastore as Degraded and keeps every VM running", async () => {
    const { clock, sim } = await fleet();
    await sim.setStoragePathsUp("h1", 1, "ds1");
    await clock.advance(60_000);
    const h1 = (await sim.observe()).hosts.find((h) => h.name === "h1")!;
    assert.equal(h1.storagePathsUp, 1);
    assert.deepEqual(h1.datastores?.map((d) => [d.name, d.pathsUp, d.state]), [["ds1", 1, "Degraded"], ["ds2", 2, "Ok"], ["ds3", 2, "Ok"]]);
    assert.equal(sim.observeVm("on-ds1")!.guestHeartbeat, clock.now());
  });

  it("freezes only the VMs with a disk on the datastore in APD, keeps the datastore heartbeat, and never kills them itself", async () => {
    const { clock, sim } = await fleet();
    await sim.setStoragePathsUp("h1", 0, "ds1");
    const apdAt = clock.now();
    await clock.advance(600_000);
    const h1 = (await sim.observe()).hosts.find((h) => h.name === "h1")!;
    assert.deepEqual(h1.datastores?.[0], { name: "ds1", pathsUp: 0, state: "AllPathsDown", allPathsDownSince: apdAt });
    assert.equal(h1.lastDatastoreHeartbeat, clock.now(), "ds2 still carries the heartbeat");
    const frozen = sim.observeVm("on-ds1")!;
    assert.equal(frozen.power, "Running");
    assert.equal(frozen.cpuUsage, 0);
    assert.ok(frozen.guestHeartbeat! <= apdAt);
    assert.equal(sim.observeVm("on-ds3")!.guestHeartbeat, clock.now());
    assert.equal(await code(sim.startVm("on-ds1", "h2", vmConfig("ds1"))), "Conflict", "the host still answers for its frozen VM");
    assert.equal(await code(sim.startVm("new", "h1", vmConfig("ds1"))), "Unavailable");
    assert.equal(sim.splitBrainAttempts(), 0);
  });

  it("thaws the VMs when a path returns, with their locks renewed again", async () => {
    const { clock, sim } = await fleet();
    await sim.setStoragePathsUp("h1", 0, "ds1");
    await clock.advance(100_000);
    await sim.setStoragePathsUp("h1", 2, "ds1");
    await clock.advance(30_000);
    const vm = sim.observeVm("on-ds1")!;
    assert.equal(vm.guestHeartbeat, clock.now());
    assert.ok(vm.cpuUsage > 0);
    const lock = sim.diskLocks().find((l) => l.vmId === "on-ds1")!;
    assert.ok(lock.expiresAt > clock.now());
  });

  it("reports a VM powered off while frozen as stopped by a storage failure, and lets it start where the datastore is reachable", async () => {
    const { clock, sim } = await fleet();
    await sim.setStoragePathsUp("h1", 0, "ds1");
    await clock.advance(320_000);
    await sim.stopVm("on-ds1", "PowerOff");
    assert.equal(sim.observeVm("on-ds1")!.lastExit?.reason, "StorageFailure");
    assert.equal((await sim.startVm("on-ds1", "h2", vmConfig("ds1"))).host, "h2");
    assert.equal(sim.splitBrainAttempts(), 0);
  });

  it("loses the host lease only when both heartbeat datastores are in APD: then the host fences its VMs at lock expiry", async () => {
    const { clock, sim } = await fleet();
    await sim.setStoragePathsUp("h1", 0, "ds1");
    await sim.setStoragePathsUp("h1", 0, "ds2");
    const lostAt = clock.now();
    await clock.advance(sim.timings.lockExpiryMs + sim.timings.lockRenewIntervalMs);
    const h1 = (await sim.observe()).hosts.find((h) => h.name === "h1")!;
    assert.ok(h1.lastDatastoreHeartbeat <= lostAt);
    assert.equal(sim.observeVm("on-ds1")!.power, "Off");
    assert.equal(sim.observeVm("on-ds3")!.power, "Off", "its lease on ds3 lived by the host lease");
  });

  it("refuses a datastore the host does not see", async () => {
    const { sim } = await fleet();
    assert.equal(await code(sim.setStoragePathsUp("h1", 0, "elsewhere")), "Invalid");
  });
});
