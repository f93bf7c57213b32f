// Stage 1, HA restarts: the VMs of failed hosts start elsewhere, in restart priority order, once fenced
// (planners/ha/restart-order.ts). First because failover takes capacity before any new power-on, and is not
// gated by admission control (BEHAVIOUR.md, Restart).

import { requestOf } from "../../placement/index.ts";
import { failoverNeed } from "../ha/failover.ts";
import { planFailover, placedVm, type FailoverVm } from "../ha/restart-order.ts";
import { desiredConfig } from "../lifecycle.ts";
import type { ClusterSituation, FailoverRecord, Recovery, StageState } from "./types.ts";

export interface RestartOutcome {
  newFailovers: { vm: string; record: FailoverRecord }[];
  settled: string[];
  recovered: Recovery[];
}

export function restartStage(s: Readonly<ClusterSituation>, state: StageState): RestartOutcome {
  const protectedVms = s.vms.filter((f) => f.protection.protected && !f.vm.metadata.deletionTimestamp);
  const byId = new Map(protectedVms.map((f) => [f.id, f]));
  const failoverVms: FailoverVm[] = protectedVms.map((f) => {
    const need = failoverNeed(f.vm, f.instance, f.instanceHost ? { phase: f.instanceHost.phase, ...(f.instanceHost.observed ? { observed: f.instanceHost.observed } : {}) } : undefined);
    return { id: f.id, request: requestOf(f.vm), protection: f.protection, ...(f.instance ? { instance: f.instance } : {}), ...(need ? { need } : {}) };
  });
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
    const why = `${restart.reason} of host ${restart.fromHost}`;
    state.actions.push({
      stage: "restarts",
      action: { type: "Start", vm: restart.vm, host: restart.host, config, reason: `HA restart after ${why}` },
      restart: { fromHost: restart.fromHost, reason: restart.reason, failedAt: restart.failedAt, priority: facts.protection.priority },
    });
    placed.push(placedVm(requestOf(facts.vm), restart.host));
  }
  state.snapshot = { ...state.snapshot, placed };
  for (const wait of plan.waiting) state.verdicts.set(wait.vm, { kind: "Waiting", reason: wait.reason, message: wait.message, ...(wait.until !== undefined ? { until: wait.until } : {}) });
  for (const failure of plan.failed) state.verdicts.set(failure.vm, { kind: "RestartFailed", message: failure.message });
  for (const id of plan.handled) state.handled.add(id);
  const wakes = plan.waiting.map((w) => w.until).filter((t): t is number => t !== undefined && Number.isFinite(t));
  if (wakes.length > 0) state.wakeAt = Math.min(state.wakeAt ?? Infinity, ...wakes);

  const handled = new Set(plan.handled);
  return {
    newFailovers: failoverVms.filter((f) => f.need && !s.memory.failovers.has(f.id))
      .map((f) => ({ vm: f.id, record: { fromHost: f.need!.fromHost, reason: f.need!.reason, failedAt: f.need!.failedAt, attempts: 0 } })),
    settled: [...s.memory.attempts.keys()].filter((id) => !handled.has(id) && s.vms.some((f) => f.id === id)),
    recovered: recoveries(s),
  };
}

/** Failovers that are over: the VM runs on the host HA restarted it on, and its own reconcile said Ready. */
function recoveries(s: Readonly<ClusterSituation>): Recovery[] {
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
