// What the guests do, changed during a run: a scenario's workload step (a diurnal peak, a burst) changes
// how much CPU the chosen guests use from then on. The simulator fixes a guest's workload when it boots, so
// the run's provider is the simulator seen through this overlay, which reports those guests' CPU use under
// their new profile (same seeded demand function, same migration throttle) and their hosts' use with it.
// Memory dirtying and disk writes keep the profile the guest booted with.

import type { Observation, VmConfig, VmObservation } from "../core/observation.ts";
import { cpuDemand } from "../provider/sim/index.ts";
import type { SimulatedHosts } from "../provider/sim/index.ts";

export type Workload = VmConfig["workload"];

export class GuestLoad {
  private readonly sim: SimulatedHosts;
  private readonly workloads = new Map<string, Workload>();

  constructor(sim: SimulatedHosts) {
    this.sim = sim;
  }

  /** From now on the guest of `id` works as `workload`, wherever it runs. */
  set(id: string, workload: Readonly<Workload>): void {
    this.workloads.set(id, { ...workload });
  }

  /** What the guest of `id` does now, if a step changed it. */
  get(id: string): Workload | undefined {
    return this.workloads.get(id);
  }

  /** The simulator, its observations seen through the changed workloads; everything else passes through. */
  provider(): SimulatedHosts {
    const sim = this.sim;
    return new Proxy(sim, {
      get: (target, property) => {
        if (property === "observe") return async () => this.observation(await target.observe());
        if (property === "observeVm") return (id: string) => this.observedVm(target.observeVm(id));
        const value = Reflect.get(target, property, target) as unknown;
        return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
  }

  /** An observation with the changed guests' CPU use, and their live hosts' totals, as the hosts would report them. */
  observation(observation: Observation): Observation {
    if (this.workloads.size === 0) return observation;
    const up = new Set(this.sim.groundTruth().hosts.filter((h) => h.up).map((h) => h.name));
    const touched = new Set<string>();
    const vms = observation.vms.map((vm) => {
      if (!this.workloads.has(vm.id) || !up.has(vm.host)) return vm;
      touched.add(vm.host);
      return this.vm(vm, observation.at);
    });
    if (touched.size === 0) return observation;
    const demand = new Map<string, number>();
    for (const vm of vms) {
      if (touched.has(vm.host) && (vm.power === "Starting" || vm.power === "Running" || vm.power === "Stopping")) demand.set(vm.host, (demand.get(vm.host) ?? 0) + vm.cpuUsage);
    }
    const hosts = observation.hosts.map((h) => (touched.has(h.name) ? { ...h, used: { ...h.used, cpu: Math.min(h.config.cpu.cores, demand.get(h.name) ?? 0) } } : h));
    return { ...observation, hosts, vms };
  }

  private observedVm(vm: VmObservation | undefined): VmObservation | undefined {
    if (!vm || !this.workloads.has(vm.id)) return vm;
    const live = this.sim.groundTruth().hosts.some((h) => h.name === vm.host && h.up);
    return live ? this.vm(vm, this.sim.clock.now()) : vm;
  }

  private vm(vm: VmObservation, at: number): VmObservation {
    const workload = this.workloads.get(vm.id);
    if (!workload) return vm;
    const booted = cpuDemand(this.sim.seed, vm.id, vm.config, at);
    const changed = cpuDemand(this.sim.seed, vm.id, { cpu: vm.config.cpu, workload }, at);
    // The report's share of what the guest asked for: 0 when off, hung or frozen, less under a migration throttle.
    const share = booted > 0 ? vm.cpuUsage / booted : 0;
    return { ...vm, config: { ...vm.config, workload: { ...vm.config.workload, profile: workload.profile, cpuPercent: workload.cpuPercent } }, cpuUsage: changed * share };
  }
}
