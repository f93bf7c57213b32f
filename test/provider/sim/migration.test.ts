// Pre-copy live migration in the simulated hosts, on the virtual clock: how rounds converge or do not,
// auto-converge, shared links, the target's reservation, refusals, and what faults leave behind.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULT_MIGRATION_LINK_MIBPS } from "../../../controller/core/migration.ts";
import type { MigrationObservation } from "../../../controller/core/migration.ts";
import { fleet, guest, migrationOf, refusal, running, runToEnd, settings, underWay } from "../../support/migration.ts";

describe("live migration: convergence", () => {
  it("moves an idle VM in two rounds with a pause of a few ms, keeping it running and its disks locked by one host", async () => {
    const { clock, sim } = await fleet();
    await running(clock, sim, { "shop/db": ["h1", guest(4096)] });
    const poweredOnAt = sim.observeVm("shop/db")!.poweredOnAt;
    const t0 = clock.now();
    await sim.migrateVm("shop/db", "h2", { key: "m1", settings: settings() });

    const first = (await migrationOf(sim, "shop/db"))!;
    assert.deepEqual(
      [first.phase, first.source, first.target, first.rounds, first.remainingMiB, first.bandwidthMiBps, first.dirtyRateMiBps],
      ["PreCopy", "h1", "h2", 1, 4096, 128, 2],
    );
    assert.equal(sim.observeVm("shop/db")!.host, "h1", "the VM stays on its source while it is copied");

    const ended = await runToEnd(clock, sim, "shop/db");
    // Round 0 sends 4096 MiB in 32 s, while the guest dirties 64 MiB; round 1 sends those in 0.5 s and the
    // 1 MiB dirtied meanwhile fits 300 ms at 128 MiB/s: the guest pauses 1/128 s.
    assert.equal(ended.phase, "Succeeded");
    assert.equal(ended.rounds, 2);
    assert.equal(ended.downtimeMs, 7.813);
    assert.equal(ended.transferredMiB, 4096 + 64 + 1);
    assert.equal(ended.remainingMiB, 0);
    assert.equal(ended.startedAt, t0);
    assert.equal(ended.endedAt, t0 + 32_508);
    const vm = sim.observeVm("shop/db")!;
    assert.deepEqual([vm.host, vm.power, vm.poweredOnAt], ["h2", "Running", poweredOnAt], "the same run, never rebooted");
    assert.deepEqual(sim.diskLocks().map((lock) => [lock.host, lock.acquiredAt]), [["h2", t0 + 32_508]]);
    assert.equal(sim.splitBrainAttempts(), 0);
  });

  it("fails a VM that dirties memory faster than the link sends it, and leaves it running on its source", async () => {
    const { clock, sim } = await fleet();
    await running(clock, sim, { "shop/cache": ["h1", guest(4096, 150)] });
    const t0 = clock.now();
    await sim.migrateVm("shop/cache", "h2", { key: "m1", settings: settings() });
    const ended = await runToEnd(clock, sim, "shop/cache");
    assert.equal(ended.phase, "Failed");
    assert.equal(ended.endedAt, t0 + 150_000, "what remains never shrank: KubeVirt's no-progress timeout");
    assert.match(ended.reason ?? "", /^no progress for 150 s: 4096 MiB still to send; the guest dirties 150 MiB\/s, the link gives 128 MiB\/s; auto-converge is off; the VM stays on host h1$/);
    assert.equal(ended.rounds, 5);
    assert.equal(ended.throttlePercent, 0);
    const vm = sim.observeVm("shop/cache")!;
    assert.deepEqual([vm.host, vm.power], ["h1", "Running"]);
    assert.deepEqual(sim.diskLocks().map((lock) => lock.host), ["h1"]);
    const h2 = (await sim.observe()).hosts.find((h) => h.name === "h2")!;
    assert.deepEqual(h2.allocated, { cpu: 0, memoryMiB: 0 }, "the target let go of what it held");
  });

  it("converges the same VM with auto-converge, throttling its vCPUs while it migrates and no longer after", async () => {
    const { clock, sim } = await fleet();
    await running(clock, sim, { "shop/cache": ["h1", guest(4096, 150)] });
    const demand = sim.observeVm("shop/cache")!.cpuUsage;
    const throttles: number[] = [];
    await sim.migrateVm("shop/cache", "h2", { key: "m1", settings: settings({ autoConverge: true }) });
    const ended = await runToEnd(clock, sim, "shop/cache", (m) => {
      if (m.phase !== "PreCopy") return;
      throttles.push(m.throttlePercent);
      assert.equal(m.dirtyRateMiBps, 150 * (1 - m.throttlePercent / 100));
      assert.ok(Math.abs(sim.observeVm("shop/cache")!.cpuUsage - demand * (1 - m.throttlePercent / 100)) < 1e-9, "the throttle slows the guest");
    });
    assert.equal(ended.phase, "Succeeded", ended.reason);
    assert.ok(ended.downtimeMs! <= 300);
    // QEMU's steps: 20 % after the second round that dirtied more than half of what it sent, +10 % after each second one since.
    assert.deepEqual([...new Set(throttles)], [0, 20, 30, 40, 50, 60]);
    assert.equal(ended.throttlePercent, 60);
    const vm = sim.observeVm("shop/cache")!;
    assert.deepEqual([vm.host, vm.cpuUsage], ["h2", demand], "the throttle ends with the migration");
  });

  it("fails at the round limit, saying how much was still dirty", async () => {
    const { clock, sim } = await fleet();
    await running(clock, sim, { "shop/web": ["h1", guest(4096, 100)] });
    await sim.migrateVm("shop/web", "h2", { key: "m1", settings: settings({ maxRounds: 3 }) });
    const ended = await runToEnd(clock, sim, "shop/web");
    assert.equal(ended.phase, "Failed");
    assert.equal(ended.rounds, 3);
    assert.match(ended.reason ?? "", /^did not converge in 3 rounds: .* MiB still dirty, more than the 300 ms downtime limit allows at 128 MiB\/s \(38\.4 MiB\)/);
    assert.equal(sim.observeVm("shop/web")!.host, "h1");
  });

  it("fails once the completion timeout per GiB has passed, even in the middle of a round", async () => {
    const { clock, sim } = await fleet();
    await running(clock, sim, { "shop/big": ["h1", guest(8192, 8)] });
    const t0 = clock.now();
    await sim.migrateVm("shop/big", "h2", { key: "m1", settings: settings({ completionTimeoutPerGiBMs: 5_000 }) });
    const ended = await runToEnd(clock, sim, "shop/big");
    assert.equal(ended.phase, "Failed");
    assert.equal(ended.endedAt, t0 + 40_000, "8 GiB × 5 s, before round 0 (64 s) is over");
    assert.match(ended.reason ?? "", /^not done within the completion timeout of 40 s \(5 s per GiB of 8 GiB\)/);
    assert.equal(ended.transferredMiB, 128 * 40);
  });

  it("shows each round's progress with a new revision, and nothing new between events", async () => {
    const { clock, sim } = await fleet();
    await running(clock, sim, { "shop/web": ["h1", guest(4096, 60)] });
    await sim.migrateVm("shop/web", "h2", { key: "m1", settings: settings() });
    const seen: { revision: number; m: MigrationObservation }[] = [];
    await runToEnd(clock, sim, "shop/web", (m) => {
      seen.push({ revision: sim.revision(), m });
    });
    assert.ok(seen.length >= 4);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i]!.revision > seen[i - 1]!.revision);
    const rounds = seen.map((s) => s.m.rounds);
    assert.deepEqual(rounds, [...rounds].sort((a, b) => a - b), "rounds only go up");
    const before = await sim.observe();
    await clock.advance(0);
    assert.deepEqual((await sim.observe()).migrations, before.migrations);
  });
});

