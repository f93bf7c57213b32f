// Fault tolerance's rules (vSphere FT; BEHAVIOUR.md, Replication and fault tolerance): which VMs may have a
// secondary, where a secondary may go, and what a VM's fault tolerance state is. Pure.
//
// - A VM larger than `maxVcpusPerVm` is refused protection, with the reason.
// - A host holds at most `maxVmsPerHost` FT VMs and `maxVcpusPerHost` of their vCPUs, primaries and
//   secondaries counted alike, as vSphere counts them.
// - A secondary never shares its primary's host (placement's `apart`, by construction), and goes to
//   another rack when a host of another rack can take it (a rack's loss then costs one of the two only).

import type { FaultToleranceState, HostCluster, VirtualMachine, VmFaultToleranceStatus } from "../../api/types.ts";
import type { ConditionInput } from "../../api/conditions.ts";
import { vmId } from "../../api/types.ts";
import type { SecondaryObservation, SwitchoverObservation } from "../../core/fault-tolerance.ts";
import { DEFAULT_FT_LIMITS, DEFAULT_FT_LOGGING_MIBPS } from "../../core/fault-tolerance.ts";
import type { FaultToleranceSettings } from "../../core/fault-tolerance.ts";
import type { HostExclusion, PlacedVm, VmRequest } from "../../placement/types.ts";
import { requestOf } from "../../placement/index.ts";
import { migrationSettingsOf } from "../migration/settings.ts";

/** The label that names a host's rack, and the one that names its zone: a secondary prefers another. */
export const RACK_LABEL = "topology.vireo.dev/rack";
export const ZONE_LABEL = "topology.kubernetes.io/zone";

/** How a secondary is named among the VMs holding resources on a host: the primary's id and this. */
export const SECONDARY_SUFFIX = "#secondary";

export function secondaryId(vm: string): string {
  return `${vm}${SECONDARY_SUFFIX}`;
}

/** The primary's id of a secondary's placement id, or undefined for any other VM. */
export function primaryOf(placedId: string): string | undefined {
  // A secondary asked for this round is placed as `<id>#secondary@<host>` beside the one it replaces.
  const at = placedId.indexOf(SECONDARY_SUFFIX);
  return at > 0 && (at + SECONDARY_SUFFIX.length === placedId.length || placedId[at + SECONDARY_SUFFIX.length] === "@") ? placedId.slice(0, at) : undefined;
}

export interface FaultToleranceLimits {
  maxVmsPerHost: number;
  maxVcpusPerHost: number;
  maxVcpusPerVm: number;
}

export function limitsOf(cluster: Readonly<HostCluster>): FaultToleranceLimits {
  const ft = cluster.spec.faultTolerance as Partial<HostCluster["spec"]["faultTolerance"]> | undefined;
  return {
    maxVmsPerHost: ft?.maxVmsPerHost ?? DEFAULT_FT_LIMITS.maxVmsPerHost,
    maxVcpusPerHost: ft?.maxVcpusPerHost ?? DEFAULT_FT_LIMITS.maxVcpusPerHost,
    maxVcpusPerVm: ft?.maxVcpusPerVm ?? DEFAULT_FT_LIMITS.maxVcpusPerVm,
  };
}

/** How the VM's secondary is made (the cluster's migration settings, over the logging link) and kept. */
export function faultToleranceSettingsOf(cluster: Readonly<HostCluster>, vm: Readonly<VirtualMachine>): FaultToleranceSettings {
  const logging = (cluster.spec.faultTolerance as Partial<HostCluster["spec"]["faultTolerance"]> | undefined)?.loggingBandwidthMiBps ?? DEFAULT_FT_LOGGING_MIBPS;
  return { loggingBandwidthMiBps: logging, copy: { ...migrationSettingsOf(cluster, vm), bandwidthMiBps: logging } };
}

/** Why the VM may not have a secondary whatever the hosts (its size), or undefined. */
export function whyNeverFaultTolerant(vm: Readonly<VirtualMachine>, limits: Readonly<FaultToleranceLimits>): string | undefined {
  if (vm.spec.cpu > limits.maxVcpusPerVm) return `it has ${vm.spec.cpu} vCPUs; fault tolerance allows at most ${limits.maxVcpusPerVm} per VM (spec.faultTolerance.maxVcpusPerVm of its cluster)`;
  if (vm.spec.cpu > limits.maxVcpusPerHost) return `it has ${vm.spec.cpu} vCPUs; a host holds at most ${limits.maxVcpusPerHost} vCPUs of FT VMs`;
  return undefined;
}

