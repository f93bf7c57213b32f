// What a balancing move must never break: the VM's required rules and its host's capacity, judged by the
// placement code itself (hostsThatFit) with every migration of the pass held on both its ends; and the HA
// admission control policy, judged as admission control judges it (planners/ha/admission.ts).

import { selectorMatches } from "../../api/selectors.ts";
import type { VmAffinityTerm } from "../../api/types.ts";
import { hostsThatFit } from "../../placement/index.ts";
import type { ClusterSnapshot, PlacedVm, VmRequest } from "../../placement/index.ts";
import { protectedRequests } from "../cluster/admission.ts";
import { hostsInService } from "../cluster/status.ts";
import type { ClusterSituation } from "../cluster/types.ts";
import { admissionEnforced, requiredFailures } from "../ha/admission.ts";
import { failoverCapacity } from "../ha/failover-capacity.ts";

/**
 * The hosts of `targets` that may take `request` under its required rules, with `holding` (every VM where it
 * will be, and what migrations hold besides) on them. The VM itself is listed there on its source: the
 * placement code reads a request also listed as placed as a VM being moved, so it does not count against
 * itself.
 *
 * Only what can change the answer is handed over, so one check costs the size of the target hosts, not of
 * the cluster: the VMs on the target hosts (capacity), the VMs holding a required anti-affinity term
 * (symmetry) and the VMs the request's own terms select, with the hosts they run on (topology domains).
 */
export function hostsAllowing(snapshot: Readonly<ClusterSnapshot>, holding: readonly PlacedVm[], request: Readonly<VmRequest>, targets: readonly string[]): Set<string> {
  const wanted = new Set(targets);
  const terms = vmTerms(request);
  const relevant = holding.filter((vm) =>
    wanted.has(vm.host) ||
    (vm.antiAffinity ?? []).some((t) => selects(t, vm.namespace, request)) ||
    terms.some((t) => selects(t, request.namespace, vm)));
  const hostsOfRelevant = new Set([...wanted, ...relevant.map((vm) => vm.host)]);
  const hosts = snapshot.hosts.filter((h) => hostsOfRelevant.has(h.name));
  const fit = hostsThatFit({ ...snapshot, hosts, placed: relevant }, request).fits;
  return new Set(fit.filter((host) => wanted.has(host)));
}

/** Whether the admission control policy still holds with the VMs where `placed` says (the moves done); asked lazily. */
export type AdmissionGuard = (placed: () => readonly PlacedVm[]) => boolean;

/**
 * HostFailuresToTolerate is judged by re-placing the protected VMs of the worst-case hosts, as admission
 * control does: a move must keep the cluster tolerating what the policy asks, or — in a cluster already
 * short — at least what it tolerates now. The other policies cannot be broken by a move: ReservedPercentage
 * counts the capacity and reservations of the cluster as a whole, which a move between hosts that take VMs
 * leaves as they are; dedicated failover hosts are never a balancing target; Disabled asks nothing.
 */
export function admissionGuard(s: Readonly<ClusterSituation>, snapshot: Readonly<ClusterSnapshot>, placedNow: readonly PlacedVm[]): AdmissionGuard {
  const ha = s.cluster.spec.ha;
  const policy = ha.admissionControl;
  const required = requiredFailures(policy);
  if (!ha.enabled || policy.policy !== "HostFailuresToTolerate" || required === undefined || !admissionEnforced(policy, hostsInService(s.hosts))) return () => true;
  const protectedVms = protectedRequests(s);
  const tolerates = (placed: readonly PlacedVm[]): number => failoverCapacity({ snapshot: { ...snapshot, placed }, protectedVms, maxFailures: required }).tolerates;
  let now: number | undefined;
  return (placed) => {
    now ??= tolerates(placedNow);
    return tolerates(placed()) >= now;
  };
}

function vmTerms(request: Readonly<VmRequest>): VmAffinityTerm[] {
  const { vmAffinity, vmAntiAffinity } = request.placement;
  return [
    ...(vmAffinity?.required ?? []),
    ...(vmAntiAffinity?.required ?? []),
    ...(vmAffinity?.preferred ?? []).map((p) => p.term),
    ...(vmAntiAffinity?.preferred ?? []).map((p) => p.term),
  ];
}

/** Whether the term of a VM of `ownNamespace` selects `vm`. */
function selects(term: Readonly<VmAffinityTerm>, ownNamespace: string, vm: Readonly<Pick<PlacedVm, "namespace" | "labels">>): boolean {
  const namespaces = term.namespaces !== undefined && term.namespaces.length > 0 ? term.namespaces : [ownNamespace];
  return namespaces.includes(vm.namespace) && selectorMatches(term.labelSelector, vm.labels);
}