describe("live migration: links and capacity", () => {
  it("shares the source's link evenly between two migrations, so each is slower than alone", async () => {
    const fast = settings({ bandwidthMiBps: 10_000 });
    const alone = await fleet();
    await running(alone.clock, alone.sim, { "p/a": ["h1", guest(8192)] });
    await alone.sim.migrateVm("p/a", "h2", { key: "a", settings: fast });
    const soloStart = alone.clock.now();
    assert.equal((await migrationOf(alone.sim, "p/a"))!.bandwidthMiBps, DEFAULT_MIGRATION_LINK_MIBPS);
    const solo = await runToEnd(alone.clock, alone.sim, "p/a");
    const soloMs = solo.endedAt! - soloStart;

    const { clock, sim } = await fleet();
    await running(clock, sim, { "p/a": ["h1", guest(8192)], "p/b": ["h1", guest(16384)] });
    const t0 = clock.now();
    await sim.migrateVm("p/a", "h2", { key: "a", settings: fast });
    await sim.migrateVm("p/b", "h3", { key: "b", settings: fast });
    const half = DEFAULT_MIGRATION_LINK_MIBPS / 2;
    assert.deepEqual((await sim.observe()).migrations!.map((m) => m.bandwidthMiBps), [half, half]);
    const a = await runToEnd(clock, sim, "p/a");
    assert.equal(a.phase, "Succeeded");
    assert.ok(a.endedAt! - t0 > 1.9 * soloMs, `with the link shared, ${a.endedAt! - t0} ms against ${soloMs} ms alone`);
    const b = await migrationOf(sim, "p/b");
    assert.ok(underWay(b));
    assert.equal(b!.bandwidthMiBps, DEFAULT_MIGRATION_LINK_MIBPS, "the link is b's alone once a is done");
    assert.equal((await runToEnd(clock, sim, "p/b")).phase, "Succeeded");
  });

  it("holds the VM's memory on the target for the whole copy: a VM that would not fit beside it is refused", async () => {
    const { clock, sim } = await fleet({ h1: {}, h2: { memoryMiB: 16_384 } });
    await running(clock, sim, { "p/big": ["h1", guest(12_288)] });
    await sim.migrateVm("p/big", "h2", { key: "m1", settings: settings() });
    const h2 = (await sim.observe()).hosts.find((h) => h.name === "h2")!;
    assert.deepEqual(h2.allocated, { cpu: 2, memoryMiB: 12_288 });
    assert.equal(h2.vmCount, 0, "the VM is still registered on its source");
    assert.equal(await refusal(sim.startVm("p/third", "h2", guest(8192))), "InsufficientResources");
    await sim.startVm("p/small", "h2", guest(2048));
    await sim.stopVm("p/small", "PowerOff");
    assert.equal(await refusal(sim.registerHost("h2", { ...(await sim.observe()).hosts.find((h) => h.name === "h2")!.config, memoryMiB: 8192 })), "Conflict");
    assert.equal(await refusal(sim.unregisterHost("h2")), "Conflict");
    assert.equal((await runToEnd(clock, sim, "p/big")).phase, "Succeeded");
    assert.deepEqual((await sim.observe()).hosts.find((h) => h.name === "h2")!.allocated, { cpu: 2, memoryMiB: 12_288 });
  });

  it("refuses up front a migration the target has no room for", async () => {
    const { clock, sim } = await fleet({ h1: {}, h2: { memoryMiB: 16_384 } });
    await running(clock, sim, { "p/big": ["h1", guest(12_288)], "p/there": ["h2", guest(8192)] });
    assert.equal(await refusal(sim.migrateVm("p/big", "h2", { key: "m1", settings: settings() })), "InsufficientResources");
    assert.equal(await migrationOf(sim, "p/big"), undefined, "nothing was begun");
  });
});

