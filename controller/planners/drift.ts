// Drift: how what the hosts report differs from what an object's spec implies, as the JSON Patch
// (fast-json-patch `compare`) from a small "implied" document to the "observed" one. Pure: the engine
// gathers the facts, this decides what they mean. See docs/drift.md for the documents and how to read them.
//
// The documents are compact on purpose — only what an administrator can change behind Vireo's back and
// what a spec pins down — so a patch reads as a sentence ("replace /power Off") and stays small.

import jsonPatch from "fast-json-patch";
import type { ConditionInput } from "../api/conditions.ts";
import type { DriftOperation, DriftStatus, Host, VirtualMachine } from "../api/types.ts";
import type { VmObservation } from "../core/observation.ts";
import { requiredHostAffinityHolds } from "../placement/host-affinity.ts";
import type { DesiredPower } from "./run-strategy.ts";
import { hostLabels } from "../api/membership.ts";

/** At most this many operations are kept in status (the CRD's maxItems); `count` tells the rest. */
export const MAX_DRIFT_OPERATIONS = 20;

/** What a VM's spec implies, or what its host reports, in the terms drift is judged in. */
export interface VmDriftDocument {
  power?: "On" | "Off";
  /** "Allowed", or "Forbidden on HOST: why" when the VM runs on a host its required rules exclude. */
  placement?: string;
  cpu?: number;
  memoryMiB?: number;
  networks?: string[];
}

/** A host's document: the VMs a host in maintenance still holds, and the VMs no object declares. */
export interface HostDriftDocument {
  vms?: string[];
  unknownVms: string[];
}

export interface VmDriftFacts {
  vm: Readonly<VirtualMachine>;
  instance?: Readonly<VmObservation>;
  /** The power state the runStrategy asks for now. */
  want: DesiredPower;
  /** Why the instance's host is one the VM's required rules forbid, if it is. */
  forbiddenHost?: string;
}

const ALLOWED = "Allowed";

function isOn(instance: Readonly<VmObservation> | undefined): boolean {
  return instance !== undefined && (instance.power === "Starting" || instance.power === "Running");
}

/**
 * The implied and observed documents of a VM. A VM no host has registered yet is waiting for its first
 * placement, not drifted; the configuration is judged only while the VM is on (a VM that is off gets its
 * declared configuration at its next power-on).
 */
export function vmDriftDocuments(f: Readonly<VmDriftFacts>): { implied: VmDriftDocument; observed: VmDriftDocument } {
  const implied: VmDriftDocument = {};
  const observed: VmDriftDocument = {};
  const { vm, instance } = f;
  const on = isOn(instance);
  if (f.want !== "AsIs" && (instance !== undefined || f.want === "Off")) {
    implied.power = f.want;
    observed.power = on ? "On" : "Off";
  }
  if (on) {
    implied.placement = ALLOWED;
    observed.placement = f.forbiddenHost === undefined ? ALLOWED : `Forbidden on ${instance!.host}: ${f.forbiddenHost}`;
    implied.cpu = vm.spec.cpu;
    observed.cpu = instance!.config.cpu;
    implied.memoryMiB = vm.spec.memoryMiB;
    observed.memoryMiB = instance!.config.memoryMiB;
    implied.networks = vm.spec.networks.map((n) => n.name);
    observed.networks = instance!.config.nics.map((n) => n.network);
  }
  return { implied, observed };
}

/** The VM's drift: every operation of the patch from implied to observed (empty when in sync). */
export function vmDrift(f: Readonly<VmDriftFacts>): DriftOperation[] {
  if (!mayDrift(f)) return [];
  const { implied, observed } = vmDriftDocuments(f);
  return patch(implied, observed);
}

/** A cheap test that rules out drift for the common case (a VM in sync) without building documents. */
function mayDrift(f: Readonly<VmDriftFacts>): boolean {
  const { vm, instance } = f;
  const on = isOn(instance);
  if (f.want === "On" && instance !== undefined && !on) return true;
  if (f.want === "Off" && on) return true;
  if (!on) return false;
  const config = instance!.config;
  if (f.forbiddenHost !== undefined || config.cpu !== vm.spec.cpu || config.memoryMiB !== vm.spec.memoryMiB) return true;
  if (config.nics.length !== vm.spec.networks.length) return true;
  return vm.spec.networks.some((n, i) => config.nics[i]!.network !== n.name);
}

/**
 * Why the VM's required rules forbid `host`, or undefined when they allow it: another cluster's host, the
 * wrong hypervisor, or outside the required host affinity. Capacity is not a rule: a VM that fits nowhere
 * else is not moved for it.
 */
