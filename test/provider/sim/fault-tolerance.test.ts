// Fault tolerance in the simulated hosts, on the virtual clock: a secondary made by a live copy and kept in
// lockstep, what it holds, the logging link, a move, and what each fault does to the pair. The rule above
// all: a secondary goes live only where its primary no longer runs, so no VM ever runs twice.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FT_BASE_LAG_MS, FT_GO_LIVE_MS } from "../../../controller/core/fault-tolerance.ts";
import { fleet, guest, refusal, running, settings } from "../../support/migration.ts";
import { allocated, ft, secondaryOf } from "./fault-tolerance-support.ts";

/** An idle 4 GiB guest's copy at 128 MiB/s: round 0 takes 32 s, round 1 sends the 64 MiB dirtied meanwhile in 0.5 s. */
const IDLE_4G_COPY_MS = 32_500;

/** shop/db (4 GiB, idle) runs on h1 with its secondary in lockstep on h2. */
async function protectedPair(hosts?: Parameters<typeof fleet>[0]) {
  const { clock, sim } = await fleet(hosts);
  await running(clock, sim, { "shop/db": ["h1", guest(4096)] });
  await sim.protectVm("shop/db", "h2", { key: "p1", settings: ft() });
  await clock.advance(IDLE_4G_COPY_MS);
  assert.equal((await secondaryOf(sim, "shop/db"))?.state, "Lockstep");
  return { clock, sim };
}

