import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { VirtualClock } from "../../../controller/core/clock.ts";
import { ProviderError } from "../../../controller/provider/provider.ts";
import type { HostConfig, VmConfig } from "../../../controller/core/observation.ts";
import { SimulatedHosts } from "../../../controller/provider/sim/index.ts";

const HOSTS = ["h1", "h2", "h3"];
const HOST_MEMORY = 16_384;
const HOST_VCPUS = 8 * 2;
const VMS = [
  { id: "p/a", memoryMiB: 8192, cpu: 4, disks: 1 },
  { id: "p/b", memoryMiB: 8192, cpu: 4, disks: 2 },
  { id: "p/c", memoryMiB: 4096, cpu: 8, disks: 1 },
  { id: "p/d", memoryMiB: 4096, cpu: 2, disks: 1 },
  { id: "p/e", memoryMiB: 2048, cpu: 2, disks: 0 },
  { id: "p/f", memoryMiB: 12288, cpu: 1, disks: 1 },
];

function hostConfig(): HostConfig {
  return {
    hypervisor: "kvm",
    cpu: { cores: 8, vendor: "intel", features: [], overcommitRatio: 2 },
    memoryMiB: HOST_MEMORY,
    datastores: ["shared"],
    networks: [],
    storagePaths: 1,
    labels: {},
  };
}

function vmConfig(vm: (typeof VMS)[number]): VmConfig {
  const disks = Array.from({ length: vm.disks }, (_, i) => ({ name: `disk${i}`, sizeGiB: 10, datastore: "shared" }));
  return { cpu: vm.cpu, memoryMiB: vm.memoryMiB, cpuFeatures: [], disks, nics: [], workload: { profile: "Bursty", cpuPercent: 40 } };
}

type Op =
  | { type: "start"; vm: number; host: number }
  | { type: "stop"; vm: number; mode: "Shutdown" | "PowerOff" }
  | { type: "remove"; vm: number }
  | { type: "crash" | "recover" | "isolate" | "heal"; host: number }
  | { type: "advance"; ms: number };

const vmIndex = fc.integer({ min: 0, max: VMS.length - 1 });
const hostIndex = fc.integer({ min: 0, max: HOSTS.length - 1 });
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ type: fc.constant("start" as const), vm: vmIndex, host: hostIndex }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant("stop" as const), vm: vmIndex, mode: fc.constantFrom("Shutdown" as const, "PowerOff" as const) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant("remove" as const), vm: vmIndex }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constantFrom("crash" as const, "recover" as const, "isolate" as const, "heal" as const), host: hostIndex }) },
  { weight: 3, arbitrary: fc.record({ type: fc.constant("advance" as const), ms: fc.integer({ min: 0, max: 120_000 }) }) },
);

/** Runs one action; a ProviderError is a refusal (returned), anything else is a bug (thrown). */
async function attempt(action: () => unknown): Promise<ProviderError | undefined> {
  try {
    await action();
    return undefined;
  } catch (error) {
    if (error instanceof ProviderError) return error;
    throw error;
  }
}

describe("simulator invariants under random operations", () => {
  it("never exceeds a host's memory or vCPUs, and never runs two copies of a VM", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 60, size: "max" }), async (ops) => {
        const clock = new VirtualClock();
        const sim = new SimulatedHosts({ clock, seed: 99 });
        for (const name of HOSTS) await sim.registerHost(name, hostConfig());
        let lockRefusals = 0;
        for (const step of ops) {
          const before = sim.groundTruth();
          let refusal: ProviderError | undefined;
          switch (step.type) {
            case "start": {
              const vm = VMS[step.vm]!;
              refusal = await attempt(() => sim.startVm(vm.id, HOSTS[step.host]!, vmConfig(vm)));
              const prior = before.vms.find((v) => v.id === vm.id);
              if (!refusal && prior && prior.power !== "Off") {
                assert.equal(prior.host, HOSTS[step.host], `${vm.id} powered on on ${HOSTS[step.host]} while on on ${prior.host}`);
              }
              break;
            }
            case "stop":
              refusal = await attempt(() => sim.stopVm(VMS[step.vm]!.id, step.mode));
              break;
            case "remove":
              refusal = await attempt(() => sim.removeVm(VMS[step.vm]!.id));
              break;
            case "crash":
              await sim.crashHost(HOSTS[step.host]!);
              break;
            case "recover":
              await sim.recoverHost(HOSTS[step.host]!);
              break;
            case "isolate":
              await sim.isolateHost(HOSTS[step.host]!);
              break;
            case "heal":
              await sim.healIsolation(HOSTS[step.host]!);
              break;
            case "advance":
              await clock.advance(step.ms);
              break;
          }
          if (refusal?.code === "LockHeld") lockRefusals += 1;

          const truth = sim.groundTruth();
          for (const host of truth.hosts) {
            const on = truth.vms.filter((vm) => vm.host === host.name && vm.power !== "Off");
            if (!host.up) assert.deepEqual(on, [], `crashed host ${host.name} still runs VMs`);
            const memory = on.reduce((sum, vm) => sum + VMS.find((v) => v.id === vm.id)!.memoryMiB, 0);
            const vcpus = on.reduce((sum, vm) => sum + VMS.find((v) => v.id === vm.id)!.cpu, 0);
            assert.ok(memory <= HOST_MEMORY, `host ${host.name} holds ${memory} MiB`);
            assert.ok(vcpus <= HOST_VCPUS, `host ${host.name} holds ${vcpus} vCPUs`);
          }
          const observation = await sim.observe();
          assert.equal(observation.splitBrainAttempts, lockRefusals);
          assert.equal(new Set(observation.vms.map((vm) => vm.id)).size, observation.vms.length);
          for (const host of observation.hosts) assert.ok(host.allocated.memoryMiB <= HOST_MEMORY);
        }
        await sim.close();
      }),
      { numRuns: 300 },
    );
  });
});
