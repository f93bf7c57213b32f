// Replication and recovery as metrics. Syncs are counted from what the replicas' sites report after every
// observation (each completed sync once, by link); the rest is read from the store at scrape time:
// VMs by replication state, the lag of each VM that violates its RPO now (only those, so cardinality stays
// bounded by what is wrong, as drift's series), and how long each recovery plan has been under way and
// each test has kept its copies running.

import { Gauge } from "prom-client";
import type { ReplicaObservation } from "../core/replication.ts";
import type { ObjectStore } from "../sources/store.ts";
import type { VmReplicationStatus } from "../api/types.ts";
import type { ControllerMetrics } from "./metrics.ts";

export const REPLICATION_STATES = ["Initializing", "Replicating", "Paused", "Error", "FailedOver"] as const;

/**
 * Counts each completed sync once, by its link: when this process sees a replica's last sync change. The
 * first observation only sets the baseline, so a restarted controller counts no sync twice.
 */
export class ReplicationRecorder {
  private readonly metrics: ControllerMetrics;
  private previous: Map<string, number> | undefined;

  constructor(metrics: ControllerMetrics) {
    this.metrics = metrics;
  }

  record(replicas: Iterable<Readonly<ReplicaObservation>>): void {
    const current = new Map<string, number>();
    for (const r of replicas) {
      const ended = r.lastSync?.endedAt;
      if (ended === undefined) continue;
      current.set(r.vm, ended);
      if (this.previous && this.previous.get(r.vm) !== ended) {
        this.metrics.replicationSyncs.inc({ link: r.settings.link });
        this.metrics.replicationSyncedBytes.inc({ link: r.settings.link }, r.lastSync!.transferredMiB * 1024 * 1024);
      }
    }
    this.previous = current;
  }
}

/** Gauges of replication and recovery plans, read from the store at scrape time on Vireo's clock. */
export function attachReplicationGauges(metrics: ControllerMetrics, store: ObjectStore, now: () => number): void {
  const registers = [metrics.registry];
  new Gauge({
    name: "vireo_replication_vms", help: "Replicated VirtualMachines by replication state.", labelNames: ["state"] as const, registers,
    collect() {
      const counts = new Map<string, number>(REPLICATION_STATES.map((s) => [s, 0]));
      for (const vm of store.list("VirtualMachine")) {
        const state = vm.status?.replication?.state;
        if (state) counts.set(state, (counts.get(state) ?? 0) + 1);
      }
      for (const [state, n] of counts) this.set({ state }, n);
    },
  });
  new Gauge({
    name: "vireo_replication_lag_seconds",
    help: "Age of the replica (from the start of its last completed sync) of each VM that violates its RPO now; absent for the others.",
    labelNames: ["namespace", "name", "target_cluster"] as const,
    registers,
    collect() {
      this.reset();
      for (const { labels, replication: r } of violating(store)) {
        const anchor = r.lastSyncTime && r.lastSyncDurationSeconds !== undefined ? Date.parse(r.lastSyncTime) - r.lastSyncDurationSeconds * 1000 : undefined;
        const lag = anchor !== undefined ? (now() - anchor) / 1000 : r.lagSeconds;
        if (lag !== undefined) this.set(labels, Math.max(0, lag));
      }
    },
  });
  new Gauge({
    name: "vireo_replication_rpo_seconds",
    help: "The RPO of each VM that violates it now (beside vireo_replication_lag_seconds); absent for the others.",
    labelNames: ["namespace", "name", "target_cluster"] as const,
    registers,
    collect() {
      this.reset();
      for (const { labels, replication } of violating(store)) this.set(labels, replication.rpoSeconds);
    },
  });
  new Gauge({
    name: "vireo_recovery_plan_running_seconds",
    help: "For each RecoveryPlan under way (Preparing, Running, WaitingForUser), how long since it began; absent once it ended.",
    labelNames: ["namespace", "plan", "action", "phase"] as const,
    registers,
    collect() {
      this.reset();
      for (const plan of store.list("RecoveryPlan")) {
        const phase = plan.status?.phase;
        if (!plan.status?.startTime || phase === undefined || phase === "Succeeded" || phase === "Failed" || phase === "Idle") continue;
        this.set({ namespace: plan.metadata.namespace ?? "default", plan: plan.metadata.name, action: plan.spec.action, phase }, Math.max(0, now() - Date.parse(plan.status.startTime)) / 1000);
      }
    },
  });
  new Gauge({
    name: "vireo_recovery_test_running_seconds",
    help: "For each Test RecoveryPlan whose copies still run, how long since the test began; absent once they are removed.",
    labelNames: ["namespace", "plan"] as const,
    registers,
    collect() {
      this.reset();
      for (const plan of store.list("RecoveryPlan")) {
        if (plan.spec.action !== "Test" || !plan.status?.startTime) continue;
        const running = (plan.status.vms ?? []).some((v) => v.copy !== undefined && v.result !== "CleanedUp" && v.result !== "Failed" && v.result !== "Pending");
        if (running) this.set({ namespace: plan.metadata.namespace ?? "default", plan: plan.metadata.name }, Math.max(0, now() - Date.parse(plan.status.startTime)) / 1000);
      }
    },
  });
}

/** The VMs violating their RPO now, with the labels their series carry (bounded by what is wrong). */
function violating(store: ObjectStore): { labels: { namespace: string; name: string; target_cluster: string }; replication: VmReplicationStatus }[] {
  return store.list("VirtualMachine").flatMap((vm) => {
    const replication = vm.status?.replication;
    if (!replication?.rpoViolated) return [];
    return [{ labels: { namespace: vm.metadata.namespace ?? "default", name: vm.metadata.name, target_cluster: replication.targetCluster }, replication }];
  });
}
