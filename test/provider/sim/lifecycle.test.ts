import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { VirtualClock } from "../../../controller/core/clock.ts";
import { SimulatedHosts } from "../../../controller/provider/sim/index.ts";
import { hostConfig, refusal, vmConfig } from "../../support/provider.ts";

async function setup() {
  const clock = new VirtualClock();
  const sim = new SimulatedHosts({ clock, seed: 11 });
  await sim.registerHost("h1", hostConfig());
  await sim.registerHost("h2", hostConfig());
  return { clock, sim, t0: clock.now() };
}

describe("VM power transitions", () => {
  it("is Starting for the boot time, then Running with a guest heartbeat", async () => {
    const { clock, sim, t0 } = await setup();
    const started = await sim.startVm("ns/a", "h1", vmConfig());
    assert.equal(started.power, "Starting");
    assert.equal(started.poweredOnAt, t0);
    assert.equal(started.guestHeartbeat, undefined);
    await clock.advance(sim.timings.bootMs - 1);
    assert.equal(sim.observeVm("ns/a")?.power, "Starting");
    await clock.advance(1);
    const running = sim.observeVm("ns/a");
    assert.equal(running?.power, "Running");
    assert.equal(running?.since, t0 + sim.timings.bootMs);
    assert.equal(running?.guestHeartbeat, t0 + sim.timings.bootMs);
    await clock.advance(5_500);
    assert.equal(sim.observeVm("ns/a")?.guestHeartbeat, t0 + sim.timings.bootMs + 5_000);
  });

  it("shuts down over the guest shutdown time, and powers off at once", async () => {
    const { clock, sim } = await setup();
    await sim.startVm("ns/a", "h1", vmConfig());
    await sim.startVm("ns/b", "h1", vmConfig());
    await clock.advance(sim.timings.bootMs);
    await sim.stopVm("ns/a", "Shutdown");
    await sim.stopVm("ns/b", "PowerOff");
    assert.equal(sim.observeVm("ns/a")?.power, "Stopping");
    assert.equal(sim.observeVm("ns/b")?.power, "Off");
    await clock.advance(sim.timings.guestShutdownMs - 1);
    assert.equal(sim.observeVm("ns/a")?.power, "Stopping");
    await clock.advance(1);
    const a = sim.observeVm("ns/a");
    assert.equal(a?.power, "Off");
    assert.equal(a?.poweredOnAt, undefined);
    assert.equal(a?.lastExit, undefined, "a stop that was asked for is not an exit");
  });

  it("bumps the revision on every change and only then", async () => {
    const { clock, sim } = await setup();
    const r1 = (await sim.startVm("ns/a", "h1", vmConfig())).revision;
    assert.equal(sim.observeVm("ns/a")?.revision, r1);
    await clock.advance(sim.timings.bootMs);
    const r2 = sim.observeVm("ns/a")!.revision;
    assert.ok(r2 > r1);
    await clock.advance(60_000);
    assert.equal(sim.observeVm("ns/a")?.revision, r2, "heartbeats tick without a new revision");
    await sim.stopVm("ns/a", "PowerOff");
    assert.ok(sim.observeVm("ns/a")!.revision > r2);
  });

  it("never lets a caller change the simulator through an observation", async () => {
    const { sim } = await setup();
    const config = vmConfig();
    await sim.startVm("ns/a", "h1", config);
    config.disks[0]!.datastore = "mutated";
    const observation = await sim.observe();
    observation.hosts[0]!.config.datastores.push("mutated");
    observation.hosts[0]!.allocated.memoryMiB = 0;
    observation.vms[0]!.config.cpu = 99;
    const again = await sim.observe();
    assert.deepEqual(again.hosts[0]!.config.datastores, ["shared"]);
    assert.equal(again.hosts[0]!.allocated.memoryMiB, 4096);
    assert.equal(again.vms[0]!.config.cpu, 2);
    assert.equal(again.vms[0]!.config.disks[0]!.datastore, "shared");
  });
});