describe("live migration: refusals", () => {
  it("refuses a target of another CPU vendor before anything is copied", async () => {
    const { clock, sim } = await fleet({ amd: { cpu: { cores: 16, vendor: "amd", features: ["avx2"], overcommitRatio: 4 } }, intel: {} });
    await running(clock, sim, { "p/a": ["amd", guest(4096)] });
    await assert.rejects(sim.migrateVm("p/a", "intel", { key: "m1", settings: settings() }), {
      code: "Incompatible",
      message: "VM p/a cannot migrate live to host intel: its CPU vendor is intel, the guest runs on amd (host amd); a guest cannot change CPU vendor while it runs",
    });
    assert.equal(await migrationOf(sim, "p/a"), undefined);
  });

  it("refuses a target that lacks a CPU feature the guest sees, naming it", async () => {
    const { clock, sim } = await fleet({ new: { cpu: { cores: 16, vendor: "intel", features: ["avx2", "avx512f", "avx512bw"], overcommitRatio: 4 } }, old: {} });
    await running(clock, sim, { "p/a": ["new", guest(4096, undefined, { cpuFeatures: ["avx2", "avx512f", "avx512bw"] })] });
    await assert.rejects(sim.migrateVm("p/a", "old", { key: "m1", settings: settings() }), {
      code: "Incompatible",
      message: "VM p/a cannot migrate live to host old: it lacks CPU features avx512f, avx512bw that the guest sees",
    });
  });

  it("refuses what cannot be migrated: an unknown VM or host, a VM not running, the host it is on, a host down, bad settings", async () => {
    const { clock, sim } = await fleet({ h1: {}, h2: {}, h3: {}, local: { datastores: ["local"] } });
    await running(clock, sim, { "p/a": ["h1", guest(4096)] });
    const go = (vm: string, target: string, overrides = {}) => sim.migrateVm(vm, target, { key: `k-${vm}-${target}`, settings: settings(overrides) });
    assert.equal(await refusal(go("p/nobody", "h2")), "NotFound");
    assert.equal(await refusal(go("p/a", "h9")), "NotFound");
    assert.equal(await refusal(go("p/a", "h1")), "Conflict");
    assert.equal(await refusal(go("p/a", "local")), "Incompatible", "the target does not see the VM's datastore");
    assert.equal(await refusal(go("p/a", "h2", { bandwidthMiBps: 0 })), "Invalid");
    assert.equal(await refusal(go("p/a", "h2", { maxRounds: 2.5 })), "Invalid");
    assert.equal(await refusal(sim.migrateVm("p/a", "h2", { key: "", settings: settings() })), "Invalid");
    await sim.crashHost("h3");
    assert.equal(await refusal(go("p/a", "h3")), "Unavailable");
    await sim.isolateHost("h2");
    assert.equal(await refusal(go("p/a", "h2")), "Unavailable");
    await sim.healIsolation("h2");
    await sim.startVm("p/booting", "h1", guest(1024));
    assert.equal(await refusal(go("p/booting", "h2")), "Conflict", "a VM still booting does not migrate live");
    await sim.migrateVm("p/a", "h2", { key: "first", settings: settings() });
    assert.equal(await refusal(sim.migrateVm("p/a", "h2", { key: "second", settings: settings() })), "Conflict");
    await sim.isolateHost("h1");
    assert.equal(await refusal(sim.migrateVm("p/booting", "h2", { key: "third", settings: settings() })), "Unavailable", "the source does not answer");
    assert.equal(sim.splitBrainAttempts(), 0);
  });

  it("does nothing for the same key again, under way or after it ended", async () => {
    const { clock, sim } = await fleet();
    await running(clock, sim, { "p/a": ["h1", guest(4096)] });
    await sim.migrateVm("p/a", "h2", { key: "m1", settings: settings() });
    const started = await migrationOf(sim, "p/a");
    const revision = sim.revision();
    await clock.advance(10_000);
    await sim.migrateVm("p/a", "h2", { key: "m1", settings: settings() });
    assert.equal(sim.revision(), revision, "nothing changed");
    assert.equal((await migrationOf(sim, "p/a"))!.startedAt, started!.startedAt);
    const ended = await runToEnd(clock, sim, "p/a");
    await sim.migrateVm("p/a", "h2", { key: "m1", settings: settings() });
    await sim.migrateVm("p/a", "h3", { key: "m1", settings: settings() });
    assert.deepEqual(await migrationOf(sim, "p/a"), ended);
    assert.equal(sim.observeVm("p/a")!.host, "h2");
    await sim.migrateVm("p/a", "h1", { key: "m2", settings: settings() });
    const back = await runToEnd(clock, sim, "p/a");
    assert.deepEqual([back.key, back.source, back.target, back.phase], ["m2", "h2", "h1", "Succeeded"], "a new key is a new migration, and replaces the last");
  });
});