/** The FT VMs and their vCPUs on each host: primaries and secondaries alike. */
export type FaultToleranceLoad = Map<string, { vms: number; vcpus: number }>;

export function addLoad(load: FaultToleranceLoad, host: string, vcpus: number): void {
  const now = load.get(host) ?? { vms: 0, vcpus: 0 };
  load.set(host, { vms: now.vms + 1, vcpus: now.vcpus + vcpus });
}

/** Why `host` cannot take one more FT VM of `vcpus` ("at the FT limit of 4 VMs per host"), or undefined when it can. */
export function limitReached(load: ReadonlyMap<string, { vms: number; vcpus: number }>, host: string, vcpus: number, limits: Readonly<FaultToleranceLimits>): string | undefined {
  const now = load.get(host) ?? { vms: 0, vcpus: 0 };
  if (now.vms + 1 > limits.maxVmsPerHost) return `${FT_LIMIT} of ${limits.maxVmsPerHost} VMs per host`;
  if (now.vcpus + vcpus > limits.maxVcpusPerHost) return `${FT_LIMIT} of ${limits.maxVcpusPerHost} vCPUs per host`;
  return undefined;
}

/** A secondary that holds resources and protects (or will): one being made, or one in lockstep. */
export function isLive(secondary: Readonly<SecondaryObservation> | undefined): secondary is SecondaryObservation {
  return secondary !== undefined && secondary.state !== "Failed";
}

/**
 * The secondary as placement sees it: the primary's size on its host. It carries none of the VM's labels or
 * rules: it holds room, not a place in anyone's anti-affinity domain. It is placed only where the VM itself
 * may run (secondaryRequest), and a VM placed beside it later that the VM is anti-affine to makes the
 * fault tolerance stage drop it (planners/cluster/fault-tolerance.ts): a secondary gives way to VMs.
 */
export function placedSecondary(secondary: Readonly<SecondaryObservation>): PlacedVm {
  return { id: secondaryId(secondary.vm), namespace: secondary.vm.slice(0, secondary.vm.indexOf("/")), labels: {}, host: secondary.host, cpu: secondary.cpu, memoryMiB: secondary.memoryMiB };
}

/**
 * The request a new secondary is placed by: the VM's size, CPU features, datastores, networks, required host
 * affinity and required VM anti-affinity — it may become the VM at any moment, so it goes only where the VM
 * may run. Not its required VM affinity, which its primary meets on the primary's host and no other host
 * could. With the primary's rack (or zone), it prefers the hosts of the others: a rack's loss then takes
 * one of the pair only.
 */
export function secondaryRequest(vm: Readonly<VirtualMachine>, primaryRack?: { key: string; value: string }): VmRequest {
  const request = requestOf(vm);
  const { hostAffinity: declared, vmAntiAffinity } = vm.spec.placement;
  const required = declared?.required;
  const preferred = primaryRack ? [{ weight: 100, preference: { matchExpressions: [{ key: primaryRack.key, operator: "NotIn" as const, values: [primaryRack.value] }] } }] : undefined;
  const hostAffinity = required || preferred ? { ...(required ? { required } : {}), ...(preferred ? { preferred } : {}) } : undefined;
  return {
    ...request,
    id: secondaryId(vmId(vm)),
    placement: {
      cluster: vm.spec.placement.cluster,
      ...(vm.spec.placement.hypervisor ? { hypervisor: vm.spec.placement.hypervisor } : {}),
      ...(hostAffinity ? { hostAffinity } : {}),
      ...(vmAntiAffinity?.required ? { vmAntiAffinity: { required: vmAntiAffinity.required } } : {}),
    },
  };
}

/** The reasons fault tolerance itself gives placement to refuse a host to one half of a pair. */
export const HOLDS_SECONDARY = "holds its fault-tolerant secondary";
export const RUNS_PRIMARY = "runs its fault-tolerant primary";
/** A secondary that moves: not back onto the host it leaves. */
export const HOLDS_SECONDARY_NOW = "holds its secondary now";
const FT_LIMIT = "at the FT limit";

export interface FaultTolerantPair {
  vm: string;
  primaryHost: string;
  secondaryHost: string;
}

/**
 * `apart` with each pair kept apart both ways: the primary never goes to its secondary's host, nor the
 * reverse. A primary whose secondary moves is kept from both of its secondaries' hosts.
 */
