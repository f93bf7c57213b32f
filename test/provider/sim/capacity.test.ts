import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { VirtualClock } from "../../../controller/core/clock.ts";
import type { HostConfig, VmConfig } from "../../../controller/core/observation.ts";
import { SimulatedHosts } from "../../../controller/provider/sim/index.ts";
import { refusal } from "../../support/provider.ts";

function hostConfig(overrides: Partial<HostConfig> = {}): HostConfig {
  return {
    hypervisor: "kvm",
    cpu: { cores: 8, vendor: "intel", features: ["sse4_2", "avx2"], overcommitRatio: 2 },
    memoryMiB: 16384,
    datastores: ["shared"],
    networks: ["prod"],
    storagePaths: 2,
    labels: {},
    ...overrides,
  };
}

function vmConfig(overrides: Partial<VmConfig> = {}): VmConfig {
  return {
    cpu: 2,
    memoryMiB: 4096,
    cpuFeatures: [],
    disks: [{ name: "root", sizeGiB: 20, datastore: "shared" }],
    nics: [{ network: "prod", macAddress: "52:54:00:00:00:01" }],
    workload: { profile: "Steady", cpuPercent: 50 },
    ...overrides,
  };
}

async function simWithHost(config: HostConfig = hostConfig()) {
  const clock = new VirtualClock();
  const sim = new SimulatedHosts({ clock, seed: 7 });
  await sim.registerHost("h1", config);
  return { clock, sim };
}

