// Live migrations are saved with the simulated world: one saved mid-copy and loaded again ends exactly as
// it would have without the restart, one overdue replays at once, and a file from before migrations loads.

import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { VirtualClock } from "../../../controller/core/clock.ts";
import { SimulatedHosts } from "../../../controller/provider/sim/index.ts";
import { fleet, guest, migrationOf, running, runToEnd, settings } from "../../support/migration.ts";

let root: string;
let cases = 0;
before(async () => {
  root = await mkdtemp(join(tmpdir(), "vireo-migration-state-"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

function statePath(): string {
  cases += 1;
  return join(root, `world-${cases}.json`);
}

/**
 * Two migrations from h1, `ms` into the copy: p/a (4 GiB dirtying 150 MiB/s) converges only under
 * auto-converge's throttle, which begins 64 s in; p/b (32 GiB at 100 MiB/s) is in round 0 for 328 s.
 */
async function midCopy(path: string | undefined, ms: number) {
  const { clock, sim } = await fleet({ h1: {}, h2: {}, h3: {} }, path === undefined ? {} : { statePath: path });
  await running(clock, sim, { "p/a": ["h1", guest(4096, 150)], "p/b": ["h1", guest(32_768, 40)] });
  await sim.migrateVm("p/a", "h2", { key: "a", settings: settings({ autoConverge: true }) });
  await sim.migrateVm("p/b", "h3", { key: "b", settings: settings({ bandwidthMiBps: 100 }) });
  await clock.advance(ms);
  return { clock, sim };
}

/** How both migrations end, where the VMs run then, and who took their disk locks when. */
async function outcome(clock: VirtualClock, sim: SimulatedHosts) {
  const a = await runToEnd(clock, sim, "p/a");
  const b = await runToEnd(clock, sim, "p/b");
  return { a, b, vms: sim.groundTruth().vms, locks: sim.diskLocks().map((lock) => [lock.vmId, lock.host, lock.acquiredAt]) };
}

describe("live migration: durable", () => {
  it("completes a migration saved mid-copy and loaded again, exactly as if nothing had stopped", async () => {
    const reference = await midCopy(undefined, 100_000);
    const throttled = (await migrationOf(reference.sim, "p/a"))!;
    assert.equal(throttled.phase, "PreCopy");
    assert.equal(throttled.throttlePercent, 20, "saved while auto-converge holds the guest back");
    assert.equal((await migrationOf(reference.sim, "p/b"))!.rounds, 1, "and while the other is in round 0");
    const expected = await outcome(reference.clock, reference.sim);
    assert.deepEqual([expected.a.phase, expected.b.phase], ["Succeeded", "Succeeded"]);

    const path = statePath();
    const { clock, sim } = await midCopy(path, 100_000);
    const saved = await sim.observe();
    const cpuBefore = sim.observeVm("p/a")!.cpuUsage;
    await sim.close();
    await clock.advance(0);
    const restored = await SimulatedHosts.load({ clock, statePath: path });
    assert.deepEqual(await restored.observe(), saved, "the same migrations, figures and reservations");
    assert.equal(restored.observeVm("p/a")!.cpuUsage, cpuBefore, "still throttled");
    assert.deepEqual(await outcome(clock, restored), expected);
    await restored.close();
  });

  it("replays at once a migration whose events fell due while nothing ran, to the same end", async () => {
    const reference = await midCopy(undefined, 5_000);
    const expected = await outcome(reference.clock, reference.sim);

    const path = statePath();
    const { clock, sim } = await midCopy(path, 5_000);
    await sim.close();
    await clock.advance(3_600_000);
    const restored = await SimulatedHosts.load({ clock, statePath: path });
    await clock.advance(0);
    assert.deepEqual(await outcome(clock, restored), expected);
    await restored.close();
  });

  it("loads a state file saved before migrations existed (version 1)", async () => {
    const path = statePath();
    const { clock, sim } = await fleet({ h1: {}, h2: {} }, { statePath: path });
    await running(clock, sim, { "p/a": ["h1", guest(4096)] });
    await sim.close();
    const file = JSON.parse(await readFile(path, "utf8")) as Record<string, unknown>;
    assert.equal(file.version, 4);
    for (const name of ["migrations", "replicas", "links", "recoveries", "secondaries", "switchovers", "conversions", "goLiveRefused", "twoPrimaries"]) delete file[name];
    file.version = 1;
    await writeFile(path, JSON.stringify(file));

    const restored = await SimulatedHosts.load({ clock, statePath: path });
    assert.deepEqual((await restored.observe()).migrations, []);
    await restored.migrateVm("p/a", "h2", { key: "m1", settings: settings() });
    assert.equal((await runToEnd(clock, restored, "p/a")).phase, "Succeeded");
    await restored.close();
  });

  it("refuses a saved migration of a VM that is not where the migration says, naming the record", async () => {
    const path = statePath();
    const { sim } = await midCopy(path, 1_000);
    await sim.close();
    const file = JSON.parse(await readFile(path, "utf8")) as { migrations: { source: string }[] };
    file.migrations[1]!.source = "h2";
    await writeFile(path, JSON.stringify(file));
    await assert.rejects(SimulatedHosts.load({ clock: new VirtualClock(), statePath: path }), /world-\d+\.json: migrations\[1\]: VM p\/b migrates from h2 to h3 but is on h1/);
  });
});