export function withPairsApart(apart: ReadonlyMap<string, readonly HostExclusion[]> | undefined, pairs: readonly FaultTolerantPair[]): Map<string, HostExclusion[]> {
  const next = new Map<string, HostExclusion[]>([...(apart ?? [])].map(([id, hosts]) => [id, [...hosts]]));
  for (const pair of pairs) {
    next.set(pair.vm, [...(next.get(pair.vm) ?? []), { host: pair.secondaryHost, reason: HOLDS_SECONDARY }]);
    next.set(secondaryId(pair.vm), [{ host: pair.primaryHost, reason: RUNS_PRIMARY }]);
  }
  return next;
}

/** Whether a placement refusal is fault tolerance's own rule (its pair, the per-host limits), not room. */
export function isFaultToleranceRule(reason: string): boolean {
  return reason === RUNS_PRIMARY || reason === HOLDS_SECONDARY_NOW || reason.startsWith(FT_LIMIT);
}

/** One VM's fault tolerance, as its cluster's round found it: what its status says. */
export interface FaultToleranceNote {
  state: FaultToleranceState;
  reason?: string;
  secondaryHost?: string;
}

export interface FaultToleranceView {
  status: VmFaultToleranceStatus;
  condition: ConditionInput;
}

/** What a VM's fault tolerance status is made of: its last status, the round's note, and the hosts' reports. */
export interface FaultToleranceInput {
  previous?: Readonly<VmFaultToleranceStatus>;
  note?: Readonly<FaultToleranceNote>;
  secondary?: Readonly<SecondaryObservation>;
  switchover?: Readonly<SwitchoverObservation>;
  now: number;
}

/**
 * The VM's fault tolerance as its status tells it: the round's note, the secondary as the hosts report it
 * (lag, slowdown), the switch-overs so far (counted once each, from the last one the hosts report), and
 * since when it has been without a secondary in lockstep. Undefined for a VM without fault tolerance.
 */
export function faultToleranceView(input: Readonly<FaultToleranceInput>): FaultToleranceView | undefined {
  const { previous, note, secondary, now } = input;
  if (!note) return undefined;
  const status: VmFaultToleranceStatus = { state: note.state, ...(note.reason ? { reason: note.reason } : {}) };
  const host = note.secondaryHost ?? (isLive(secondary) ? secondary.host : undefined);
  if (host) status.secondaryHost = host;
  if (note.state === "Protected" && secondary?.state === "Lockstep") Object.assign(status, lockstepFigures(secondary));
  Object.assign(status, switchoversSoFar(previous, input.switchover));
  if (note.state !== "Protected") status.unprotectedSince = previous?.state !== "Protected" && previous?.unprotectedSince ? previous.unprotectedSince : new Date(now).toISOString();
  return { status, condition: { type: "FaultTolerant", status: note.state === "Protected", reason: note.state, message: conditionMessage(status, note) } };
}

function lockstepFigures(secondary: Readonly<SecondaryObservation>): Pick<VmFaultToleranceStatus, "lagMs" | "slowdownPercent"> {
  return {
    ...(secondary.lagMs !== undefined ? { lagMs: Math.round(secondary.lagMs) } : {}),
    ...(secondary.slowdownPercent !== undefined ? { slowdownPercent: Math.round(secondary.slowdownPercent) } : {}),
  };
}

/** The switch-overs counted so far, the hosts' last one added once when it is newer than the last counted. */
function switchoversSoFar(previous: Readonly<VmFaultToleranceStatus> | undefined, switchover: Readonly<SwitchoverObservation> | undefined): Pick<VmFaultToleranceStatus, "switchovers" | "lastSwitchover"> {
  const last = previous?.lastSwitchover;
  if (switchover && (!last || Date.parse(last.time) < switchover.at)) {
    return { switchovers: (previous?.switchovers ?? 0) + 1, lastSwitchover: { from: switchover.from, to: switchover.to, time: new Date(switchover.at).toISOString() } };
  }
  return { ...(previous?.switchovers ? { switchovers: previous.switchovers } : {}), ...(last ? { lastSwitchover: { ...last } } : {}) };
}

function conditionMessage(status: Readonly<VmFaultToleranceStatus>, note: Readonly<FaultToleranceNote>): string {
  if (note.state !== "Protected") return note.reason ?? note.state;
  const lag = status.lagMs !== undefined ? `, ${status.lagMs} ms behind` : "";
  const slowed = status.slowdownPercent ? `; the FT logging link slows the primary ${status.slowdownPercent} %` : "";
  return `its secondary runs in lockstep on host ${status.secondaryHost}${lag}${slowed}${note.reason ? ` (${note.reason})` : ""}`;
}