describe("idempotency", () => {
  it("treats a second start on the same host as a no-op, Starting or Running", async () => {
    const { clock, sim } = await setup();
    const first = await sim.startVm("ns/a", "h1", vmConfig());
    const again = await sim.startVm("ns/a", "h1", vmConfig());
    assert.deepEqual(again, first);
    await clock.advance(sim.timings.bootMs);
    const running = sim.observeVm("ns/a")!;
    assert.deepEqual(await sim.startVm("ns/a", "h1", vmConfig()), running);
    assert.equal((await sim.observe()).hosts[0]!.allocated.cpu, 2, "resources are not taken twice");
  });

  it("refuses a start on another host while the VM is on where its host answers", async () => {
    const { sim } = await setup();
    await sim.startVm("ns/a", "h1", vmConfig());
    assert.equal(await refusal(sim.startVm("ns/a", "h2", vmConfig())), "Conflict");
    assert.equal((await sim.observe()).splitBrainAttempts, 0, "a refusal by the management plane is not a split-brain attempt");
  });

  it("refuses a start while the guest is shutting down, and allows it once Off", async () => {
    const { clock, sim } = await setup();
    await sim.startVm("ns/a", "h1", vmConfig());
    await clock.advance(sim.timings.bootMs);
    await sim.stopVm("ns/a", "Shutdown");
    assert.equal(await refusal(sim.startVm("ns/a", "h1", vmConfig())), "Conflict");
    await clock.advance(sim.timings.guestShutdownMs);
    assert.equal((await sim.startVm("ns/a", "h1", vmConfig())).power, "Starting");
  });

  it("moves an Off VM to another host on start", async () => {
    const { sim } = await setup();
    await sim.startVm("ns/a", "h1", vmConfig());
    await sim.stopVm("ns/a", "PowerOff");
    const moved = await sim.startVm("ns/a", "h2", vmConfig());
    assert.equal(moved.host, "h2");
    const observation = await sim.observe();
    assert.deepEqual(observation.hosts.map((h) => h.vmCount), [0, 1]);
  });

  it("treats stopping an Off or unknown VM, and a second Shutdown, as no-ops", async () => {
    const { clock, sim } = await setup();
    await sim.stopVm("ns/unknown", "Shutdown");
    await sim.startVm("ns/a", "h1", vmConfig());
    await clock.advance(sim.timings.bootMs);
    await sim.stopVm("ns/a", "Shutdown");
    const stopping = sim.observeVm("ns/a")!;
    await clock.advance(3_000);
    await sim.stopVm("ns/a", "Shutdown");
    assert.equal(sim.observeVm("ns/a")?.revision, stopping.revision, "the shutdown was not restarted");
    await clock.advance(sim.timings.guestShutdownMs - 3_000);
    assert.equal(sim.observeVm("ns/a")?.power, "Off");
    const off = sim.observeVm("ns/a")!;
    await sim.stopVm("ns/a", "PowerOff");
    await sim.stopVm("ns/a", "Shutdown");
    assert.deepEqual(sim.observeVm("ns/a"), off);
  });

  it("powers off a Stopping VM at once when asked to pull the plug", async () => {
    const { clock, sim } = await setup();
    await sim.startVm("ns/a", "h1", vmConfig());
    await clock.advance(sim.timings.bootMs);
    await sim.stopVm("ns/a", "Shutdown");
    await sim.stopVm("ns/a", "PowerOff");
    assert.equal(sim.observeVm("ns/a")?.power, "Off");
  });

  it("removes a running VM, releasing its locks, and treats removing an unknown VM as a no-op", async () => {
    const { sim } = await setup();
    await sim.startVm("ns/a", "h1", vmConfig());
    assert.equal(sim.diskLocks().length, 1);
    await sim.removeVm("ns/a");
    await sim.removeVm("ns/a");
    assert.equal(sim.observeVm("ns/a"), undefined);
    assert.equal(sim.diskLocks().length, 0);
    assert.equal((await sim.startVm("ns/a", "h2", vmConfig())).host, "h2");
  });

  it("treats registering the same host twice as a no-op, and fault hooks applied twice as one", async () => {
    const { clock, sim } = await setup();
    await sim.registerHost("h1", hostConfig());
    await sim.startVm("ns/a", "h1", vmConfig());
    await sim.isolateHost("h1");
    await clock.advance(5_000);
    await sim.isolateHost("h1");
    await sim.crashHost("h1");
    const frozen = await sim.observe();
    await clock.advance(5_000);
    await sim.crashHost("h1");
    assert.deepEqual((await sim.observe()).hosts[0], frozen.hosts[0]);
    await sim.recoverHost("h1");
    await sim.recoverHost("h1");
    await sim.healIsolation("h1");
    assert.equal((await sim.observe()).hosts[0]!.lastNetworkHeartbeat, clock.now());
  });
});

