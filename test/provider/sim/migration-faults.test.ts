// What ends a live migration early: a host failing or cut off on either side, during the copy or the
// switch-over, a cancel, and the VM stopped on its source. Each leaves exactly one copy of the VM running
// (or none, when the source died with it), its disks locked by that one host, and no split-brain attempt.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { VirtualClock } from "../../../controller/core/clock.ts";
import type { SimulatedHosts } from "../../../controller/provider/sim/index.ts";
import { copiesRunning, fleet, guest, migrationOf, running, runToEnd, runUntil, settings } from "../../support/migration.ts";

/** h1 runs shop/db (4 GiB, dirtying 60 MiB/s: 7 rounds, a pause of about 160 ms), migrating to h2. */
async function migrating(options: { lockExpiryMs?: number } = {}) {
  const { clock, sim } = await fleet({ h1: {}, h2: {}, h3: {} }, options.lockExpiryMs ? { timings: { lockExpiryMs: options.lockExpiryMs } } : {});
  await running(clock, sim, { "shop/db": ["h1", guest(4096, 60)] });
  const poweredOnAt = sim.observeVm("shop/db")!.poweredOnAt;
  await sim.migrateVm("shop/db", "h2", { key: "m1", settings: settings() });
  await clock.advance(10_000);
  return { clock, sim, poweredOnAt };
}

async function assertRunsOnlyOn(sim: SimulatedHosts, host: string, poweredOnAt?: number): Promise<void> {
  assert.deepEqual(copiesRunning(sim).get("shop/db"), [host]);
  const vm = sim.observeVm("shop/db")!;
  assert.deepEqual([vm.host, vm.power], [host, "Running"]);
  if (poweredOnAt !== undefined) assert.equal(vm.poweredOnAt, poweredOnAt, "it kept running: no reboot");
  assert.deepEqual(sim.diskLocks().map((lock) => lock.host), [host]);
  assert.equal(sim.splitBrainAttempts(), 0);
}

async function toSwitchover(clock: VirtualClock, sim: SimulatedHosts) {
  const m = await runUntil(clock, sim, "shop/db", (m) => m.phase === "Switchover");
  assert.equal(m.phase, "Switchover");
  assert.ok(m.downtimeMs! > 100, `a pause long enough to fail in (${m.downtimeMs} ms)`);
  assert.equal(sim.observeVm("shop/db")!.cpuUsage, 0, "the guest is paused");
  return m;
}

describe("live migration: faults during the copy", () => {
  it("keeps the VM running on its source when the target crashes mid-copy", async () => {
    const { clock, sim, poweredOnAt } = await migrating();
    await sim.crashHost("h2");
    const m = (await migrationOf(sim, "shop/db"))!;
    assert.equal(m.phase, "Failed");
    assert.equal(m.reason, "the connection to target host h2 was lost; the VM stays on host h1");
    assert.equal(m.endedAt, clock.now());
    await clock.advance(600_000);
    await assertRunsOnlyOn(sim, "h1", poweredOnAt);
  });

  it("loses the VM with its source when the source crashes mid-copy; HA restarts it elsewhere once the lock expired", async () => {
    const { clock, sim } = await migrating();
    await sim.crashHost("h1");
    const m = (await migrationOf(sim, "shop/db"))!;
    assert.equal(m.phase, "Failed");
    assert.equal(m.reason, "the connection to source host h1 was lost", "the target tells what it saw, not that h1 crashed");
    assert.equal(copiesRunning(sim).get("shop/db"), undefined, "no copy runs: the target never had one");
    assert.equal(sim.observeVm("shop/db")!.power, "Running", "h1's last report, frozen");
    const [lock] = sim.diskLocks();
    assert.equal(lock!.host, "h1");
    assert.deepEqual((await sim.observe()).hosts.find((h) => h.name === "h2")!.allocated, { cpu: 0, memoryMiB: 0 });

    await clock.advanceTo(lock!.expiresAt);
    const restarted = await sim.startVm("shop/db", "h3", guest(4096, 60));
    assert.deepEqual([restarted.host, restarted.power], ["h3", "Starting"]);
    await clock.advance(sim.timings.bootMs);
    await assertRunsOnlyOn(sim, "h3");
    assert.equal((await migrationOf(sim, "shop/db"))!.phase, "Failed", "the outcome stays until the VM's next migration");
  });

  it("keeps the VM on its source when either host is cut off from the network", async () => {
    for (const cut of ["isolate-target", "partition-source"] as const) {
      const { clock, sim, poweredOnAt } = await migrating();
      if (cut === "isolate-target") await sim.isolateHost("h2");
      else await sim.partitionHosts(["h1"]);
      const m = (await migrationOf(sim, "shop/db"))!;
      assert.equal(m.phase, "Failed", cut);
      assert.equal(m.reason, `host ${cut === "isolate-target" ? "h2" : "h1"} lost its network; the VM stays on host h1`);
      await clock.advance(60_000);
      await assertRunsOnlyOn(sim, "h1", poweredOnAt);
    }
  });
});

