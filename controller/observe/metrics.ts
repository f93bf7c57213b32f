// Prometheus metrics, named by Prometheus conventions: vireo_ prefix, base units, _total counters.
// Label sets are bounded: kinds, phases, results — never free text or timestamps.

import { KINDS } from "../api/types.ts";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { ObjectStore } from "../sources/store.ts";
import { MIGRATION_REASONS } from "./migrations.ts";
import { attachConversionGauges, conversionCounter, conversionDowntimeHistogram } from "./conversions.ts";
import { attachReplicationGauges } from "./replication.ts";
import { attachFaultToleranceGauges } from "./fault-tolerance.ts";
import { attachLabGauges } from "./labs.ts";

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
  readonly failovers = new Counter({ name: "vireo_failovers_total", help: "VMs HA restarted on another host, by reason (HostFailure, HostIsolation, StorageFailure, VmFailure; SiteFailure for a start from a replica in another cluster, after a site loss or by a recovery plan).", labelNames: ["reason"] as const, registers: [this.registry] });
  readonly recoveryTime = new Histogram({
    name: "vireo_failover_recovery_seconds",
    help: "Time from a VM's failure (its host's last heartbeat) to the VM Ready again on another host.",
    buckets: [15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1800],
    registers: [this.registry],
  });
  readonly vmsAwaitingCapacity = new Gauge({ name: "vireo_ha_vms_awaiting_capacity", help: "VMs waiting for capacity, by cluster: HA restarts with no host to take them, and power-ons refused by admission control.", labelNames: ["cluster"] as const, registers: [this.registry] });
  readonly tolerableHostFailures = new Gauge({ name: "vireo_ha_tolerable_host_failures", help: "Host failures the cluster can survive now, found by re-placing the protected VMs of the worst-case hosts.", labelNames: ["cluster"] as const, registers: [this.registry] });
  readonly vmResets = new Counter({ name: "vireo_vm_monitoring_resets_total", help: "VMs reset by VM monitoring because their guest heartbeat stopped.", registers: [this.registry] });
  readonly faultsInjected = new Counter({ name: "vireo_faults_injected_total", help: "Faults injected into the simulated hosts, by type.", labelNames: ["type"] as const, registers: [this.registry] });
  readonly migrations = new Counter({
    name: "vireo_migrations_total",
    help: "Live migrations that ended, by result (Succeeded, Failed, Cancelled) and reason (Completed; RoundLimit, NoProgress, CompletionTimeout, SourceFailed, TargetFailed; Requested, VmStopped; Other).",
    labelNames: ["result", "reason"] as const,
    registers: [this.registry],
  });
  readonly migrationDuration = new Histogram({
    name: "vireo_migration_duration_seconds",
    help: "From a live migration's start to its end, by result.",
    labelNames: ["result"] as const,
    buckets: [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600],
    registers: [this.registry],
  });
  readonly migrationDowntime = new Histogram({
    name: "vireo_migration_downtime_seconds",
    help: "How long the guest was paused at the switch-over of a live migration that succeeded.",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5],
    registers: [this.registry],
  });
  readonly migrationsInFlight = new Gauge({ name: "vireo_migrations_in_flight", help: "Live migrations under way (pre-copy or switch-over), as the hosts last reported them.", registers: [this.registry] });
  readonly migrationInProgress = new Gauge({
    name: "vireo_migration_in_progress_seconds",
    help: "For each live migration under way, how long it has run (on Vireo's clock), by its VM's namespace and name and its source and target hosts; absent otherwise.",
    labelNames: ["namespace", "name", "source", "target"] as const,
    registers: [this.registry],
  });
  readonly ftSwitchovers = new Counter({ name: "vireo_ft_switchovers_total", help: "Fault-tolerant secondaries that went live when their primary's host failed.", registers: [this.registry] });
  readonly conversions = conversionCounter(this.registry);
  readonly conversionDowntime = conversionDowntimeHistogram(this.registry);
  readonly replicationSyncs = new Counter({ name: "vireo_replication_syncs_total", help: "Replica syncs completed, by replication link (source->target cluster).", labelNames: ["link"] as const, registers: [this.registry] });
  readonly replicationSyncedBytes = new Counter({ name: "vireo_replication_synced_bytes_total", help: "Bytes shipped by completed replica syncs, by replication link.", labelNames: ["link"] as const, registers: [this.registry] });
  readonly rpoViolations = new Counter({ name: "vireo_replication_rpo_violations_total", help: "Times a replicated VM began violating its RPO.", registers: [this.registry] });
  readonly replicaFailovers = new Counter({
    name: "vireo_replica_failovers_total",
    help: "Recoveries of VMs from their replicas, by kind (Automatic, Failover, Migrate, Failback, Test) and result (Started, Refused).",
    labelNames: ["kind", "result"] as const,
    registers: [this.registry],
  });
  readonly replicaDataLoss = new Histogram({
    name: "vireo_replica_data_loss_seconds",
    help: "Writes lost by a recovery from a replica: from the start of the instance's sync until the original stopped writing.",
    buckets: [0, 1, 10, 30, 60, 300, 900, 1800, 3600, 14400, 86400],
    registers: [this.registry],
  });
  readonly replicaRecoveryTime = new Histogram({
    name: "vireo_replica_recovery_seconds",
    help: "Time from a site's loss (its hosts' last heartbeat) or a recovery plan's start to the VM Ready from its replica.",
    buckets: [30, 60, 120, 300, 600, 900, 1800, 3600, 7200],
    registers: [this.registry],
  });
  readonly buildInfo = new Gauge({ name: "vireo_build_info", help: "Vireo's version; always 1.", labelNames: ["version", "node_version"] as const, registers: [this.registry] });

  constructor(options: { version?: string; processMetrics?: boolean } = {}) {
    this.buildInfo.set({ version: options.version ?? "dev", node_version: process.version }, 1);
    // Every result and reason from the start, so the first migration of each is an increase rate() sees.
    for (const [result, reasons] of Object.entries(MIGRATION_REASONS)) {
      for (const reason of reasons) this.migrations.inc({ result, reason }, 0);
      this.migrationDuration.zero({ result });
    }
    for (const kind of ["Automatic", "Failover", "Migrate", "Failback", "Test"]) for (const result of ["Started", "Refused"]) this.replicaFailovers.inc({ kind, result }, 0);
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: "vireo_" });
  }
}

