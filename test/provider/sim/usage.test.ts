import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { VirtualClock } from "../../../controller/core/clock.ts";
import type { VmConfig, WorkloadProfile } from "../../../controller/core/observation.ts";
import { cpuDemand, SimulatedHosts } from "../../../controller/provider/sim/index.ts";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = Date.parse("2026-03-02T00:00:00Z");

function workload(profile: WorkloadProfile, cpuPercent: number, cpu = 4): Pick<VmConfig, "cpu" | "workload"> {
  return { cpu, workload: { profile, cpuPercent } };
}

function samples(seed: number, vmId: string, config: Pick<VmConfig, "cpu" | "workload">, every: number, span: number): number[] {
  const values: number[] = [];
  for (let t = T0; t < T0 + span; t += every) values.push(cpuDemand(seed, vmId, config, t));
  return values;
}

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

describe("CPU usage profiles", () => {
  it("gives the same usage for the same seed, VM and time", () => {
    for (const profile of ["Idle", "Steady", "Diurnal", "Bursty"] as const) {
      assert.deepEqual(samples(42, "ns/a", workload(profile, 40), 60_000, DAY), samples(42, "ns/a", workload(profile, 40), 60_000, DAY));
    }
  });

  it("gives different bursty and diurnal usage for different seeds and different VMs", () => {
    for (const profile of ["Diurnal", "Bursty"] as const) {
      const base = samples(42, "ns/a", workload(profile, 40), 60_000, DAY);
      assert.notDeepEqual(samples(43, "ns/a", workload(profile, 40), 60_000, DAY), base);
      assert.notDeepEqual(samples(42, "ns/b", workload(profile, 40), 60_000, DAY), base);
    }
  });

  it("averages the requested share of the vCPUs over a long run", () => {
    assert.deepEqual(new Set(samples(1, "ns/a", workload("Steady", 30), HOUR, DAY)), new Set([1.2]));
    const diurnal = mean(samples(1, "ns/a", workload("Diurnal", 30), 60_000, DAY));
    assert.ok(Math.abs(diurnal - 1.2) < 0.01, `diurnal mean ${diurnal}`);
    const bursty = mean(samples(1, "ns/a", workload("Bursty", 30), 5 * 60_000, 30 * DAY));
    assert.ok(Math.abs(bursty - 1.2) < 0.1, `bursty mean ${bursty}`);
  });

  it("swings a diurnal load over the day and bursts a bursty one between two levels", () => {
    const diurnal = samples(9, "ns/a", workload("Diurnal", 50), HOUR, DAY);
    assert.ok(Math.max(...diurnal) > 3 && Math.min(...diurnal) < 1, `diurnal range ${Math.min(...diurnal)}..${Math.max(...diurnal)}`);
    // 20 % of 4 vCPUs: bursts at 3 × 0.8 = 2.4 cores; the rest of the time (0.8 − 0.2 × 2.4) / 0.8 = 0.4.
    const bursty = new Set(samples(9, "ns/a", workload("Bursty", 20), 60_000, DAY).map((v) => Math.round(v * 1e9) / 1e9));
    assert.deepEqual([...bursty].sort(), [0.4, 2.4]);
  });

  it("never asks for more than the VM's vCPUs, and an idle guest asks for little", () => {
    for (const profile of ["Diurnal", "Bursty", "Steady"] as const) {
      assert.ok(samples(5, "ns/a", workload(profile, 100, 2), 60_000, DAY).every((v) => v >= 0 && v <= 2));
    }
    assert.deepEqual(new Set(samples(5, "ns/a", workload("Idle", 90), HOUR, DAY)), new Set([0.04]));
  });

  it("reports each running guest's usage and sums it into its host's", async () => {
    const observe = async (seed: number) => {
      const clock = new VirtualClock(T0);
      const sim = new SimulatedHosts({ clock, seed });
      await sim.registerHost("h1", {
        hypervisor: "kvm",
        cpu: { cores: 64, vendor: "intel", features: [], overcommitRatio: 1 },
        memoryMiB: 65536,
        datastores: [],
        networks: [],
        storagePaths: 1,
        labels: {},
      });
      for (const id of ["ns/a", "ns/b", "ns/c"]) {
        await sim.startVm(id, "h1", { cpu: 8, memoryMiB: 1024, cpuFeatures: [], disks: [], nics: [], workload: { profile: "Diurnal", cpuPercent: 30 } });
      }
      await clock.advance(13 * HOUR);
      return sim.observe();
    };
    const first = await observe(100);
    const sum = first.vms.reduce((total, vm) => total + vm.cpuUsage, 0);
    assert.ok(Math.abs(first.hosts[0]!.used.cpu - sum) < 1e-9);
    assert.deepEqual(await observe(100), first);
    assert.notDeepEqual((await observe(101)).vms.map((vm) => vm.cpuUsage), first.vms.map((vm) => vm.cpuUsage));
  });
});