describe("live migration: faults during the switch-over", () => {
  it("resumes the guest on its source when the target crashes during the pause", async () => {
    const { clock, sim, poweredOnAt } = await migrating();
    await toSwitchover(clock, sim);
    await sim.crashHost("h2");
    const m = (await migrationOf(sim, "shop/db"))!;
    assert.deepEqual([m.phase, m.reason], ["Failed", "the connection to target host h2 was lost; the VM stays on host h1"]);
    assert.ok(sim.observeVm("shop/db")!.cpuUsage > 0, "the guest runs again");
    await clock.advance(60_000);
    await assertRunsOnlyOn(sim, "h1", poweredOnAt);
  });

  it("loses the VM when its source crashes during the pause, and nothing runs on the target", async () => {
    const { clock, sim } = await migrating();
    await toSwitchover(clock, sim);
    await sim.crashHost("h1");
    assert.equal((await migrationOf(sim, "shop/db"))!.phase, "Failed");
    await clock.advance(60_000);
    assert.equal(copiesRunning(sim).get("shop/db"), undefined);
    assert.deepEqual(sim.groundTruth().vms, [{ id: "shop/db", host: "h1", power: "Off" }]);
    assert.deepEqual(sim.diskLocks().map((lock) => lock.host), ["h1"]);
    assert.equal(sim.splitBrainAttempts(), 0);
  });

  it("passes the disk locks at the instant the pause ends, never held by both hosts", async () => {
    const { clock, sim } = await migrating();
    const pause = await toSwitchover(clock, sim);
    const due = clock.nextTimerAt()!;
    await clock.advanceTo(due - 1);
    assert.deepEqual(sim.diskLocks().map((lock) => lock.host), ["h1"]);
    await clock.advanceTo(due);
    assert.deepEqual(sim.diskLocks().map((lock) => [lock.host, lock.acquiredAt]), [["h2", due]]);
    const m = (await migrationOf(sim, "shop/db"))!;
    assert.equal(m.phase, "Succeeded");
    assert.equal(m.endedAt, due);
    assert.equal(m.downtimeMs, pause.downtimeMs);
  });
});

describe("live migration: cancelled", () => {
  it("stops the copy on request and leaves the VM where it was; a second cancel, or another key, does nothing", async () => {
    const { clock, sim, poweredOnAt } = await migrating();
    await sim.cancelMigration("shop/db", "other-key");
    assert.equal((await migrationOf(sim, "shop/db"))!.phase, "PreCopy");
    await sim.cancelMigration("shop/db", "m1");
    const m = (await migrationOf(sim, "shop/db"))!;
    assert.deepEqual([m.phase, m.reason, m.endedAt], ["Cancelled", "cancelled on request; the VM stays on host h1", clock.now()]);
    const revision = sim.revision();
    await sim.cancelMigration("shop/db", "m1");
    await sim.cancelMigration("shop/nobody", "m1");
    assert.equal(sim.revision(), revision);
    await clock.advance(600_000);
    await assertRunsOnlyOn(sim, "h1", poweredOnAt);
    assert.deepEqual((await sim.observe()).hosts.find((h) => h.name === "h2")!.allocated, { cpu: 0, memoryMiB: 0 });
  });

  it("can still be cancelled during the switch-over pause: the guest resumes on its source", async () => {
    const { clock, sim, poweredOnAt } = await migrating();
    await toSwitchover(clock, sim);
    await sim.cancelMigration("shop/db", "m1");
    assert.equal((await migrationOf(sim, "shop/db"))!.phase, "Cancelled");
    await clock.advance(60_000);
    await assertRunsOnlyOn(sim, "h1", poweredOnAt);
  });

  it("does nothing once the migration succeeded", async () => {
    const { clock, sim } = await migrating();
    const ended = await runToEnd(clock, sim, "shop/db");
    await sim.cancelMigration("shop/db", "m1");
    assert.deepEqual(await migrationOf(sim, "shop/db"), ended);
    await assertRunsOnlyOn(sim, "h2");
  });

  it("ends when the VM is powered off, shut down or reset on its source, and is forgotten with the VM", async () => {
    const stops = {
      "powered off": (sim: SimulatedHosts) => sim.stopVm("shop/db", "PowerOff"),
      "shutting down": (sim: SimulatedHosts) => sim.stopVm("shop/db", "Shutdown"),
      "reset": (sim: SimulatedHosts) => sim.resetVm("shop/db", "r1"),
      "powered off (ManualPowerOff)": (sim: SimulatedHosts) => sim.adminPowerOff("shop/db"),
      "powered off (Crashed)": (sim: SimulatedHosts) => sim.crashVm("shop/db"),
    };
    for (const [what, stop] of Object.entries(stops)) {
      const { clock, sim } = await migrating();
      await stop(sim);
      const m = (await migrationOf(sim, "shop/db"))!;
      assert.deepEqual([m.phase, m.reason], ["Cancelled", `the VM was ${what} on host h1`]);
      await clock.advance(600_000);
      assert.equal(sim.observeVm("shop/db")!.host, "h1", what);
      assert.equal(sim.splitBrainAttempts(), 0);
    }
    const { sim } = await migrating();
    await sim.stopVm("shop/db", "PowerOff");
    await sim.removeVm("shop/db");
    assert.deepEqual((await sim.observe()).migrations, []);
  });

  it("refuses changes by hand to a VM that migrates: a move, its memory, its networks", async () => {
    const { sim } = await migrating();
    await assert.rejects(sim.adminMove("shop/db", "h3"), { code: "Conflict", message: "VM shop/db is migrating to host h2: it cannot be moved by hand until the migration ends" });
    await assert.rejects(sim.adminSetMemory("shop/db", 8192), { code: "Conflict" });
    await assert.rejects(sim.adminSetNetworks("shop/db", []), { code: "Conflict" });
    assert.equal((await migrationOf(sim, "shop/db"))!.phase, "PreCopy");
  });
});