/** Gauges counted from the store at scrape time, so they can never drift from it. */
export function attachStoreGauges(metrics: ControllerMetrics, store: ObjectStore, now: () => number = Date.now): void {
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
      for (const kind of KINDS) this.set({ kind }, store.count(kind));
    },
  });
  attachHealthGauges(metrics, store);
  attachMigrationGauges(metrics, store);
  attachConversionGauges(metrics.registry, store);
  attachReplicationGauges(metrics, store, now);
  attachFaultToleranceGauges(metrics, store, now);
  attachLabGauges(metrics, store);
}

const HOST_DOWN_PHASES: ReadonlySet<string> = new Set(["NotResponding", "Isolated", "Partitioned", "Failed"]);

function conditionTrue(object: { status?: { conditions?: readonly { type: string; status: string; reason?: string }[] } }, type: string): { reason?: string } | undefined {
  return object.status?.conditions?.find((c) => c.type === type && c.status === "True");
}

/**
 * Per-object series for the objects that are failing or drifted right now (so an alert can name them while
 * cardinality stays bounded by what is wrong), per-host utilization, and HA's configured tolerance — all
 * read from the status in the store at scrape time. Drift is read from the `Drifted` condition: these
 * series stay 0/absent until something sets it.
 */
function attachHealthGauges(metrics: ControllerMetrics, store: ObjectStore): void {
  const registers = [metrics.registry];
  new Gauge({
    name: "vireo_host_down", help: "1 for each host that is not responding, isolated, partitioned or failed; absent otherwise.", labelNames: ["host", "phase"] as const, registers,
    collect() {
      this.reset();
      for (const host of store.list("Host")) {
        const phase = host.status?.phase;
        if (phase !== undefined && HOST_DOWN_PHASES.has(phase)) this.set({ host: host.metadata.name, phase }, 1);
      }
    },
  });
  const ratio = (used: number | undefined, capacity: number | undefined) => (used !== undefined && capacity ? used / capacity : undefined);
  new Gauge({
    name: "vireo_host_cpu_allocated_ratio", help: "vCPUs allocated to the VMs on a host over its schedulable vCPUs (cores × overcommit ratio).", labelNames: ["host"] as const, registers,
    collect() {
      this.reset();
      for (const host of store.list("Host")) {
        const r = ratio(host.status?.allocated?.cpu, host.status?.capacity?.cpu);
        if (r !== undefined) this.set({ host: host.metadata.name }, r);
      }
    },
  });
  new Gauge({
    name: "vireo_host_memory_allocated_ratio", help: "Memory allocated to the VMs on a host over its memory.", labelNames: ["host"] as const, registers,
    collect() {
      this.reset();
      for (const host of store.list("Host")) {
        const r = ratio(host.status?.allocated?.memoryMiB, host.status?.capacity?.memoryMiB);
        if (r !== undefined) this.set({ host: host.metadata.name }, r);
      }
    },
  });
  new Gauge({
    name: "vireo_ha_host_failures_to_tolerate", help: "Host failures the cluster's HA admission control is configured to tolerate.", labelNames: ["cluster"] as const, registers,
    collect() {
      this.reset();
      for (const cluster of store.list("HostCluster")) {
        const required = cluster.status?.failoverCapacity?.required;
        if (required !== undefined) this.set({ cluster: cluster.metadata.name }, required);
      }
    },
  });
  new Gauge({
    name: "vireo_object_stalled", help: "1 for each object whose Stalled condition is True (it cannot reach its desired state without a change), by its reason; absent otherwise.", labelNames: ["kind", "namespace", "name", "reason"] as const, registers,
    collect() {
      this.reset();
      for (const kind of KINDS) {
        for (const object of store.list(kind)) {
          const stalled = conditionTrue(object, "Stalled");
          if (stalled) this.set({ kind, namespace: object.metadata.namespace ?? "", name: object.metadata.name, reason: stalled.reason ?? "" }, 1);
        }
      }
    },
  });
  new Gauge({
    name: "vireo_object_drifted", help: "1 for each object whose Drifted condition is True (what the hosts report differs from what its spec implies); absent otherwise.", labelNames: ["kind", "namespace", "name"] as const, registers,
    collect() {
      this.reset();
      for (const kind of KINDS) {
        for (const object of store.list(kind)) {
          if (conditionTrue(object, "Drifted")) this.set({ kind, namespace: object.metadata.namespace ?? "", name: object.metadata.name }, 1);
        }
      }
    },
  });
  new Gauge({
    name: "vireo_object_drifted_since_seconds", help: "For each drifted object, when its drift began (Unix time, from status.drift.since); absent otherwise. time() minus it is the drift's age.", labelNames: ["kind", "namespace", "name"] as const, registers,
    collect() {
      this.reset();
      for (const kind of ["Host", "VirtualMachine"] as const) {
        for (const object of store.list(kind)) {
          const since = object.status?.drift?.since;
          if (since !== undefined) this.set({ kind, namespace: object.metadata.namespace ?? "", name: object.metadata.name }, Date.parse(since) / 1000);
        }
      }
    },
  });
  new Gauge({
    name: "vireo_objects_drifted", help: "Objects whose Drifted condition is True, by kind.", labelNames: ["kind"] as const, registers,
    collect() {
      for (const kind of KINDS) this.set({ kind }, store.list(kind).filter((o) => conditionTrue(o, "Drifted")).length);
    },
  });
}