describe("host capacity", () => {
  it("refuses a power-on that would overcommit memory, even with vCPUs to spare", async () => {
    const { sim } = await simWithHost();
    await sim.startVm("ns/a", "h1", vmConfig({ memoryMiB: 8192 }));
    await sim.startVm("ns/b", "h1", vmConfig({ memoryMiB: 8192 }));
    assert.equal(await refusal(sim.startVm("ns/c", "h1", vmConfig({ cpu: 1, memoryMiB: 1 }))), "InsufficientResources");
    const host = (await sim.observe()).hosts[0]!;
    assert.deepEqual(host.allocated, { cpu: 4, memoryMiB: 16384 });
  });

  it("hands out vCPUs up to cores times the overcommit ratio and no further", async () => {
    const { sim } = await simWithHost();
    for (let i = 0; i < 4; i++) await sim.startVm(`ns/vm-${i}`, "h1", vmConfig({ cpu: 4, memoryMiB: 1024 }));
    assert.equal((await sim.observe()).hosts[0]!.allocated.cpu, 16);
    assert.equal(await refusal(sim.startVm("ns/one-more", "h1", vmConfig({ cpu: 1, memoryMiB: 1024 }))), "InsufficientResources");
  });

  it("refuses a VM with more vCPUs than the host has cores, whatever the ratio", async () => {
    const { sim } = await simWithHost(hostConfig({ cpu: { cores: 4, vendor: "amd", features: [], overcommitRatio: 8 } }));
    assert.equal(await refusal(sim.startVm("ns/wide", "h1", vmConfig({ cpu: 5 }))), "InsufficientResources");
  });

  it("counts Starting, Running and Stopping VMs as allocated, and frees their share once Off", async () => {
    const { clock, sim } = await simWithHost();
    await sim.startVm("ns/a", "h1", vmConfig());
    assert.deepEqual((await sim.observe()).hosts[0]!.allocated, { cpu: 2, memoryMiB: 4096 });
    await clock.advance(sim.timings.bootMs);
    await sim.stopVm("ns/a", "Shutdown");
    assert.equal(sim.observeVm("ns/a")?.power, "Stopping");
    assert.deepEqual((await sim.observe()).hosts[0]!.allocated, { cpu: 2, memoryMiB: 4096 });
    await clock.advance(sim.timings.guestShutdownMs);
    const host = (await sim.observe()).hosts[0]!;
    assert.deepEqual(host.allocated, { cpu: 0, memoryMiB: 0 });
    assert.equal(host.vmCount, 1, "an Off VM stays registered");
  });

  it("reports memory as used once the guest has booted, and CPU used as the guests' demand", async () => {
    const { clock, sim } = await simWithHost();
    await sim.startVm("ns/a", "h1", vmConfig({ cpu: 2, workload: { profile: "Steady", cpuPercent: 50 } }));
    assert.deepEqual((await sim.observe()).hosts[0]!.used, { cpu: 0, memoryMiB: 0 });
    await clock.advance(sim.timings.bootMs);
    assert.deepEqual((await sim.observe()).hosts[0]!.used, { cpu: 1, memoryMiB: 4096 });
  });

  it("caps CPU used at the host's cores when overcommitted guests all want more", async () => {
    const { clock, sim } = await simWithHost(hostConfig({ cpu: { cores: 4, vendor: "intel", features: [], overcommitRatio: 4 } }));
    for (let i = 0; i < 4; i++) {
      await sim.startVm(`ns/busy-${i}`, "h1", vmConfig({ cpu: 4, memoryMiB: 1024, workload: { profile: "Steady", cpuPercent: 100 } }));
    }
    await clock.advance(sim.timings.bootMs);
    const observation = await sim.observe();
    assert.equal(observation.hosts[0]!.used.cpu, 4);
    assert.equal(observation.vms.reduce((sum, vm) => sum + vm.cpuUsage, 0), 16, "each guest reports its own demand");
  });

  it("refuses a VM whose datastore, network or CPU features the host lacks as Invalid", async () => {
    const { sim } = await simWithHost();
    assert.equal(await refusal(sim.startVm("ns/a", "h1", vmConfig({ disks: [{ name: "root", sizeGiB: 1, datastore: "elsewhere" }] }))), "Invalid");
    assert.equal(await refusal(sim.startVm("ns/a", "h1", vmConfig({ nics: [{ network: "dmz", macAddress: "52:54:00:00:00:02" }] }))), "Invalid");
    assert.equal(await refusal(sim.startVm("ns/a", "h1", vmConfig({ cpuFeatures: ["avx512f"] }))), "Invalid");
    assert.equal((await sim.observe()).vms.length, 0, "a refused power-on registers nothing");
  });

  it("refuses power-ons on unknown, crashed and isolated hosts", async () => {
    const { sim } = await simWithHost();
    await sim.registerHost("h2", hostConfig());
    assert.equal(await refusal(sim.startVm("ns/a", "nowhere", vmConfig())), "NotFound");
    await sim.crashHost("h1");
    assert.equal(await refusal(sim.startVm("ns/a", "h1", vmConfig())), "Unavailable");
    await sim.isolateHost("h2");
    assert.equal(await refusal(sim.startVm("ns/a", "h2", vmConfig())), "Unavailable");
  });

  it("refuses to shrink a host's description below what its VMs hold", async () => {
    const { sim } = await simWithHost();
    await sim.startVm("ns/a", "h1", vmConfig({ memoryMiB: 8192 }));
    assert.equal(await refusal(sim.registerHost("h1", hostConfig({ memoryMiB: 4096 }))), "Conflict");
    await sim.registerHost("h1", hostConfig({ memoryMiB: 65536 }));
    assert.equal((await sim.observe()).hosts[0]!.config.memoryMiB, 65536);
  });

  it("refuses to forget a host while VMs are registered on it, and forgets an empty one", async () => {
    const { sim } = await simWithHost();
    await sim.startVm("ns/a", "h1", vmConfig());
    await sim.stopVm("ns/a", "PowerOff");
    assert.equal(await refusal(sim.unregisterHost("h1")), "Conflict");
    await sim.removeVm("ns/a");
    await sim.unregisterHost("h1");
    await sim.unregisterHost("h1");
    assert.equal((await sim.observe()).hosts.length, 0);
  });

  it("refuses host and VM descriptions no hypervisor could have", async () => {
    const { sim } = await simWithHost();
    assert.equal(await refusal(sim.registerHost("h2", hostConfig({ memoryMiB: 0 }))), "Invalid");
    assert.equal(await refusal(sim.startVm("ns/a", "h1", vmConfig({ cpu: 0 }))), "Invalid");
    assert.equal(await refusal(sim.startVm("ns/a", "h1", vmConfig({ workload: { profile: "Steady", cpuPercent: 101 } }))), "Invalid");
  });
});