describe("fault tolerance: making a secondary", () => {
  it("copies the VM live over the logging link, then keeps the secondary in lockstep, holding the VM's vCPUs and memory on its host", async () => {
    const { clock, sim } = await fleet();
    await running(clock, sim, { "shop/db": ["h1", guest(4096)] });
    const t0 = clock.now();
    await sim.protectVm("shop/db", "h2", { key: "p1", settings: ft() });
    assert.deepEqual(await secondaryOf(sim, "shop/db"), {
      vm: "shop/db", key: "p1", host: "h2", primaryHost: "h1", state: "Copying", since: t0, copiedMiB: 0, remainingMiB: 4096, cpu: 2, memoryMiB: 4096,
    });
    assert.deepEqual(await allocated(sim, "h2"), { cpu: 2, memoryMiB: 4096 }, "held from the start of the copy");

    await clock.advance(IDLE_4G_COPY_MS - 1);
    assert.equal((await secondaryOf(sim, "shop/db"))?.state, "Copying");
    await clock.advance(1);
    assert.deepEqual(await secondaryOf(sim, "shop/db"), {
      vm: "shop/db", key: "p1", host: "h2", primaryHost: "h1", state: "Lockstep", since: t0 + IDLE_4G_COPY_MS, lagMs: FT_BASE_LAG_MS, slowdownPercent: 0, cpu: 2, memoryMiB: 4096,
    });
    const h2 = (await sim.observe()).hosts.find((h) => h.name === "h2")!;
    assert.deepEqual([h2.allocated, h2.used.memoryMiB, h2.vmCount], [{ cpu: 2, memoryMiB: 4096 }, 4096, 0], "the secondary is no VM of h2's");
    assert.deepEqual(sim.groundTruth().secondaries, [{ vm: "shop/db", host: "h2", state: "Lockstep" }]);
    assert.equal(sim.observeVm("shop/db")!.host, "h1");
  });

  it("is a no-op on the host that has the secondary already", async () => {
    const { sim } = await protectedPair();
    const revision = sim.revision();
    await sim.protectVm("shop/db", "h2", { key: "another", settings: ft() });
    assert.equal(sim.revision(), revision);
    assert.equal((await secondaryOf(sim, "shop/db"))?.key, "p1");
  });

  it("counts the secondary against its host's room: a VM that would fit otherwise is refused", async () => {
    const { sim } = await protectedPair({ h1: {}, h2: { memoryMiB: 8192 }, h3: {} });
    assert.equal(await refusal(sim.startVm("shop/web", "h2", guest(6144))), "InsufficientResources");
    await sim.startVm("shop/web", "h2", guest(4096));
  });

  it("refuses the primary's own host, a host without room or of another CPU vendor, a VM that is not running, and bad settings", async () => {
    const { clock, sim } = await fleet({ h1: {}, h2: {}, small: { memoryMiB: 2048 }, amd: { cpu: { cores: 16, vendor: "amd", features: ["avx2"], overcommitRatio: 4 } } });
    await running(clock, sim, { "shop/db": ["h1", guest(4096)] });
    const protect = (host: string, options = { key: "p", settings: ft() }) => sim.protectVm("shop/db", host, options);
    assert.equal(await refusal(protect("h1")), "Conflict");
    assert.equal(await refusal(protect("small")), "InsufficientResources");
    assert.equal(await refusal(protect("amd")), "Incompatible");
    assert.equal(await refusal(protect("nowhere")), "NotFound");
    assert.equal(await refusal(sim.protectVm("shop/none", "h2", { key: "p", settings: ft() })), "NotFound");
    assert.equal(await refusal(protect("h2", { key: "", settings: ft() })), "Invalid");
    assert.equal(await refusal(protect("h2", { key: "p", settings: ft({ loggingBandwidthMiBps: 0 }) })), "Invalid");
    await assert.rejects(protect("h2", { key: "p", settings: ft({ copy: settings({ maxRounds: 0 }) }) }), { code: "Invalid", message: /settings\.copy\.maxRounds/ });
    await sim.isolateHost("h2");
    assert.equal(await refusal(protect("h2")), "Unavailable");
    await sim.healIsolation("h2");
    await sim.stopVm("shop/db", "PowerOff");
    assert.equal(await refusal(protect("h2")), "Conflict");
    assert.deepEqual((await sim.observe()).secondaries, []);
  });

  it("refuses to protect a migrating VM, to migrate a primary whose secondary is being made, and to migrate a primary onto its secondary's host", async () => {
    const { clock, sim } = await fleet();
    await running(clock, sim, { "shop/db": ["h1", guest(4096)], "shop/web": ["h1", guest(4096)] });
    await sim.migrateVm("shop/web", "h3", { key: "m", settings: settings() });
    assert.equal(await refusal(sim.protectVm("shop/web", "h2", { key: "p", settings: ft() })), "Conflict");
    await sim.protectVm("shop/db", "h2", { key: "p", settings: ft() });
    assert.equal(await refusal(sim.migrateVm("shop/db", "h3", { key: "m", settings: settings() })), "Conflict", "still copying");
    await clock.advance(IDLE_4G_COPY_MS);
    assert.equal(await refusal(sim.migrateVm("shop/db", "h2", { key: "m", settings: settings() })), "Conflict", "onto its secondary");
    assert.equal(await refusal(sim.adminMove("shop/db", "h2")), "Conflict");
  });

  it("fails a copy that cannot converge, saying why, and frees the host", async () => {
    const { clock, sim } = await fleet();
    await running(clock, sim, { "shop/cache": ["h1", guest(4096, 150)] });
    const t0 = clock.now();
    await sim.protectVm("shop/cache", "h2", { key: "p", settings: ft() });
    await clock.advance(200_000);
    const failed = await secondaryOf(sim, "shop/cache");
    assert.equal(failed?.state, "Failed");
    assert.equal(failed?.since, t0 + 150_000);
    assert.match(failed?.reason ?? "", /^the live copy failed: no progress for 150 s/);
    assert.deepEqual(await allocated(sim, "h2"), { cpu: 0, memoryMiB: 0 });
    await sim.protectVm("shop/cache", "h2", { key: "again", settings: ft({ copy: settings({ autoConverge: true }) }) });
    assert.equal((await secondaryOf(sim, "shop/cache"))?.state, "Copying", "a failed secondary is made anew on request");
  });

  it("drops the secondary on request, and does nothing without one", async () => {
    const { sim } = await protectedPair();
    await sim.unprotectVm("shop/db");
    assert.deepEqual((await sim.observe()).secondaries, []);
    assert.deepEqual(await allocated(sim, "h2"), { cpu: 0, memoryMiB: 0 });
    const revision = sim.revision();
    await sim.unprotectVm("shop/db");
    await sim.unprotectVm("shop/nobody");
    assert.equal(sim.revision(), revision);
  });
});

