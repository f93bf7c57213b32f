import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { VirtualClock } from "../../../controller/core/clock.ts";
import type { HostConfig } from "../../../controller/core/observation.ts";
import { SimulatedHosts } from "../../../controller/provider/sim/index.ts";

function hostConfig(): HostConfig {
  return {
    hypervisor: "hyperv",
    cpu: { cores: 8, vendor: "intel", features: [], overcommitRatio: 2 },
    memoryMiB: 32768,
    datastores: ["shared"],
    networks: ["prod"],
    storagePaths: 2,
    labels: {},
  };
}

async function oneHost() {
  const clock = new VirtualClock();
  const t0 = clock.now();
  const sim = new SimulatedHosts({ clock, seed: 5 });
  await sim.registerHost("h1", hostConfig());
  const heartbeats = async () => {
    const host = (await sim.observe()).hosts[0]!;
    return { network: host.lastNetworkHeartbeat, datastore: host.lastDatastoreHeartbeat };
  };
  return { clock, sim, t0, heartbeats };
}

describe("host heartbeats", () => {
  it("sends a network and a datastore heartbeat every second while the host is up", async () => {
    const { clock, t0, heartbeats } = await oneHost();
    assert.deepEqual(await heartbeats(), { network: t0, datastore: t0 });
    await clock.advance(3_700);
    assert.deepEqual(await heartbeats(), { network: t0 + 3_000, datastore: t0 + 3_000 });
  });

  it("stops both heartbeats when the host crashes, and resumes them from the reboot", async () => {
    const { clock, sim, t0, heartbeats } = await oneHost();
    await clock.advance(4_200);
    await sim.crashHost("h1");
    await clock.advance(60_000);
    assert.deepEqual(await heartbeats(), { network: t0 + 4_000, datastore: t0 + 4_000 });
    await sim.recoverHost("h1");
    const bootedAt = clock.now();
    await clock.advance(2_500);
    assert.deepEqual(await heartbeats(), { network: bootedAt + 2_000, datastore: bootedAt + 2_000 });
  });

  it("stops only the network heartbeat of an isolated host, and resumes it when healed", async () => {
    const { clock, sim, t0, heartbeats } = await oneHost();
    await clock.advance(5_500);
    await sim.isolateHost("h1");
    await clock.advance(30_000);
    assert.deepEqual(await heartbeats(), { network: t0 + 5_000, datastore: t0 + 35_000 });
    await sim.healIsolation("h1");
    const healedAt = clock.now();
    await clock.advance(1_000);
    assert.deepEqual(await heartbeats(), { network: healedAt + 1_000, datastore: t0 + 36_000 });
  });

  it("keeps a thousand idle hosts free of timers", async () => {
    const clock = new VirtualClock();
    const sim = new SimulatedHosts({ clock, seed: 1 });
    for (let i = 0; i < 1_000; i++) await sim.registerHost(`h${i}`, hostConfig());
    assert.equal(clock.pendingTimers(), 0);
    await clock.advance(6 * 3_600_000);
    const observation = await sim.observe();
    assert.ok(observation.hosts.every((host) => host.lastNetworkHeartbeat === clock.now()));
  });
});
