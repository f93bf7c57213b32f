// The HostCluster's status after a round: hosts ready, capacity and allocation, the VMs running and those
// held back, and how many host failures the cluster can really absorb now (planners/ha/failover-capacity.ts).

import type { ClusterBalancingStatus, HostClusterStatus } from "../../api/types.ts";
import { summarize, type ConditionInput } from "../../api/conditions.ts";
import type { ClusterSnapshot } from "../../placement/types.ts";
import { failoverCapacityCondition, requiredFailures } from "../ha/admission.ts";
import { failoverCapacityReport } from "../ha/failover-capacity.ts";
import { protectedRequests } from "./admission.ts";
import type { BalancingReport, ClusterSituation, HostFacts, VmVerdict } from "./types.ts";

export function clusterStatus(s: Readonly<ClusterSituation>, snapshot: Readonly<ClusterSnapshot>, verdicts: ReadonlyMap<string, VmVerdict>, balancing?: Readonly<BalancingReport>): HostClusterStatus {
  const ready = s.hosts.filter((h) => h.phase === "Ready");
  const capacity = { cpu: 0, memoryMiB: 0 };
  const allocated = { cpu: 0, memoryMiB: 0 };
  for (const h of ready) {
    const spec = h.host!.spec;
    capacity.cpu += spec.cpu.cores * spec.cpu.overcommitRatio;
    capacity.memoryMiB += spec.memoryMiB;
  }
  for (const h of s.hosts) {
    allocated.cpu += h.observed?.allocated.cpu ?? 0;
    allocated.memoryMiB += h.observed?.allocated.memoryMiB ?? 0;
  }
  const running = s.vms.filter((f) => f.instance?.power === "Running").length;
  const held = [...verdicts.values()];
  const unschedulable = held.filter((v) => v.kind === "Unschedulable").length;
  const awaitingCapacity = held.filter((v) => (v.kind === "Waiting" && v.reason === "InsufficientCapacity") || v.kind === "NotAdmitted").length;
  const failover = ready.length > 0 ? failoverCapacityStatus(s, snapshot) : {};
  const hasHosts = ready.length > 0;
  const balancingNow = balancingStatus(s, balancing);
  const message = `${ready.length}/${s.hosts.length} hosts ready, ${running}/${s.vms.length} VMs running` + (unschedulable > 0 ? `, ${unschedulable} unschedulable` : "");
  const generation = s.cluster.metadata.generation;
  return {
    observedGeneration: generation,
    hostsReady: ready.length,
    hostsTotal: s.hosts.length,
    capacity,
    allocated,
    vmsRunning: running,
    vmsTotal: s.vms.length,
    vmsUnschedulable: unschedulable,
    vmsAwaitingCapacity: awaitingCapacity,
    ...(failover.status ? { failoverCapacity: failover.status } : {}),
    ...(balancingNow ? { balancing: balancingNow } : {}),
    conditions: summarize(s.cluster.status?.conditions, {
      ready: hasHosts,
      reason: "HostsReady",
      message,
      ...(hasHosts ? {} : { stalled: { reason: "NoReadyHosts", message: "no host of this cluster is ready: its selector matches none, or all are down" } }),
      conditions: [failover.condition],
    }, new Date(s.now).toISOString(), generation),
  };
}

/** The cluster's failover capacity and the condition that says whether its policy holds, or nothing when HA is off. */
function failoverCapacityStatus(s: Readonly<ClusterSituation>, snapshot: Readonly<ClusterSnapshot>): { status?: HostClusterStatus["failoverCapacity"]; condition?: ConditionInput } {
  if (!s.cluster.spec.ha.enabled || s.hosts.some((h) => h.host === undefined)) return {};
  const policy = s.cluster.spec.ha.admissionControl;
  const report = failoverCapacityReport(requiredFailures(policy), snapshot, protectedRequests(s));
  const condition = failoverCapacityCondition(policy, report, snapshot, hostsInService(s.hosts));
  return {
    status: {
      tolerates: report.tolerates,
      ...(report.required !== undefined ? { required: report.required } : {}),
      ...(report.worstCase ? { worstCase: report.worstCase } : {}),
      ...(report.unplaceable ? { unplaceable: report.unplaceable.length } : {}),
    },
    ...(condition ? { condition: { type: "FailoverCapacity", ...condition } } : {}),
  };
}

/** Hosts the operator keeps in service (not in maintenance), whatever their health: admission control needs 3. */
export function hostsInService(hosts: readonly HostFacts[]): number {
  return hosts.filter((h) => h.host?.spec.maintenance === false).length;
}

/** Recommendations the status lists at most: it stays small whatever the cluster's size. */
export const MAX_LISTED_RECOMMENDATIONS = 20;

/**
 * The cluster's `status.balancing`: the figures of the pass that ran this round; between passes, those of
 * the last one, its recommendations still standing (the VM still on their source). None when balancing is
 * Disabled. Figures are rounded, so status changes with the load, not with its noise.
 */
function balancingStatus(s: Readonly<ClusterSituation>, report: Readonly<BalancingReport> | undefined): ClusterBalancingStatus | undefined {
  const mode = s.cluster.spec.balancing.mode;
  if (mode === "Disabled") return undefined;
  if (report?.passAt !== undefined) return passStatus(report, report.passAt, mode === "Manual");
  return carriedStatus(s, report);
}

/** Between passes: the last pass's figures, its recommendations still standing, and why this round made none. */
function carriedStatus(s: Readonly<ClusterSituation>, skipped: Readonly<BalancingReport> | undefined): ClusterBalancingStatus | undefined {
  const previous = s.cluster.status?.balancing ?? (skipped ? { imbalance: rounded(skipped.imbalance), target: rounded(skipped.target) } : undefined);
  if (previous === undefined) return undefined;
  const hostOf = new Map(s.vms.map((f) => [f.id, f.instance?.host]));
  const standing = s.cluster.spec.balancing.mode === "Manual" ? (previous.recommendations ?? []).filter((r) => hostOf.get(r.vm) === r.from) : [];
  return { ...previous, ...(skipped?.reason ? { message: skipped.reason } : {}), recommendations: standing };
}

function passStatus(report: Readonly<BalancingReport>, passAt: number, manual: boolean): ClusterBalancingStatus {
  return {
    imbalance: rounded(report.imbalance),
    target: rounded(report.target),
    projectedImbalance: rounded(report.projected),
    lastPassTime: new Date(passAt).toISOString(),
    ...(manual ? {} : { movesStarted: report.recommendations.length }),
    ...(report.reason ? { message: report.reason } : {}),
    recommendations: manual ? report.recommendations.slice(0, MAX_LISTED_RECOMMENDATIONS) : [],
  };
}

function rounded(n: number): number {
  return Math.round(n * 10_000) / 10_000;
}