describe("fault tolerance: the logging link", () => {
  it("slows a primary whose lockstep needs more than the link gives, and the secondary lags", async () => {
    const { clock, sim } = await fleet();
    await running(clock, sim, { "shop/db": ["h1", guest(4096, 20)] });
    await sim.protectVm("shop/db", "h2", { key: "p", settings: ft({ loggingBandwidthMiBps: 100 }) });
    await clock.advance(60_000);
    assert.deepEqual([(await secondaryOf(sim, "shop/db"))?.slowdownPercent, (await secondaryOf(sim, "shop/db"))?.lagMs], [0, FT_BASE_LAG_MS]);
    const demand = sim.observeVm("shop/db")!.cpuUsage;

    // 150 MiB/s of lockstep on a 100 MiB/s link: the primary runs two thirds of the time.
    await sim.setGuestWorkload("shop/db", { profile: "Steady", cpuPercent: 50, dirtyRateMiBps: 150 });
    const slowed = await secondaryOf(sim, "shop/db");
    assert.deepEqual([slowed?.state, slowed?.slowdownPercent, slowed?.lagMs], ["Lockstep", 33.333, FT_BASE_LAG_MS * 1.5]);
    assert.ok(Math.abs(sim.observeVm("shop/db")!.cpuUsage - demand * (2 / 3)) < 1e-9, "the guest runs two thirds of the time");
    const h1 = (await sim.observe()).hosts.find((h) => h.name === "h1")!;
    assert.ok(Math.abs(h1.used.cpu - demand * (2 / 3)) < 1e-9);

    await sim.unprotectVm("shop/db");
    assert.equal(sim.observeVm("shop/db")!.cpuUsage, demand, "an unprotected VM runs at full speed");
  });

  it("shares a host's link among the pairs that use it: two primaries with their secondaries on one host", async () => {
    const { clock, sim } = await fleet();
    await running(clock, sim, { "shop/a": ["h1", guest(2048, 5)], "shop/b": ["h3", guest(2048, 5)] });
    await sim.protectVm("shop/a", "h2", { key: "a", settings: ft({ loggingBandwidthMiBps: 100 }) });
    await sim.protectVm("shop/b", "h2", { key: "b", settings: ft({ loggingBandwidthMiBps: 100 }) });
    await clock.advance(120_000);
    for (const id of ["shop/a", "shop/b"]) assert.equal((await secondaryOf(sim, id))?.state, "Lockstep");
    // 60 MiB/s each: h1 and h3 carry 60, but h2 carries both, 120 MiB/s on 100.
    for (const id of ["shop/a", "shop/b"]) await sim.setGuestWorkload(id, { profile: "Steady", cpuPercent: 50, dirtyRateMiBps: 60 });
    for (const id of ["shop/a", "shop/b"]) {
      const s = await secondaryOf(sim, id);
      assert.deepEqual([s?.slowdownPercent, s?.lagMs], [16.667, FT_BASE_LAG_MS * 1.2]);
    }
    await sim.unprotectVm("shop/b");
    assert.equal((await secondaryOf(sim, "shop/a"))?.slowdownPercent, 0);
  });
});

