// Prometheus metrics, named by Prometheus conventions: vireo_ prefix, base units, _total counters.
// Label sets are bounded: kinds, phases, results — never free text or timestamps.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { ObjectStore } from "../sources/store.ts";

export class ControllerMetrics {
  readonly registry = new Registry();
  readonly reconciles = new Counter({ name: "vireo_reconcile_total", help: "Reconciles by kind and result.", labelNames: ["kind", "result"] as const, registers: [this.registry] });
  readonly reconcileDuration = new Histogram({
    name: "vireo_reconcile_duration_seconds",
    help: "Time spent in one reconcile, by kind.",
    labelNames: ["kind"] as const,
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({ name: "vireo_workqueue_depth", help: "Keys waiting for a worker.", registers: [this.registry] });
  readonly queueAdds = new Counter({ name: "vireo_workqueue_adds_total", help: "Keys added to the work queue.", registers: [this.registry] });
  readonly queueRetries = new Counter({ name: "vireo_workqueue_retries_total", help: "Keys re-added after a failed reconcile.", registers: [this.registry] });
  readonly actions = new Counter({ name: "vireo_actions_total", help: "Actions the executor applied, by type and result.", labelNames: ["type", "result"] as const, registers: [this.registry] });
  readonly manifestErrors = new Gauge({ name: "vireo_manifest_errors", help: "Manifest files that fail to parse or validate (their last good version stays in force).", registers: [this.registry] });
  readonly splitBrainAttempts = new Gauge({ name: "vireo_split_brain_attempts", help: "Power-ons the hosts refused because another copy of the VM might still run (always 0 in a healthy run).", registers: [this.registry] });
  readonly failovers = new Counter({ name: "vireo_failovers_total", help: "VMs HA restarted on another host, by reason (HostFailure, HostIsolation, StorageFailure, VmFailure).", labelNames: ["reason"] as const, registers: [this.registry] });
  readonly recoveryTime = new Histogram({
    name: "vireo_failover_recovery_seconds",
    help: "Time from a VM's failure (its host's last heartbeat) to the VM Ready again on another host.",
    buckets: [15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1800],
    registers: [this.registry],
  });
  readonly vmsAwaitingCapacity = new Gauge({ name: "vireo_ha_vms_awaiting_capacity", help: "Protected VMs waiting for capacity to restart or to be admitted, by cluster.", labelNames: ["cluster"] as const, registers: [this.registry] });
  readonly tolerableHostFailures = new Gauge({ name: "vireo_ha_tolerable_host_failures", help: "Host failures the cluster can survive now, found by re-placing the protected VMs of the worst-case hosts.", labelNames: ["cluster"] as const, registers: [this.registry] });
  readonly vmResets = new Counter({ name: "vireo_vm_monitoring_resets_total", help: "VMs reset by VM monitoring because their guest heartbeat stopped.", registers: [this.registry] });
  readonly faultsInjected = new Counter({ name: "vireo_faults_injected_total", help: "Faults injected into the simulated hosts, by type.", labelNames: ["type"] as const, registers: [this.registry] });
  readonly buildInfo = new Gauge({ name: "vireo_build_info", help: "Vireo's version; always 1.", labelNames: ["version", "node_version"] as const, registers: [this.registry] });

  constructor(options: { version?: string; processMetrics?: boolean } = {}) {
    this.buildInfo.set({ version: options.version ?? "dev", node_version: process.version }, 1);
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: "vireo_" });
  }
}

/** Gauges counted from the store at scrape time, so they can never drift from it. */
export function attachStoreGauges(metrics: ControllerMetrics, store: ObjectStore): void {
  const vmPhases = ["Pending", "Unschedulable", "Starting", "Running", "Migrating", "Stopping", "Stopped", "Failed"];
  const hostPhases = ["Ready", "NotResponding", "Isolated", "Partitioned", "Failed", "EnteringMaintenance", "Maintenance"];
  new Gauge({
    name: "vireo_vms", help: "VirtualMachines by phase.", labelNames: ["phase"] as const, registers: [metrics.registry],
    collect() {
      const counts = new Map(vmPhases.map((p) => [p, 0]));
      for (const vm of store.list("VirtualMachine")) { const p = vm.status?.phase ?? "Pending"; counts.set(p, (counts.get(p) ?? 0) + 1); }
      for (const [phase, n] of counts) this.set({ phase }, n);
    },
  });
  new Gauge({
    name: "vireo_hosts", help: "Hosts by phase.", labelNames: ["phase"] as const, registers: [metrics.registry],
    collect() {
      const counts = new Map(hostPhases.map((p) => [p, 0]));
      for (const host of store.list("Host")) { const p = host.status?.phase ?? "NotResponding"; counts.set(p, (counts.get(p) ?? 0) + 1); }
      for (const [phase, n] of counts) this.set({ phase }, n);
    },
  });
  new Gauge({
    name: "vireo_objects", help: "Objects in the store, by kind.", labelNames: ["kind"] as const, registers: [metrics.registry],
    collect() {
      for (const kind of ["Host", "HostCluster", "VirtualMachine", "HAPolicy", "Fault"] as const) this.set({ kind }, store.count(kind));
    },
  });
}
