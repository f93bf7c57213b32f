// Secondaries, switch-overs and conversions are saved with the simulated world: a copy or a conversion saved
// mid-way and loaded again ends exactly as it would have without the restart, a go-live that fell due while
// nothing ran happens on load at its own time, and a file from before them loads.

import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { VirtualClock } from "../../../controller/core/clock.ts";
import { FT_GO_LIVE_MS } from "../../../controller/core/fault-tolerance.ts";
import { SimulatedHosts } from "../../../controller/provider/sim/index.ts";
import { fleet, guest, running } from "../../support/migration.ts";
import { asKvm, conversion, conversionOf, esxVm, ft, secondaryOf } from "./fault-tolerance-support.ts";

let root: string;
let cases = 0;
before(async () => {
  root = await mkdtemp(join(tmpdir(), "vireo-ft-state-"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

function statePath(): string {
  cases += 1;
  return join(root, `world-${cases}.json`);
}

/** Two secondaries being made at once over h2's logging link, `ms` into their copies. */
async function midCopy(path: string | undefined, ms: number) {
  const { clock, sim } = await fleet({ h1: {}, h2: {}, h3: {} }, path === undefined ? {} : { statePath: path });
  await running(clock, sim, { "p/a": ["h1", guest(4096, 40)], "p/b": ["h3", guest(8192, 10)] });
  await sim.protectVm("p/a", "h2", { key: "a", settings: ft({ loggingBandwidthMiBps: 200 }) });
  await sim.protectVm("p/b", "h2", { key: "b", settings: ft({ loggingBandwidthMiBps: 200 }) });
  await clock.advance(ms);
  return { clock, sim };
}

/** Fires timers until both secondaries are in lockstep; how they got there. */
async function lockstep(clock: VirtualClock, sim: SimulatedHosts) {
  for (let events = 0; events < 1_000; events++) {
    const states = await Promise.all(["p/a", "p/b"].map((vm) => secondaryOf(sim, vm)));
    if (states.every((s) => s?.state !== "Copying")) return { secondaries: states, vms: sim.groundTruth().vms };
    await clock.advanceTo(clock.nextTimerAt()!);
  }
  assert.fail("the copies did not end");
}

describe("fault tolerance and conversions: durable", () => {
  it("completes copies saved mid-way and loaded again, exactly as if nothing had stopped", async () => {
    const reference = await midCopy(undefined, 30_000);
    const expected = await lockstep(reference.clock, reference.sim);
    assert.deepEqual(expected.secondaries.map((s) => s?.state), ["Lockstep", "Lockstep"]);

    const path = statePath();
    const { clock, sim } = await midCopy(path, 30_000);
    const saved = await sim.observe();
    assert.deepEqual(saved.secondaries?.map((s) => s.state), ["Copying", "Copying"]);
    await sim.close();
    await clock.advance(0);
    const restored = await SimulatedHosts.load({ clock, statePath: path });
    assert.deepEqual(await restored.observe(), saved, "the same copies, figures and reservations");
    assert.deepEqual(await lockstep(clock, restored), expected);
    await restored.close();
  });

  it("goes live at its own time when the primary's host failed just before the restart, also when that time passed while nothing ran", async () => {
    for (const downMs of [0, 60_000]) {
      const path = statePath();
      const { clock, sim } = await fleet({ h1: {}, h2: {} }, { statePath: path });
      await running(clock, sim, { "p/a": ["h1", guest(4096)] });
      const poweredOnAt = sim.observeVm("p/a")!.poweredOnAt;
      await sim.protectVm("p/a", "h2", { key: "a", settings: ft() });
      await clock.advance(40_000);
      await sim.crashHost("h1");
      const crashedAt = clock.now();
      await clock.advance(FT_GO_LIVE_MS / 2);
      await sim.close();
      await clock.advance(downMs);
      const restored = await SimulatedHosts.load({ clock, statePath: path });
      await clock.advance(FT_GO_LIVE_MS);
      const vm = restored.observeVm("p/a")!;
      assert.deepEqual([vm.host, vm.power, vm.poweredOnAt], ["h2", "Running", poweredOnAt]);
      assert.deepEqual((await restored.observe()).switchovers, [{ vm: "p/a", from: "h1", to: "h2", primaryLostAt: crashedAt, at: crashedAt + FT_GO_LIVE_MS }]);
      await restored.close();
      const again = await SimulatedHosts.load({ clock, statePath: path });
      assert.deepEqual(again.groundTruth().switchovers.map((s) => s.to), ["h2"], "the switch-over is saved too");
      await again.close();
    }
  });

  it("ends a conversion saved mid-way at its original time, and one overdue at once", async () => {
    for (const downMs of [0, 600_000]) {
      const path = statePath();
      const { clock, sim } = await fleet({ e1: {}, k1: { hypervisor: "kvm" } }, { statePath: path });
      await running(clock, sim, { "p/db": ["e1", esxVm()] });
      await sim.stopVm("p/db", "PowerOff");
      await sim.convertVm("p/db", "k1", asKvm(esxVm()), conversion());
      const endsAt = (await conversionOf(sim, "p/db"))!.endsAt;
      await clock.advance(100_000);
      const saved = await sim.observe();
      await sim.close();
      await clock.advance(downMs);
      const restored = await SimulatedHosts.load({ clock, statePath: path });
      if (downMs === 0) assert.deepEqual(await restored.observe(), saved);
      await clock.advanceTo(Math.max(endsAt, clock.now()));
      const done = await conversionOf(restored, "p/db");
      assert.deepEqual([done?.phase, done?.endsAt], ["Succeeded", endsAt]);
      assert.deepEqual(restored.observeVm("p/db")?.config, asKvm(esxVm()));
      assert.equal(restored.observeVm("p/db")?.host, "k1");
      await restored.close();
    }
  });

  it("loads a state file saved before fault tolerance existed (version 3) as a world without secondaries", async () => {
    const path = statePath();
    const { clock, sim } = await fleet({ h1: {}, h2: {} }, { statePath: path });
    await running(clock, sim, { "p/a": ["h1", guest(4096)] });
    await sim.close();
    const file = JSON.parse(await readFile(path, "utf8")) as Record<string, unknown>;
    for (const name of ["secondaries", "switchovers", "conversions", "goLiveRefused", "twoPrimaries"]) delete file[name];
    file.version = 3;
    await writeFile(path, JSON.stringify(file));

    const restored = await SimulatedHosts.load({ clock, statePath: path });
    const observation = await restored.observe();
    assert.deepEqual([observation.secondaries, observation.switchovers, observation.conversions], [[], [], []]);
    await restored.protectVm("p/a", "h2", { key: "a", settings: ft() });
    await clock.advance(40_000);
    assert.equal((await secondaryOf(restored, "p/a"))?.state, "Lockstep");
    await restored.close();
  });

  it("refuses a saved secondary being copied without its copy, naming the record", async () => {
    const path = statePath();
    const { clock, sim } = await fleet({ h1: {}, h2: {} }, { statePath: path });
    await running(clock, sim, { "p/a": ["h1", guest(4096)] });
    await sim.protectVm("p/a", "h2", { key: "a", settings: ft() });
    await sim.close();
    const file = JSON.parse(await readFile(path, "utf8")) as { secondaries: Record<string, unknown>[] };
    delete file.secondaries[0]!.copy;
    await writeFile(path, JSON.stringify(file));
    await assert.rejects(SimulatedHosts.load({ clock, statePath: path }), { name: "StateFileError", message: /secondaries\[0\]: a secondary has a copy while, and only while, it is Copying/ });
  });
});
