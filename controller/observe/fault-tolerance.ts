// Fault tolerance as metrics. Switch-overs are counted from what the hosts report after every observation
// (each one once); the rest is read from the store at scrape time: fault-tolerant VMs by state, and how long
// each VM without a secondary in lockstep has been so (only those, so cardinality stays bounded by what is
// wrong, as drift's series).

import { Gauge } from "prom-client";
import type { SwitchoverObservation } from "../core/fault-tolerance.ts";
import type { FaultToleranceState } from "../api/types.ts";
import type { ObjectStore } from "../sources/store.ts";
import type { ControllerMetrics } from "./metrics.ts";

export const FAULT_TOLERANCE_STATES: readonly FaultToleranceState[] = ["Starting", "Protected", "NeedsSecondary", "NotProtected"];

/**
 * Counts each switch-over once: when this process sees a VM's last switch-over change. The first observation
 * only sets the baseline, so a restarted controller counts none twice.
 */
export class FaultToleranceRecorder {
  private readonly metrics: ControllerMetrics;
  private previous: Map<string, number> | undefined;

  constructor(metrics: ControllerMetrics) {
    this.metrics = metrics;
  }

  record(switchovers: Iterable<Readonly<SwitchoverObservation>>): void {
    const current = new Map<string, number>();
    for (const s of switchovers) {
      current.set(s.vm, s.at);
      if (this.previous && this.previous.get(s.vm) !== s.at) this.metrics.ftSwitchovers.inc();
    }
    this.previous = current;
  }
}

/** Gauges of fault tolerance, read from the store at scrape time on Vireo's clock. */
export function attachFaultToleranceGauges(metrics: ControllerMetrics, store: ObjectStore, now: () => number): void {
  const registers = [metrics.registry];
  new Gauge({
    name: "vireo_ft_vms", help: "VirtualMachines protected with FaultTolerance, by state (Starting, Protected, NeedsSecondary, NotProtected).", labelNames: ["state"] as const, registers,
    collect() {
      const counts = new Map<string, number>(FAULT_TOLERANCE_STATES.map((s) => [s, 0]));
      for (const vm of store.list("VirtualMachine")) {
        const state = vm.status?.faultTolerance?.state;
        if (state) counts.set(state, (counts.get(state) ?? 0) + 1);
      }
      for (const [state, n] of counts) this.set({ state }, n);
    },
  });
  new Gauge({
    name: "vireo_ft_secondary_missing_seconds",
    help: "How long each fault-tolerant VM without a secondary in lockstep has been so; absent for the others.",
    labelNames: ["namespace", "name", "state"] as const,
    registers,
    collect() {
      this.reset();
      for (const vm of store.list("VirtualMachine")) {
        const ft = vm.status?.faultTolerance;
        if (!ft || ft.state === "Protected" || !ft.unprotectedSince) continue;
        this.set({ namespace: vm.metadata.namespace ?? "default", name: vm.metadata.name, state: ft.state }, Math.max(0, (now() - Date.parse(ft.unprotectedSince)) / 1000));
      }
    },
  });
}
