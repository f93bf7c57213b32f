import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { VirtualClock } from "../../../controller/core/clock.ts";
import type { HostConfig, VmConfig } from "../../../controller/core/observation.ts";
import { SimulatedHosts, StateFileError } from "../../../controller/provider/sim/index.ts";

function hostConfig(): HostConfig {
  return {
    hypervisor: "esx",
    cpu: { cores: 16, vendor: "intel", model: "icelake", features: ["avx2"], overcommitRatio: 4 },
    memoryMiB: 65536,
    datastores: ["shared"],
    networks: ["prod"],
    storagePaths: 2,
    labels: { "topology.vireo.dev/rack": "r1" },
  };
}

function vmConfig(profile: VmConfig["workload"]["profile"] = "Diurnal"): VmConfig {
  return {
    cpu: 2,
    memoryMiB: 4096,
    cpuFeatures: ["avx2"],
    disks: [{ name: "root", sizeGiB: 40, datastore: "shared" }],
    nics: [{ network: "prod", macAddress: "52:54:00:12:34:56" }],
    workload: { profile, cpuPercent: 35 },
  };
}

let root: string;
let dirs = 0;
before(async () => {
  root = await mkdtemp(join(tmpdir(), "vireo-sim-state-"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function freshDir(): Promise<string> {
  dirs += 1;
  const dir = join(root, `case-${dirs}`);
  await mkdir(dir);
  return dir;
}

/** A world with VMs in every state: running, booting, shutting down, off, on a crashed host, on an isolated one. */
async function busyWorld(statePath: string) {
  const clock = new VirtualClock();
  const sim = new SimulatedHosts({ clock, seed: 2024, statePath, timings: { bootMs: 30_000 } });
  for (const name of ["h1", "h2", "h3", "h4"]) await sim.registerHost(name, hostConfig());
  await sim.startVm("shop/db-1", "h1", vmConfig("Steady"));
  await sim.startVm("shop/web-1", "h1", vmConfig("Bursty"));
  await sim.startVm("shop/gone", "h3", vmConfig());
  await sim.startVm("shop/isolated", "h4", vmConfig());
  await clock.advance(30_000);
  await sim.startVm("shop/web-2", "h2", vmConfig());
  await sim.stopVm("shop/web-1", "Shutdown");
  await sim.startVm("shop/off", "h2", vmConfig());
  await sim.stopVm("shop/off", "PowerOff");
  await sim.crashHost("h3");
  await sim.isolateHost("h4");
  await assert.rejects(sim.startVm("shop/isolated", "h2", vmConfig()), { code: "LockHeld" });
  await clock.advance(4_000);
  return { clock, sim };
}

describe("durable state", () => {
  it("restores the same world: VMs still Running on the same hosts, powered on at the same time", async () => {
    const path = join(await freshDir(), "world.json");
    const { clock, sim } = await busyWorld(path);
    const before = await sim.observe();
    const locksBefore = sim.diskLocks();
    await sim.close();

    const restored = await SimulatedHosts.load({ clock, seed: 1, statePath: path });
    assert.deepEqual(await restored.observe(), before);
    assert.deepEqual(restored.diskLocks(), locksBefore);
    assert.equal(restored.seed, 2024, "the world keeps the seed it was made with");
    assert.equal(restored.timings.bootMs, 30_000);
    const db = restored.observeVm("shop/db-1")!;
    assert.equal(db.power, "Running");
    assert.equal(db.host, "h1");
    assert.equal(db.poweredOnAt, before.vms.find((vm) => vm.id === "shop/db-1")?.poweredOnAt);
    assert.equal(before.splitBrainAttempts, 1);
    await restored.close();
  });

  it("finishes the transitions under way at their original times after a restart", async () => {
    const path = join(await freshDir(), "world.json");
    const { clock, sim } = await busyWorld(path);
    const bootDue = clock.now() - 4_000 + 30_000;
    const shutdownDue = clock.now() - 4_000 + sim.timings.guestShutdownMs;
    await sim.close();

    const restored = await SimulatedHosts.load({ clock, seed: 1, statePath: path });
    await clock.advanceTo(shutdownDue - 1);
    assert.equal(restored.observeVm("shop/web-1")?.power, "Stopping");
    await clock.advanceTo(shutdownDue);
    assert.equal(restored.observeVm("shop/web-1")?.power, "Off");
    await clock.advanceTo(bootDue - 1);
    assert.equal(restored.observeVm("shop/web-2")?.power, "Starting");
    await clock.advanceTo(bootDue);
    const booted = restored.observeVm("shop/web-2");
    assert.deepEqual([booted?.power, booted?.since], ["Running", bootDue]);
    await restored.close();
  });

  it("completes at once a transition whose time passed while nothing ran", async () => {
    const path = join(await freshDir(), "world.json");
    const { clock, sim } = await busyWorld(path);
    await sim.close();
    await clock.advance(3_600_000);
    const restored = await SimulatedHosts.load({ clock, seed: 1, statePath: path });
    assert.equal(restored.observeVm("shop/web-2")?.power, "Starting");
    await clock.advance(0);
    const vm = restored.observeVm("shop/web-2")!;
    assert.equal(vm.power, "Running");
    assert.equal(vm.since, clock.now());
    await restored.close();
  });

  it("leaves only the state file behind: every save goes through a temp file that is renamed", async () => {
    const dir = await freshDir();
    const { sim } = await busyWorld(join(dir, "world.json"));
    for (let i = 0; i < 20; i++) {
      await sim.startVm(`load/vm-${i}`, "h2", vmConfig());
      await sim.stopVm(`load/vm-${i}`, "PowerOff");
    }
    await sim.flush();
    assert.deepEqual(await readdir(dir), ["world.json"]);
    await sim.close();
  });

  it("saves a change made while a save is in flight with one more save", async () => {
    const path = join(await freshDir(), "world.json");
    const clock = new VirtualClock();
    const sim = new SimulatedHosts({ clock, seed: 1, statePath: path });
    await sim.registerHost("h1", hostConfig());
    await new Promise<void>((resolve) => setImmediate(resolve));
    await sim.registerHost("h2", hostConfig());
    await sim.flush();
    const saved = JSON.parse(await readFile(path, "utf8")) as { hosts: { name: string }[] };
    assert.deepEqual(saved.hosts.map((host) => host.name), ["h1", "h2"]);
    await sim.close();
  });

  it("refuses a corrupt state file with an error naming it, and leaves the file as it was", async () => {
    const path = join(await freshDir(), "world.json");
    await writeFile(path, '{"format":"vireo-simulated-hosts","version":1,"hosts":[');
    await assert.rejects(SimulatedHosts.load({ clock: new VirtualClock(), seed: 1, statePath: path }), (error: unknown) => {
      assert.ok(error instanceof StateFileError);
      assert.equal(error.path, path);
      assert.match(error.message, /world\.json/);
      return true;
    });
    assert.equal(await readFile(path, "utf8"), '{"format":"vireo-simulated-hosts","version":1,"hosts":[');
  });

  it("refuses a state file whose records do not hold together, naming the record", async () => {
    const path = join(await freshDir(), "world.json");
    const { sim } = await busyWorld(path);
    await sim.close();
    const saved = JSON.parse(await readFile(path, "utf8")) as { vms: { host: string }[] };
    saved.vms[1]!.host = "h9";
    await writeFile(path, JSON.stringify(saved));
    await assert.rejects(SimulatedHosts.load({ clock: new VirtualClock(), seed: 1, statePath: path }), /world\.json: vms\[1\]: .* unknown host h9/);
  });

  it("refuses to start a new world over an existing state file", async () => {
    const path = join(await freshDir(), "world.json");
    await writeFile(path, "{}");
    assert.throws(() => new SimulatedHosts({ clock: new VirtualClock(), seed: 1, statePath: path }), StateFileError);
  });

  it("starts an empty world with the given seed when there is no state file yet", async () => {
    const path = join(await freshDir(), "world.json");
    const sim = await SimulatedHosts.load({ clock: new VirtualClock(), seed: 77, statePath: path });
    assert.equal(sim.seed, 77);
    assert.deepEqual((await sim.observe()).hosts, []);
    await sim.registerHost("h1", hostConfig());
    await sim.close();
    assert.equal((await SimulatedHosts.load({ clock: new VirtualClock(), seed: 1, statePath: path })).seed, 77);
  });

  it("reports a failed save through flush and onSaveError, and saves once the directory is there", async () => {
    const dir = join(await freshDir(), "not-yet");
    const path = join(dir, "world.json");
    const failures: Error[] = [];
    const sim = new SimulatedHosts({ clock: new VirtualClock(), seed: 1, statePath: path, onSaveError: (error) => failures.push(error) });
    await sim.registerHost("h1", hostConfig());
    await assert.rejects(sim.flush(), /could not save the simulated world to .*world\.json/);
    await assert.rejects(sim.flush(), /could not save/, "the state is still not on disk");
    assert.ok(failures.length >= 2);
    await mkdir(dir);
    await sim.flush();
    const saved = JSON.parse(await readFile(path, "utf8")) as { hosts: { name: string }[] };
    assert.deepEqual(saved.hosts.map((host) => host.name), ["h1"]);
    await sim.close();
  });

  it("refuses actions once closed", async () => {
    const sim = new SimulatedHosts({ clock: new VirtualClock(), seed: 1 });
    await sim.close();
    await assert.rejects(sim.registerHost("h1", hostConfig()), { code: "Unavailable" });
  });
});
