// Stage 1, HA restarts: the VMs of failed hosts start elsewhere, in restart priority order, once fenced
// (planners/ha/restart-order.ts). First because failover takes capacity before any new power-on, and is not
// gated by admission control (BEHAVIOUR.md, Restart). VMs recovering into this cluster from their replicas
// (a lost site, a recovery plan) are restarts too, in the same order, from the replica's disks; the VMs of
// a lost site that nothing recovers say why.

import { requestOf } from "../../placement/index.ts";
import { DEFAULT_LEASE_EXPIRY_MS, failoverNeed, type FailoverNeed } from "../ha/failover.ts";
import { planFailover, placedVm, type FailoverVm } from "../ha/restart-order.ts";
import { desiredConfig } from "../lifecycle.ts";
import { desiredPower } from "../run-strategy.ts";
import type { RecoveryRecord } from "../replication/status.ts";
import type { ClusterSituation, FailoverRecord, Recovery, SiteWaitReason, StageState, VmFacts } from "./types.ts";

export interface RestartOutcome {
  newFailovers: { vm: string; record: FailoverRecord }[];
  settled: string[];
  recovered: Recovery[];
}

export function restartStage(s: Readonly<ClusterSituation>, state: StageState): RestartOutcome {
  const candidates = s.vms.filter((f) => !f.vm.metadata.deletionTimestamp && (f.protection.protected || f.role.kind === "Recovering"));
  const byId = new Map(candidates.map((f) => [f.id, f]));
  const recoveries = new Map<string, RecoveryRecord>();
  const held = new Set<string>();
  const failoverVms: FailoverVm[] = [];
  for (const f of candidates) {
    let need: FailoverNeed | undefined;
    if (f.role.kind === "Recovering") {
      const recovery = recoveryNeed(s, f);
      if (recovery.kind === "Wait") {
        // Held, but still ahead of lower priorities in the restart order: not safe before it is released.
        hold(state, f.id, recovery.reason, recovery.message);
        held.add(f.id);
        need = { fromHost: f.instance?.host ?? "", reason: "SiteFailure", failedAt: f.instance?.since ?? s.now, safeAt: Number.POSITIVE_INFINITY };
      } else {
        need = recovery.need;
        recoveries.set(f.id, recovery.record);
      }
    } else {
      need = failoverNeed(f.vm, f.instance, f.instanceHost ? { phase: f.instanceHost.phase, ...(f.instanceHost.observed ? { observed: f.instanceHost.observed } : {}) } : undefined);
    }
    failoverVms.push({ id: f.id, request: requestOf(f.vm), protection: f.protection, ...(f.instance ? { instance: f.instance } : {}), ...(need ? { need } : {}) });
  }
  const policy = s.cluster.spec.ha.admissionControl;
  const plan = planFailover({
    snapshot: state.snapshot,
    vms: failoverVms,
    failoverHosts: policy.policy === "DedicatedFailoverHosts" ? policy.failoverHosts ?? [] : [],
    attempts: s.memory.attempts,
    now: s.now,
  });

  const placed = [...state.snapshot.placed];
  for (const restart of plan.restarts) {
    const facts = byId.get(restart.vm)!;
    const features = s.hosts.find((h) => h.name === restart.host)?.host?.spec.cpu.features ?? [];
    const config = { ...desiredConfig(facts.vm, facts.networks, s.cluster, features), isolationResponse: facts.protection.isolationResponse };
    const restartFacts = { fromHost: restart.fromHost, reason: restart.reason, failedAt: restart.failedAt, priority: facts.protection.priority };
    const recovery = recoveries.get(restart.vm);
    if (recovery) {
      const why = `${recovery.trigger === "Automatic" ? "the loss of cluster" : `a ${recovery.trigger} from cluster`} ${recovery.fromCluster}`;
      state.actions.push({ stage: "restarts", action: { type: "Recover", vm: restart.vm, host: restart.host, config, replicaOf: restart.vm, reason: `recovery from the replica after ${why}` }, restart: restartFacts, recovery });
    } else {
      const why = `${restart.reason} of host ${restart.fromHost}`;
      state.actions.push({ stage: "restarts", action: { type: "Start", vm: restart.vm, host: restart.host, config, reason: `HA restart after ${why}` }, restart: restartFacts });
    }
    placed.push(placedVm(requestOf(facts.vm), restart.host));
  }
  state.snapshot = { ...state.snapshot, placed };
  for (const wait of plan.waiting) if (!held.has(wait.vm)) state.verdicts.set(wait.vm, { kind: "Waiting", reason: wait.reason, message: wait.message, ...(wait.until !== undefined ? { until: wait.until } : {}) });
  for (const failure of plan.failed) state.verdicts.set(failure.vm, { kind: "RestartFailed", message: failure.message });
  for (const id of plan.handled) state.handled.add(id);
  const wakes = plan.waiting.map((w) => w.until).filter((t): t is number => t !== undefined && Number.isFinite(t));
  if (wakes.length > 0) state.wakeAt = Math.min(state.wakeAt ?? Infinity, ...wakes);
  strandedBySiteLoss(s, state);

  const handled = new Set(plan.handled);
  return {
    newFailovers: failoverVms.filter((f) => f.need && !s.memory.failovers.has(f.id))
      .map((f) => ({ vm: f.id, record: { fromHost: f.need!.fromHost, reason: f.need!.reason, failedAt: f.need!.failedAt, attempts: 0 } })),
    settled: [...s.memory.attempts.keys()].filter((id) => !handled.has(id) && s.vms.some((f) => f.id === id)),
    recovered: completedFailovers(s),
  };
}

