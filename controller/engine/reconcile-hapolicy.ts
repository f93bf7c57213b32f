// Reports one HAPolicy: the VMs it protects, those it selects but cannot protect (and why), those another
// policy also selects, and its latest failovers. It decides nothing: protection is read by the VM and
// cluster reconciles from the policies themselves.

import type { HAPolicy, HAPolicyStatus, HostCluster } from "../api/types.ts";
import { summarize } from "../api/conditions.ts";
import { policiesSelecting, policyKey, protectionOf } from "../planners/ha/protection.ts";
import type { ReconcileResult } from "./runner.ts";
import type { ReconcileContext } from "./context.ts";
import { clusterByName, vmId, writeStatusIfChanged } from "./context.ts";

/** Counts move with VMs and failovers; they are refreshed at this pace rather than on every change. */
const POLICY_STATUS_REFRESH_MS = 15_000;
const LISTED = 50;
const FAILOVERS_LISTED = 20;

export async function reconcileHaPolicy(ctx: ReconcileContext, key: string): Promise<ReconcileResult | void> {
  const policy = ctx.store.get(key) as HAPolicy | undefined;
  if (!policy || policy.metadata.deletionTimestamp) {
    if (policy) await ctx.finalizers?.remove(policy);
    return;
  }
  const me = policyKey(policy);
  const policies = ctx.store.list("HAPolicy");
  const clusters = new Map<string, HostCluster | undefined>();
  const unprotected: { vm: string; reason: string }[] = [];
  const conflicts: string[] = [];
  let protectedCount = 0;
  const failovers: NonNullable<HAPolicyStatus["lastFailovers"]> = [];
  for (const vm of ctx.store.list("VirtualMachine")) {
    const selecting = policiesSelecting(vm, policies);
    if (!selecting.includes(policy)) continue;
    const clusterName = vm.spec.placement.cluster;
    if (!clusters.has(clusterName)) clusters.set(clusterName, clusterByName(ctx, clusterName));
    const protection = protectionOf(vm, policies, clusters.get(clusterName));
    if (selecting.length > 1) conflicts.push(vm.metadata.name);
    if (protection.policy !== me) {
      unprotected.push({ vm: vm.metadata.name, reason: `policy ${protection.policy} wins the conflict` });
      continue;
    }
    if (protection.protected) protectedCount++;
    else unprotected.push({ vm: vm.metadata.name, reason: protection.reason ?? "not protected" });
    const record = ctx.ha.failovers.get(vmId(vm));
    const last = vm.status?.lastFailover;
    if (last?.toHost && last.lastAttempt) failovers.push({ vm: vm.metadata.name, fromHost: last.fromHost, toHost: last.toHost, time: last.lastAttempt, reason: last.reason });
    else if (record?.toHost && record.lastAttempt) failovers.push({ vm: vm.metadata.name, fromHost: record.fromHost, toHost: record.toHost, time: new Date(record.lastAttempt).toISOString(), reason: record.reason });
  }
  failovers.sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : 0));
  const generation = policy.metadata.generation;
  const message = `${protectedCount} VMs protected, ${unprotected.length} not` + (conflicts.length > 0 ? `, ${conflicts.length} also selected by another policy` : "");
  const status: HAPolicyStatus = {
    observedGeneration: generation,
    vmsProtected: protectedCount,
    vmsUnprotected: unprotected.length,
    ...(unprotected.length > 0 ? { unprotected: unprotected.slice(0, LISTED) } : {}),
    ...(conflicts.length > 0 ? { conflicts: conflicts.sort().slice(0, LISTED) } : {}),
    ...(failovers.length > 0 ? { lastFailovers: failovers.slice(0, FAILOVERS_LISTED) } : {}),
    conditions: summarize(policy.status?.conditions, {
      ready: true,
      reason: "Reconciled",
      message,
      conditions: [conflicts.length > 0 ? { type: "PolicyConflict", status: true, reason: "OverlappingSelectors", message: `${conflicts.length} VMs are selected by more than one HAPolicy; the highest restartPriority wins, then the name` } : undefined],
    }, new Date(ctx.clock.now()).toISOString(), generation),
  };
  await writeStatusIfChanged(ctx, policy, status);
  return { requeueAfter: POLICY_STATUS_REFRESH_MS };
}
