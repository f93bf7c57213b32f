// Owners, labs and leases as metrics, counted from the store at scrape time (so they can never drift from
// it): VMs, vCPUs and memory by owner — an owner label is bounded by the owners people declare, as a
// cluster label is by the fleet — the VMs nobody owns, labs by phase, and when each lab's lease next expires.

import { Gauge } from "prom-client";
import type { LabPhase, VirtualMachine } from "../api/types.ts";
import type { ObjectStore } from "../sources/store.ts";
import type { ControllerMetrics } from "./metrics.ts";

export const LAB_PHASES: readonly LabPhase[] = ["Pending", "Starting", "Running", "Stopping", "Stopped", "Expired", "Stalled"];

const MIB = 1024 * 1024;

/** Each owner's VMs, in one pass over the store. */
function byOwner(vms: readonly VirtualMachine[]): Map<string, { vms: number; vcpus: number; memoryBytes: number }> {
  const owners = new Map<string, { vms: number; vcpus: number; memoryBytes: number }>();
  for (const vm of vms) {
    const owner = vm.spec.owner;
    if (owner === undefined) continue;
    let usage = owners.get(owner);
    if (!usage) owners.set(owner, usage = { vms: 0, vcpus: 0, memoryBytes: 0 });
    usage.vms++;
    usage.vcpus += vm.spec.cpu;
    usage.memoryBytes += vm.spec.memoryMiB * MIB;
  }
  return owners;
}

export function attachLabGauges(metrics: ControllerMetrics, store: ObjectStore): void {
  const registers = [metrics.registry];
  const ownerGauge = (name: string, help: string, value: (u: { vms: number; vcpus: number; memoryBytes: number }) => number) => new Gauge({
    name, help, labelNames: ["owner"] as const, registers,
    collect() {
      this.reset();
      for (const [owner, usage] of byOwner(store.list("VirtualMachine"))) this.set({ owner }, value(usage));
    },
  });
  ownerGauge("vireo_owner_vms", "VirtualMachines by owner (spec.owner; a lab's VMs carry their lab's), whether they run or not.", (u) => u.vms);
  ownerGauge("vireo_owner_vcpus", "vCPUs declared by the VirtualMachines of each owner.", (u) => u.vcpus);
  ownerGauge("vireo_owner_memory_bytes", "Memory declared by the VirtualMachines of each owner.", (u) => u.memoryBytes);
  new Gauge({
    name: "vireo_vms_without_owner", help: "VirtualMachines with no spec.owner (vireo report usage lists them).", registers,
    collect() {
      this.set(store.list("VirtualMachine").filter((vm) => vm.spec.owner === undefined).length);
    },
  });
  new Gauge({
    name: "vireo_labs", help: "LabTopologies by phase.", labelNames: ["phase"] as const, registers,
    collect() {
      const counts = new Map<string, number>(LAB_PHASES.map((p) => [p, 0]));
      for (const lab of store.list("LabTopology")) { const p = lab.status?.phase ?? "Pending"; counts.set(p, (counts.get(p) ?? 0) + 1); }
      for (const [phase, n] of counts) this.set({ phase }, n);
    },
  });
  new Gauge({
    name: "vireo_lab_lease_expiry_timestamp_seconds",
    help: "When each lab's lease next stops (action Stop) or deletes (action Delete) it, in Unix seconds (status.nextExpiry); absent for labs without one.",
    labelNames: ["namespace", "lab", "action"] as const,
    registers,
    collect() {
      this.reset();
      for (const lab of store.list("LabTopology")) {
        const next = lab.status?.nextExpiry;
        const at = next ? Date.parse(next.time) : Number.NaN;
        if (next && !Number.isNaN(at)) this.set({ namespace: lab.metadata.namespace ?? "default", lab: lab.metadata.name, action: next.action }, at / 1000);
      }
    },
  });
}