/**
 * Balancing and maintenance from the status in the store at scrape time: each cluster's imbalance, the
 * target its threshold tolerates and the recommendations waiting for approval (only while its balancing is
 * on, Manual or Automatic: a Disabled cluster has no series), and the hosts entering maintenance with VMs
 * that cannot leave (only those hosts).
 */
function attachMigrationGauges(metrics: ControllerMetrics, store: ObjectStore): void {
  const registers = [metrics.registry];
  const balancing = () => store.list("HostCluster").flatMap((c) => (c.spec.balancing?.mode !== "Disabled" && c.status?.balancing ? [{ cluster: c.metadata.name, status: c.status.balancing }] : []));
  new Gauge({
    name: "vireo_cluster_imbalance", help: "The cluster's imbalance at its last balancing pass: the standard deviation of its hosts' load; only while balancing is on.", labelNames: ["cluster"] as const, registers,
    collect() {
      this.reset();
      for (const { cluster, status } of balancing()) this.set({ cluster }, status.imbalance);
    },
  });
  new Gauge({
    name: "vireo_cluster_imbalance_target", help: "The imbalance the cluster's balancing threshold tolerates; only while balancing is on.", labelNames: ["cluster"] as const, registers,
    collect() {
      this.reset();
      for (const { cluster, status } of balancing()) this.set({ cluster }, status.target);
    },
  });
  new Gauge({
    name: "vireo_balancing_recommendations", help: "Balancing moves the cluster recommends and nobody has approved yet (Manual mode; 0 in Automatic); only while balancing is on.", labelNames: ["cluster"] as const, registers,
    collect() {
      this.reset();
      for (const { cluster, status } of balancing()) this.set({ cluster }, status.recommendations?.length ?? 0);
    },
  });
  new Gauge({
    name: "vireo_host_evacuation_blocked_vms", help: "For each host entering maintenance, the VMs that cannot leave it (status.evacuationBlocked); absent for the other hosts.", labelNames: ["host"] as const, registers,
    collect() {
      this.reset();
      for (const host of store.list("Host")) {
        const blocked = host.status?.evacuationBlocked?.length ?? 0;
        if (blocked > 0) this.set({ host: host.metadata.name }, blocked);
      }
    },
  });
}