describe("fault tolerance: a move, make before break", () => {
  it("keeps the old secondary protecting the VM until the new one is in lockstep, then drops it", async () => {
    const { clock, sim } = await protectedPair();
    const t0 = clock.now();
    await sim.protectVm("shop/db", "h3", { key: "p2", settings: ft() });
    const moving = await secondaryOf(sim, "shop/db");
    assert.deepEqual([moving?.host, moving?.key, moving?.state], ["h3", "p2", "Copying"], "the VM's entry is the new secondary");
    assert.deepEqual(sim.groundTruth().secondaries, [{ vm: "shop/db", host: "h3", state: "Copying" }, { vm: "shop/db", host: "h2", state: "Lockstep" }]);
    for (const host of ["h2", "h3"]) assert.deepEqual(await allocated(sim, host), { cpu: 2, memoryMiB: 4096 });

    await clock.advance(IDLE_4G_COPY_MS);
    const moved = await secondaryOf(sim, "shop/db");
    assert.deepEqual([moved?.host, moved?.state, moved?.since], ["h3", "Lockstep", t0 + IDLE_4G_COPY_MS]);
    assert.deepEqual(sim.groundTruth().secondaries, [{ vm: "shop/db", host: "h3", state: "Lockstep" }]);
    assert.deepEqual(await allocated(sim, "h2"), { cpu: 0, memoryMiB: 0 });
  });

  it("goes live from the old secondary when the primary's host fails during the move", async () => {
    const { clock, sim } = await protectedPair();
    await sim.protectVm("shop/db", "h3", { key: "p2", settings: ft() });
    await clock.advance(10_000);
    await sim.crashHost("h1");
    const back = await secondaryOf(sim, "shop/db");
    assert.deepEqual([back?.host, back?.key, back?.state], ["h2", "p1", "Lockstep"]);
    assert.match(back?.reason ?? "", /^moving the secondary to host h3 failed: the primary's host h1 failed before the copy completed$/);
    await clock.advance(FT_GO_LIVE_MS);
    assert.deepEqual([sim.observeVm("shop/db")?.host, sim.observeVm("shop/db")?.power], ["h2", "Running"]);
    assert.deepEqual(await allocated(sim, "h3"), { cpu: 0, memoryMiB: 0 });
  });

  it("abandons the move when asked for the old secondary's host again", async () => {
    const { sim } = await protectedPair();
    await sim.protectVm("shop/db", "h3", { key: "p2", settings: ft() });
    await sim.protectVm("shop/db", "h2", { key: "p3", settings: ft() });
    const kept = await secondaryOf(sim, "shop/db");
    assert.deepEqual([kept?.host, kept?.key, kept?.state], ["h2", "p1", "Lockstep"]);
    assert.deepEqual(await allocated(sim, "h3"), { cpu: 0, memoryMiB: 0 });
  });
});

describe("fault tolerance: the primary's host fails", () => {
  it("runs the VM on from the secondary's host within FT_GO_LIVE_MS: the same run, its locks moved, nothing refused", async () => {
    const { clock, sim } = await protectedPair();
    const before = sim.observeVm("shop/db")!;
    const crashedAt = clock.now();
    await sim.crashHost("h1");
    await clock.advance(FT_GO_LIVE_MS - 1);
    assert.deepEqual(sim.groundTruth().vms, [{ id: "shop/db", host: "h1", power: "Off" }], "not live yet");

    await clock.advance(1);
    const after = sim.observeVm("shop/db")!;
    assert.deepEqual([after.host, after.power, after.poweredOnAt, after.lastExit], ["h2", "Running", before.poweredOnAt, undefined], "no boot, no restart");
    assert.ok(after.revision > before.revision);
    const observation = await sim.observe();
    assert.deepEqual(observation.switchovers, [{ vm: "shop/db", from: "h1", to: "h2", primaryLostAt: crashedAt, at: crashedAt + FT_GO_LIVE_MS }]);
    assert.deepEqual(observation.secondaries, [], "it is the primary now: the VM needs a new secondary");
    assert.deepEqual(sim.diskLocks().map((lock) => [lock.host, lock.acquiredAt]), [["h2", crashedAt + FT_GO_LIVE_MS]], "taken at once, not after the lease");
    assert.deepEqual(observation.hosts.find((h) => h.name === "h2")!.allocated, { cpu: 2, memoryMiB: 4096 }, "the VM, no longer also its secondary");
    assert.equal(observation.splitBrainAttempts, 0);
    const truth = sim.groundTruth();
    assert.deepEqual([truth.goLiveRefused, truth.twoPrimaries], [0, 0]);
    assert.deepEqual(truth.switchovers.map((s) => s.lostMiB), [0]);
    await clock.advance(60_000);
    assert.ok(sim.observeVm("shop/db")!.guestHeartbeat! >= crashedAt + 60_000, "the guest heartbeat goes on from the new host");
  });

  it("fails a secondary still being copied, and the VM is down like any other of the host", async () => {
    const { clock, sim } = await fleet();
    await running(clock, sim, { "shop/db": ["h1", guest(4096)] });
    await sim.protectVm("shop/db", "h2", { key: "p", settings: ft() });
    await clock.advance(10_000);
    await sim.crashHost("h1");
    const failed = await secondaryOf(sim, "shop/db");
    assert.equal(failed?.state, "Failed");
    assert.equal(failed?.reason, "the primary's host h1 failed before the copy completed");
    await clock.advance(FT_GO_LIVE_MS * 10);
    assert.deepEqual(sim.groundTruth().vms, [{ id: "shop/db", host: "h1", power: "Off" }]);
    assert.deepEqual(await allocated(sim, "h2"), { cpu: 0, memoryMiB: 0 });
  });

  it("goes live once the host that lost its storage fences the primary, not while the primary is only frozen", async () => {
    const { clock, sim } = await protectedPair();
    const lostAt = clock.now();
    await sim.setStoragePathsUp("h1", 0);
    await clock.advance(sim.timings.lockExpiryMs - sim.timings.lockRenewIntervalMs);
    assert.deepEqual([sim.observeVm("shop/db")?.host, (await secondaryOf(sim, "shop/db"))?.state], ["h1", "Lockstep"], "frozen, still the primary");
    await clock.advance(sim.timings.lockRenewIntervalMs + FT_GO_LIVE_MS);
    const vm = sim.observeVm("shop/db")!;
    assert.deepEqual([vm.host, vm.power], ["h2", "Running"]);
    const [switchover] = (await sim.observe()).switchovers!;
    assert.ok(switchover!.primaryLostAt > lostAt && switchover!.at === switchover!.primaryLostAt + FT_GO_LIVE_MS);
    assert.deepEqual([sim.groundTruth().twoPrimaries, sim.splitBrainAttempts()], [0, 0]);
  });
});

describe("fault tolerance: never two primaries", () => {
  it("fails the secondary when the primary's host is cut off but still runs the VM: it keeps the disk lock", async () => {
    const { clock, sim } = await protectedPair();
    await sim.isolateHost("h1");
    await clock.advance(FT_GO_LIVE_MS);
    const failed = await secondaryOf(sim, "shop/db");
    assert.equal(failed?.state, "Failed");
    assert.equal(failed?.reason, "the primary still runs on host h1: it keeps the disk lock");
    assert.deepEqual(sim.groundTruth().vms, [{ id: "shop/db", host: "h1", power: "Running" }]);
    assert.deepEqual(sim.diskLocks().map((lock) => lock.host), ["h1"]);
    assert.deepEqual([sim.groundTruth().goLiveRefused, sim.groundTruth().twoPrimaries], [1, 0]);
    assert.deepEqual(await allocated(sim, "h2"), { cpu: 0, memoryMiB: 0 });
  });

  it("fails it when a partition separates the two hosts, either way round", async () => {
    for (const cut of ["h1", "h2"]) {
      const { clock, sim } = await protectedPair();
      await sim.partitionHosts([cut]);
      await clock.advance(FT_GO_LIVE_MS);
      assert.equal((await secondaryOf(sim, "shop/db"))?.state, "Failed", `${cut} cut off`);
      assert.deepEqual(sim.groundTruth().vms, [{ id: "shop/db", host: "h1", power: "Running" }]);
      assert.equal(sim.groundTruth().goLiveRefused, 1);
    }
  });

  it("keeps the pair when the partition leaves the two together, or the link comes back within FT_GO_LIVE_MS", async () => {
    const { clock, sim } = await protectedPair();
    await sim.partitionHosts(["h1", "h2"]);
    await clock.advance(FT_GO_LIVE_MS * 5);
    assert.equal((await secondaryOf(sim, "shop/db"))?.state, "Lockstep");
    await sim.healPartition(["h1", "h2"]);
    await sim.isolateHost("h2");
    await clock.advance(FT_GO_LIVE_MS / 2);
    assert.equal((await secondaryOf(sim, "shop/db"))?.lagMs, FT_GO_LIVE_MS / 2, "it trails the primary by the time it has not heard from it");
    await sim.healIsolation("h2");
    await clock.advance(FT_GO_LIVE_MS * 5);
    assert.deepEqual([(await secondaryOf(sim, "shop/db"))?.state, sim.groundTruth().goLiveRefused], ["Lockstep", 0]);
  });

  it("fails the secondary when its own host fails; the primary runs on", async () => {
    const { clock, sim } = await protectedPair();
    await sim.crashHost("h2");
    const failed = await secondaryOf(sim, "shop/db");
    assert.deepEqual([failed?.state, failed?.reason], ["Failed", "host h2 failed"]);
    await clock.advance(FT_GO_LIVE_MS);
    assert.deepEqual(sim.groundTruth().vms, [{ id: "shop/db", host: "h1", power: "Running" }]);
    assert.equal(sim.groundTruth().goLiveRefused, 0);
  });

  it("does not go live where its own host is cut off when the primary's host fails", async () => {
    const { clock, sim } = await protectedPair();
    await sim.isolateHost("h2");
    await sim.crashHost("h1");
    await clock.advance(FT_GO_LIVE_MS);
    const failed = await secondaryOf(sim, "shop/db");
    assert.equal(failed?.state, "Failed");
    assert.match(failed?.reason ?? "", /^host h2 is cut off from the network/);
    assert.deepEqual(sim.groundTruth().vms, [{ id: "shop/db", host: "h1", power: "Off" }]);
  });

  it("drops the secondary when the primary is powered off, reset or crashes: the guest stops in lockstep", async () => {
    for (const stop of ["PowerOff", "Reset", "Crash", "Shutdown"] as const) {
      const { clock, sim } = await protectedPair();
      if (stop === "PowerOff" || stop === "Shutdown") await sim.stopVm("shop/db", stop);
      if (stop === "Reset") await sim.resetVm("shop/db", "r1");
      if (stop === "Crash") await sim.crashVm("shop/db");
      await clock.advance(FT_GO_LIVE_MS * 20);
      assert.deepEqual((await sim.observe()).secondaries, [], stop);
      assert.equal(sim.observeVm("shop/db")?.host, "h1", stop);
      assert.equal(sim.groundTruth().goLiveRefused, 0);
    }
  });

  it("keeps the secondary in lockstep across a live migration of the primary", async () => {
    const { clock, sim } = await protectedPair();
    await sim.migrateVm("shop/db", "h3", { key: "m", settings: settings() });
    await clock.advance(40_000);
    assert.equal(sim.observeVm("shop/db")?.host, "h3");
    const s = await secondaryOf(sim, "shop/db");
    assert.deepEqual([s?.state, s?.host, s?.primaryHost], ["Lockstep", "h2", "h3"]);
    await sim.crashHost("h3");
    await clock.advance(FT_GO_LIVE_MS);
    assert.deepEqual([sim.observeVm("shop/db")?.host, sim.observeVm("shop/db")?.power], ["h2", "Running"]);
  });

  it("forgets the secondary with its VM", async () => {
    const { sim } = await protectedPair();
    await sim.removeVm("shop/db");
    assert.deepEqual([(await sim.observe()).secondaries, sim.groundTruth().secondaries], [[], []]);
    await sim.unregisterHost("h2");
  });

  it("refuses to unregister the host of a secondary", async () => {
    const { sim } = await protectedPair();
    assert.equal(await refusal(sim.unregisterHost("h2")), "Conflict");
  });
});