function hold(state: StageState, id: string, reason: SiteWaitReason, message: string): void {
  state.verdicts.set(id, { kind: "Waiting", reason, message });
  state.handled.add(id);
}

type RecoveryNeed =
  | { kind: "Ready"; need: FailoverNeed; record: RecoveryRecord }
  | { kind: "Wait"; reason: SiteWaitReason; message: string };

/**
 * Whether a VM recovering into this cluster may start from its replica, and from when: never while its
 * original may still run or write. A copy still on on a failed host is fenced once that host's lease on
 * its disks can have expired (as HA's restarts); one on a host that answers must be stopped first (by the
 * recovery plan); one off, or gone, is safe at once.
 */
function recoveryNeed(s: Readonly<ClusterSituation>, f: Readonly<VmFacts>): RecoveryNeed {
  const role = f.role;
  if (role.kind !== "Recovering") throw new Error(`${f.id} is not recovering`);
  if (role.hold) return { kind: "Wait", reason: "WaitingForRecoveryPlan", message: role.hold };
  if (desiredPower(f.declared, f.instance) !== "On") return { kind: "Wait", reason: "WaitingForRecoveryPlan", message: `runStrategy ${f.declared.spec.runStrategy} does not ask for the VM to run` };
  const instance = f.instance;
  const host = f.instanceHost;
  const fromCluster = host?.cluster?.metadata.name ?? (role.cluster === f.declared.spec.placement.cluster ? f.declared.spec.replication!.targetCluster : f.declared.spec.placement.cluster);
  const record = (stoppedWritingAt: number): RecoveryRecord => ({ trigger: role.trigger, fromCluster, toCluster: s.cluster.metadata.name, stoppedWritingAt, askedAt: s.now });
  if (instance && instance.power !== "Off") {
    // A person's Failover plan is the word that a host the controller cannot see is down: fenced by its
    // lease from the last heartbeat read (the hosts still refuse a copy while they see the lease held).
    if (host?.unconfirmed && host.observed && role.trigger === "Failover") {
      const lease = host.observed.leaseExpiryMs ?? DEFAULT_LEASE_EXPIRY_MS;
      const last = host.observed.lastDatastoreHeartbeat;
      return { kind: "Ready", need: { fromHost: instance.host, reason: "SiteFailure", failedAt: host.observed.lastNetworkHeartbeat, safeAt: last + lease }, record: record(last) };
    }
    if (host?.phase !== "Failed" || !host.observed) {
      return { kind: "Wait", reason: "WaitingForFencing", message: `the original still runs on host ${instance.host} (${host?.phase ?? "unknown"}): it must stop before the replica starts` };
    }
    const failover = failoverNeed(f.declared, instance, { phase: host.phase, observed: host.observed });
    if (!failover) return { kind: "Wait", reason: "WaitingForFencing", message: `the original on host ${instance.host} cannot be fenced yet` };
    return { kind: "Ready", need: { ...failover, reason: "SiteFailure" }, record: record(host.observed.lastDatastoreHeartbeat) };
  }
  const stoppedAt = instance?.since ?? s.now;
  return { kind: "Ready", need: { fromHost: instance?.host ?? "", reason: "SiteFailure", failedAt: stoppedAt, safeAt: stoppedAt }, record: record(stoppedAt) };
}

/**
 * The VMs of a lost site that nothing recovers say why, rather than wait for capacity that will not come:
 * a person must confirm the loss (WaitingForUser), or the VM has no replica to recover from (SiteLost).
 */
function strandedBySiteLoss(s: Readonly<ClusterSituation>, state: StageState): void {
  const site = s.site;
  if (site.kind === "Up") return;
  const cluster = s.cluster.metadata.name;
  for (const f of s.vms) {
    if (f.role.kind !== "Home" || f.vm.metadata.deletionTimestamp) continue;
    if (desiredPower(f.vm, f.instance) !== "On" || (f.instance?.power === "Running" && f.instanceHost?.phase === "Ready")) continue;
    const current = state.verdicts.get(f.id);
    if (current && current.kind !== "Waiting") continue;
    if (site.kind === "Unconfirmed" && f.protection.replicate) {
      hold(state, f.id, "WaitingForUser", site.message);
      continue;
    }
    const why = !f.declared.spec.replication ? "the VM has no replica (spec.replication is not set)"
      : !f.protection.replicate ? "its HAPolicy's protection is not Replicate"
      : f.replica?.lastSync === undefined ? "its replica has no completed sync yet"
      : "its replica already ran the VM";
    const lost = site.kind === "Lost" ? `every host of cluster ${cluster} failed` : `every host of cluster ${cluster} is silent`;
    hold(state, f.id, "SiteLost", `${lost} and nothing recovers the VM elsewhere: ${why}`);
  }
}

/** Failovers that are over: the VM runs on the host HA restarted it on, and its own reconcile said Ready. */
function completedFailovers(s: Readonly<ClusterSituation>): Recovery[] {
  const recovered: Recovery[] = [];
  for (const f of s.vms) {
    const record = s.memory.failovers.get(f.id);
    if (!record?.toHost || f.instance?.power !== "Running") continue;
    const ready = f.vm.status?.conditions?.find((c) => c.type === "Ready");
    if (f.vm.status?.phase !== "Running" || ready?.status !== "True") continue;
    recovered.push({ vm: f.id, record, seconds: (s.now - record.failedAt) / 1000 });
  }
  return recovered;
}