export function forbiddenHost(vm: Readonly<VirtualMachine>, host: Readonly<Host> | undefined, hostCluster: string | undefined): string | undefined {
  if (!host) return undefined;
  const placement = vm.spec.placement;
  if (hostCluster !== placement.cluster) return hostCluster === undefined ? `host is in no cluster, the VM's is ${placement.cluster}` : `host is in cluster ${hostCluster}, the VM's is ${placement.cluster}`;
  if (placement.hypervisor !== undefined && host.spec.hypervisor !== placement.hypervisor) return `hypervisor is ${host.spec.hypervisor}, the VM requires ${placement.hypervisor}`;
  if (!requiredHostAffinityHolds(placement, hostLabels(host))) return "host does not match the required host affinity";
  return undefined;
}

export interface HostDriftFacts {
  host: Readonly<Host>;
  /** VMs holding resources on the host (starting, running, stopping). */
  vmsHeld: readonly string[];
  /** VMs on the host that no object declares and that Vireo did not create. */
  unknownVms: readonly string[];
}

/** The host's drift: VMs still held while it should be in maintenance, and VMs nobody declared. */
export function hostDrift(f: Readonly<HostDriftFacts>): DriftOperation[] {
  const maintenance = f.host.spec.maintenance;
  if (f.unknownVms.length === 0 && !(maintenance && f.vmsHeld.length > 0)) return [];
  const implied: HostDriftDocument = { ...(maintenance ? { vms: [] } : {}), unknownVms: [] };
  const observed: HostDriftDocument = { ...(maintenance ? { vms: [...f.vmsHeld].sort() } : {}), unknownVms: [...f.unknownVms].sort() };
  return patch(implied, observed);
}

function patch(implied: object, observed: object): DriftOperation[] {
  return jsonPatch.compare(implied, observed).map((op) => ({ op: op.op as DriftOperation["op"], path: op.path, ...("value" in op ? { value: valueText(op.value) } : {}) }));
}

/** Strings as they are, anything else as JSON text, at most 1024 characters (the CRD's bound). */
function valueText(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length <= 1024 ? text : `${text.slice(0, 1021)}...`;
}

/** The status.drift to write: capped, with the time drift began kept from before. Undefined when in sync. */
export function driftStatus(previous: Readonly<DriftStatus> | undefined, operations: readonly DriftOperation[], now: number): DriftStatus | undefined {
  if (operations.length === 0) return undefined;
  return {
    operations: operations.slice(0, MAX_DRIFT_OPERATIONS).map((op) => ({ ...op })),
    count: operations.length,
    since: previous?.since ?? new Date(now).toISOString(),
  };
}

/** What Vireo does about the drift: correcting it (how), or cannot yet (why), or leaves it to a person. */
export type DriftResponse = { kind: "Correcting" | "CannotCorrect" | "ReportOnly"; message: string };

/**
 * The Drifted condition: present (True) only while drifted, absent once healed — like Reconciling and
 * Stalled, so an object in sync carries nothing extra and costs no write. lastTransitionTime is when the
 * drift began; the message says what differs and what Vireo does about it.
 */
export function driftedCondition(drift: Readonly<DriftStatus> | undefined, response: Readonly<DriftResponse>): ConditionInput | undefined {
  if (!drift) return undefined;
  const what = describeDrift(drift);
  const doing = response.kind === "Correcting" ? `correcting: ${response.message}` : response.kind === "CannotCorrect" ? `cannot correct yet: ${response.message}` : response.message;
  return { type: "Drifted", status: true, reason: driftReason(drift), message: `${what}; ${doing}` };
}

/** The reason of the Drifted condition: what drifted, by the first operation's field. */
export function driftReason(drift: Readonly<DriftStatus>): string {
  const field = drift.operations[0]?.path.split("/")[1] ?? "";
  switch (field) {
    case "power": return "PowerState";
    case "placement": return "Placement";
    case "cpu":
    case "memoryMiB":
    case "networks": return "Configuration";
    case "vms": return "VmsInMaintenance";
    case "unknownVms": return "UnknownVms";
    default: return "Drifted";
  }
}

/** "power Off (spec implies On), memoryMiB 4096, networks/1 +lab" — the operations in a line. */
export function describeDrift(drift: Readonly<DriftStatus>): string {
  const parts = drift.operations.map((op) => {
    const path = op.path.slice(1);
    if (op.op === "remove") return `${path} missing`;
    return op.op === "add" ? `${path} +${op.value}` : `${path} ${op.value}`;
  });
  const more = drift.count > drift.operations.length ? ` and ${drift.count - drift.operations.length} more` : "";
  return `observed ${parts.join(", ")}${more}`;
}