describe("out-of-band guest events", () => {
  it("records a guest's own shutdown as GuestShutdown and a crash as Crashed", async () => {
    const { clock, sim } = await setup();
    await sim.startVm("ns/a", "h1", vmConfig());
    await sim.startVm("ns/b", "h1", vmConfig());
    await clock.advance(sim.timings.bootMs);
    await sim.guestShutdown("ns/a");
    await sim.crashVm("ns/b");
    const now = clock.now();
    assert.deepEqual(sim.observeVm("ns/a")?.lastExit, { reason: "GuestShutdown", at: now });
    assert.deepEqual(sim.observeVm("ns/b")?.lastExit, { reason: "Crashed", at: now });
    assert.equal(sim.diskLocks().length, 0);
    await sim.crashVm("ns/b");
    assert.equal(await refusal(sim.hangGuest("ns/b")), "Conflict");
  });

  it("keeps a hung guest powered on while its heartbeat stops, and it ignores a shutdown request", async () => {
    const { clock, sim, t0 } = await setup();
    await sim.startVm("ns/a", "h1", vmConfig());
    await clock.advance(sim.timings.bootMs + 10_000);
    await sim.hangGuest("ns/a");
    const hungAt = clock.now();
    await clock.advance(120_000);
    const hung = sim.observeVm("ns/a")!;
    assert.equal(hung.power, "Running");
    assert.equal(hung.guestHeartbeat, hungAt);
    assert.equal(hung.cpuUsage, 0);
    assert.ok(hungAt > t0);
    await sim.stopVm("ns/a", "Shutdown");
    await clock.advance(600_000);
    assert.equal(sim.observeVm("ns/a")?.power, "Stopping");
    await sim.stopVm("ns/a", "PowerOff");
    assert.equal(sim.observeVm("ns/a")?.power, "Off");
    await sim.startVm("ns/a", "h1", vmConfig());
    await clock.advance(sim.timings.bootMs);
    assert.equal(sim.observeVm("ns/a")?.guestHeartbeat, clock.now(), "a power cycle clears the hang");
  });

  it("never starts the heartbeat of a guest that hung while booting", async () => {
    const { clock, sim } = await setup();
    await sim.startVm("ns/a", "h1", vmConfig());
    await sim.hangGuest("ns/a");
    await clock.advance(sim.timings.bootMs + 60_000);
    const vm = sim.observeVm("ns/a")!;
    assert.equal(vm.power, "Running");
    assert.equal(vm.guestHeartbeat, undefined);
  });

  it("refuses guest events on an unknown VM or a crashed host", async () => {
    const { sim } = await setup();
    assert.equal(await refusal(sim.crashVm("ns/none")), "NotFound");
    await sim.startVm("ns/a", "h1", vmConfig());
    await sim.crashHost("h1");
    assert.equal(await refusal(sim.hangGuest("ns/a")), "Conflict");
  });
});
