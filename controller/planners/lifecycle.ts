// The VM lifecycle: what to do to bring a VM to the power state its runStrategy asks for
// (run-strategy.ts), and the status that tells the user where it stands. Pure: (desired, observed, now) -> plan.

import type { Condition, HostCluster, HostPhase, VirtualMachine, VirtualMachineStatus, VmPhase, VmStatusNetwork } from "../api/types.ts";
import { summarize, type ConditionInput } from "../api/conditions.ts";
import type { HostObservation, VmConfig, VmObservation } from "../core/observation.ts";
import { MANAGED_BY } from "../core/observation.ts";
import type { Action } from "./actions.ts";
import { monitorGuest, nextMonitoringCheck, type VmMonitoringInput } from "./ha/monitoring.ts";
import { componentProtectionResponse, type ComponentProtectionResponse } from "./ha/storage.ts";
import { INSUFFICIENT_FAILOVER_CAPACITY } from "./ha/admission.ts";
import type { VmVerdict } from "./cluster/types.ts";
import { desiredPower, endOfCurrentRun, latestExit, type DesiredPower } from "./run-strategy.ts";
import { driftStatus, driftedCondition, vmDrift, type DriftResponse } from "./drift.ts";

export interface VmSituation {
  vm: Readonly<VirtualMachine>;
  /** The VM as its host last reported it; undefined when no host knows it. */
  instance?: Readonly<VmObservation>;
  /** The phase of the host the instance is on. */
  hostPhase?: HostPhase;
  /** What the instance's host reports (its storage paths, for VM component protection). */
  hostObserved?: Readonly<HostObservation>;
  /** Why the VM's required rules forbid the host it is on (moved there behind Vireo's back), if they do. */
  forbiddenHost?: string;
  cluster?: Readonly<HostCluster>;
  /** The MACs of the VM's networks, as assigned. */
  networks: readonly VmStatusNetwork[];
  /** The cluster planner's latest word on the VM: why it waits, is held back, or is being moved. */
  verdict?: VmVerdict;
  /** Set while the VM is to start from its replica in `cluster`: its original is the recovery's to stop or fence. */
  recovering?: { cluster: string };
  /** Its lease (`spec.lease`), unless exempt: when it expires, and what happens then. */
  lease?: { expiresAt: number; onExpiry: "Stop" | "Delete" };
  /** Its replication, as its status reports it, and the Replicated condition. */
  replication?: { status: NonNullable<VirtualMachineStatus["replication"]>; condition?: ConditionInput };
  /** Its fault tolerance, as its status reports it, and the FaultTolerant condition. */
  faultTolerance?: { status: NonNullable<VirtualMachineStatus["faultTolerance"]>; condition: ConditionInput };
  /** HA's side: whether the VM is protected, its last failover, its VM monitoring settings. */
  ha?: {
    protected?: boolean;
    lastFailover?: VirtualMachineStatus["lastFailover"];
    monitoring?: VmMonitoringInput;
  };
  now: number;
}

/** An action, and the event that tells of it once applied. */
export interface VmStep {
  action: Action;
  event: { type: "Normal" | "Warning"; reason: string };
}

export interface VmPlan {
  steps: VmStep[];
  status: VirtualMachineStatus;
  /** True when the VM should run and has no host: the cluster's next placement round takes it. */
  needsPlacement: boolean;
  /** When the plan changes with time alone (a heartbeat deadline, a grace period, a VMCP response), if it does. */
  wakeAt?: number;
}

/**
 * How long a guest gets to shut down when asked before it is powered off: KubeVirt's default
 * terminationGracePeriodSeconds. A hung guest would otherwise hold its VM in Stopping for ever.
 */
export const SHUTDOWN_GRACE_MS = 180_000;

const STOP_REASON_HALTED = "runStrategy is Halted";

/** The configuration the VM should run with on `hostFeatures`, from its spec and its cluster's CPU baseline. */
export function desiredConfig(
  vm: Readonly<VirtualMachine>,
  networks: readonly VmStatusNetwork[],
  cluster: Readonly<HostCluster> | undefined,
  hostFeatures: readonly string[],
): VmConfig {
  const baseline = cluster?.spec.cpuBaseline?.features;
  return {
    cpu: vm.spec.cpu,
    memoryMiB: vm.spec.memoryMiB,
    cpuFeatures: [...(baseline ?? hostFeatures)].sort(),
    disks: vm.spec.disks.map((d) => ({ name: d.name, sizeGiB: d.sizeGiB, datastore: d.datastore })),
    // A NIC that names no model gets its platform's paravirtual one: absent here, as the hosts read it.
    nics: networks.map((n, i) => {
      const model = vm.spec.networks[i]?.name === n.name ? vm.spec.networks[i]?.model : undefined;
      return { network: n.name, macAddress: n.macAddress, ...(model ? { model } : {}) };
    }),
    ...(vm.spec.firmware ? { firmware: vm.spec.firmware } : {}),
    workload: {
      profile: vm.spec.workload?.profile ?? "Steady",
      cpuPercent: vm.spec.workload?.cpuPercent ?? 20,
      ...(vm.spec.workload?.dirtyRateMiBps !== undefined ? { dirtyRateMiBps: vm.spec.workload.dirtyRateMiBps } : {}),
      ...(vm.spec.workload?.diskWriteRateMiBps !== undefined ? { diskWriteRateMiBps: vm.spec.workload.diskWriteRateMiBps } : {}),
    },
    managedBy: MANAGED_BY,
  };
}

/** What differs between the running configuration and the declared one that only a power cycle applies. */
export function configChanges(vm: Readonly<VirtualMachine>, networks: readonly VmStatusNetwork[], running: Readonly<VmConfig>): string[] {
  const changes: string[] = [];
  if (running.cpu !== vm.spec.cpu) changes.push(`cpu ${running.cpu}→${vm.spec.cpu}`);
  if (running.memoryMiB !== vm.spec.memoryMiB) changes.push(`memory ${running.memoryMiB}→${vm.spec.memoryMiB} MiB`);
  const nics = (list: readonly { network: string; macAddress: string }[]) => list.map((n) => `${n.network}=${n.macAddress}`).join(",");
  const wantedNics = networks.map((n) => ({ network: n.name, macAddress: n.macAddress }));
  if (nics(running.nics) !== nics(wantedNics)) changes.push("networks");
  const disks = (list: readonly { name: string; sizeGiB: number; datastore: string }[]) => list.map((d) => `${d.name}:${d.sizeGiB}@${d.datastore}`).join(",");
  if (disks(running.disks) !== disks(vm.spec.disks)) changes.push("disks");
  return changes;
}

export function planVm(s: Readonly<VmSituation>): VmPlan {
  const { vm, instance } = s;
  const expired = s.lease !== undefined && s.now >= s.lease.expiresAt ? s.lease : undefined;
  const want = expired ? "Off" : desiredPower(vm, instance);
  const on = instance !== undefined && instance.power !== "Off";
  const actions: Action[] = [];
  let progress: Progress;

  if (!s.cluster) {
    progress = { phase: on ? phaseOf(instance) : "Pending", ready: false, stalled: { reason: "ClusterNotFound", message: `HostCluster ${vm.spec.placement.cluster} does not exist` } };
  } else if (s.recovering && want === "On") {
    progress = recoveringProgress(s);
  } else if (expired) {
    progress = leaseExpired(s, expired.onExpiry, actions);
  } else if (want === "Off") {
    progress = planOff(s, actions);
  } else if (want === "AsIs") {
    const settled = !on || instance.power === "Running";
    progress = { phase: on ? phaseOf(instance) : "Stopped", ready: settled, reason: on ? "ManualRunning" : "ManualStopped", message: "runStrategy is Manual: Vireo leaves the power state alone" };
  } else {
    progress = planOn(s, actions);
  }

  const vmcp = componentProtection(s);
  const steps: VmStep[] = actions.map((action) => ({ action, event: eventOf(action) }));
  if (vmcp && s.now >= vmcp.dueAt && !actions.some((a) => a.type === "Stop" && a.mode === "PowerOff")) {
    const reason = `VM component protection: all paths down to datastore ${vmcp.datastores.join(", ")} on host ${instance!.host} since ${new Date(vmcp.allPathsDownSince).toISOString()}`;
    steps.unshift({ action: { type: "Stop", vm: idOf(vm), mode: "PowerOff", reason }, event: { type: "Warning", reason: "ComponentProtectionTerminated" } });
  }
  const wakeAt = nextLook(s, vmcp?.dueAt);
  return {
    steps,
    needsPlacement: progress.needsPlacement === true,
    status: statusOf(s, progress, want, actions),
    ...(wakeAt !== undefined ? { wakeAt } : {}),
  };
}

/**
 * VM component protection: a protected VM frozen by all paths down on a host that still answers is
 * terminated there once the APD timeout and response delay have passed; HA then restarts it elsewhere.
 */
function componentProtection(s: Readonly<VmSituation>): ComponentProtectionResponse | undefined {
  const answers = s.hostPhase === "Ready" || s.hostPhase === "EnteringMaintenance" || s.hostPhase === "Maintenance";
  return s.ha?.protected && answers ? componentProtectionResponse(s.instance, s.hostObserved) : undefined;
}

/** A guest's heartbeat ages, a grace period runs out, a VMCP response falls due: without any report changing. */
function nextLook(s: Readonly<VmSituation>, vmcpDueAt: number | undefined): number | undefined {
  const check = s.ha?.monitoring && s.instance ? nextMonitoringCheck(s.instance, s.ha.monitoring, s.now) : undefined;
  // A Manual VM is never powered off by Vireo: its grace period ends with nothing to do.
  const grace = desiredPower(s.vm, s.instance) === "AsIs" ? undefined : shutdownGraceEndsAt(s.instance);
  const lease = s.lease !== undefined && s.lease.expiresAt > s.now ? s.lease.expiresAt : Infinity;
  const wake = Math.min(check ?? Infinity, lease, vmcpDueAt !== undefined && vmcpDueAt > s.now ? vmcpDueAt : Infinity, grace !== undefined && grace > s.now ? grace : Infinity);
  return wake === Infinity ? undefined : wake;
}

function eventOf(action: Readonly<Action>): VmStep["event"] {
  return action.type === "ResetVm" ? { type: "Warning", reason: "VmMonitoringReset" } : { type: "Normal", reason: "Stopping" };
}

interface Progress {
  phase: VmPhase;
  ready: boolean;
  reason?: string;
  message?: string;
  stalled?: { reason: string; message: string };
  needsPlacement?: boolean;
  /** What is being done about drift when another planner acts (the cluster's evacuation). */
  correcting?: string;
  /** VM monitoring's count of resets, when this plan resets the VM. */
  monitoringResets?: VirtualMachineStatus["monitoringResets"];
}

/** A VM recovering from its replica: the cluster it recovers into starts it, once its original is fenced. */
function recoveringProgress(s: Readonly<VmSituation>): Progress {
  const verdict = s.verdict;
  const on = s.instance !== undefined && s.instance.power !== "Off";
  const phase = on ? phaseOf(s.instance!) : "Pending";
  if (verdict?.kind === "RestartFailed") return { phase: "Failed", ready: false, stalled: { reason: "RestartFailed", message: verdict.message } };
  if (verdict?.kind === "Waiting") return { phase, ready: false, reason: verdict.reason, message: verdict.message, needsPlacement: true };
  return { phase, ready: false, reason: "Recovering", message: `recovering from its replica into cluster ${s.recovering!.cluster}`, needsPlacement: true };
}

/**
 * The VM's lease ran out: it is stopped, and with onExpiry Delete removed from its host too. (Deleting
 * the object is the API mode's; a manifest in the file mode stays until someone removes it.)
 */
function leaseExpired(s: Readonly<VmSituation>, onExpiry: "Stop" | "Delete", actions: Action[]): Progress {
  const at = new Date(s.lease!.expiresAt).toISOString();
  const off = !s.instance || s.instance.power === "Off";
  if (!off) {
    const stopping = planOff(s, actions);
    return { ...stopping, reason: "LeaseExpired", message: `the lease expired at ${at}: stopping` };
  }
  if (onExpiry === "Delete" && s.instance) actions.push({ type: "Remove", vm: idOf(s.vm), reason: `the lease expired at ${at}` });
  return { phase: "Stopped", ready: true, reason: "LeaseExpired", message: `the lease expired at ${at}: ${onExpiry === "Delete" ? "removed from its host" : "stopped"}; renew spec.lease.ttl to run it again` };
}

function planOff(s: Readonly<VmSituation>, actions: Action[]): Progress {
  const { vm, instance } = s;
  const ended = endOfCurrentRun(vm, instance);
  if (!instance || instance.power === "Off") {
    const reason = vm.spec.runStrategy === "Halted" ? "Halted" : "Completed";
    const message = vm.spec.runStrategy === "Halted" ? "stopped, as runStrategy Halted asks" : `run ended (${ended?.reason ?? "stopped"}); runStrategy ${vm.spec.runStrategy} leaves it off`;
    return { phase: "Stopped", ready: true, reason, message };
  }
  if (instance.power !== "Stopping") {
    actions.push({ type: "Stop", vm: idOf(vm), mode: "Shutdown", reason: STOP_REASON_HALTED });
  } else {
    powerOffWhenGraceIsOver(s, actions);
  }
  return { phase: "Stopping", ready: false, reason: "Stopping", message: `shutting down on ${instance.host}` };
}

function planOn(s: Readonly<VmSituation>, actions: Action[]): Progress {
  const { vm, instance } = s;
  const verdict = s.verdict;
  if (verdict?.kind === "RestartFailed") return { phase: "Failed", ready: false, stalled: { reason: "RestartFailed", message: verdict.message } };
  if (verdict?.kind === "Waiting") return { phase: "Pending", ready: false, reason: verdict.reason, message: verdict.message };
  if (verdict?.kind === "NotAdmitted") return { phase: "Pending", ready: false, reason: INSUFFICIENT_FAILOVER_CAPACITY, message: verdict.message };
  // A conversion shuts it down, converts it and starts it on another hypervisor type: this says so.
  if (verdict?.kind === "Converting" && (!instance || instance.power === "Off" || instance.power === "Stopping")) {
    if (instance?.power === "Stopping") powerOffWhenGraceIsOver(s, actions);
    return { phase: instance?.power === "Stopping" ? "Stopping" : "Migrating", ready: false, reason: "Converting", message: verdict.message, correcting: verdict.message };
  }
  if (!instance || instance.power === "Off") {
    if (verdict?.kind === "Unschedulable") return { phase: "Unschedulable", ready: false, stalled: { reason: "Unschedulable", message: verdict.message }, needsPlacement: true };
    return { phase: "Pending", ready: false, reason: "Scheduling", message: "waiting for a host", needsPlacement: true };
  }
  if (instance.power === "Stopping") {
    powerOffWhenGraceIsOver(s, actions);
    return { phase: "Stopping", ready: false, reason: "Restarting", message: `stopping on ${instance.host} before it starts again` };
  }
  // The cluster moves it: cold (its evacuation stage shuts it down), or live; this says so.
  if (verdict?.kind === "Evacuating" && verdict.cold) return { phase: "Stopping", ready: false, reason: "Evacuating", message: verdict.message, correcting: `shutting down (${verdict.message}: moving the VM (cold))` };
  if (verdict?.kind === "Migrating") return { phase: "Migrating", ready: true, reason: "Migrating", message: verdict.message };
  if (s.forbiddenHost) {
    actions.push({ type: "Stop", vm: idOf(vm), mode: "Shutdown", onHost: instance.host, reason: `its rules forbid host ${instance.host} (${s.forbiddenHost}): moving the VM (cold)` });
    return { phase: "Stopping", ready: false, reason: "Misplaced", message: `shutting down on host ${instance.host} to move it to a host its rules allow` };
  }
  const changes = configChanges(vm, s.networks, instance.config);
  if (changes.length > 0) {
    actions.push({ type: "Stop", vm: idOf(vm), mode: "Shutdown", reason: `spec changed (${changes.join(", ")}): a power cycle applies it` });
    return { phase: "Stopping", ready: false, reason: "Reconfiguring", message: `spec changed (${changes.join(", ")})` };
  }
  if (instance.power === "Starting") return { phase: "Starting", ready: false, reason: "Starting", message: `booting on ${instance.host}` };
  if (s.hostPhase !== undefined && s.hostPhase !== "Ready" && s.hostPhase !== "EnteringMaintenance") {
    return { phase: "Running", ready: false, reason: "HostNotReady", message: `host ${instance.host} is ${s.hostPhase}` };
  }
  if (s.ha?.monitoring) {
    const verdict = monitorGuest(instance, vm.status?.monitoringResets, s.ha.monitoring, s.now);
    if (verdict.kind === "Reset") {
      actions.push({ type: "ResetVm", vm: idOf(vm), key: verdict.key, reason: verdict.message });
      return { phase: "Starting", ready: false, reason: "GuestHeartbeatLost", message: verdict.message, monitoringResets: verdict.resets };
    }
    if (verdict.kind === "GiveUp") return { phase: "Failed", ready: false, stalled: { reason: "ResetLimitReached", message: verdict.message } };
  }
  if (verdict?.kind === "Evacuating") return { phase: "Running", ready: true, reason: "WaitingToEvacuate", message: verdict.message };
  if (verdict?.kind === "EvacuationBlocked") return { phase: "Running", ready: true, reason: "EvacuationBlocked", message: verdict.message };
  return { phase: "Running", ready: true, reason: "Running", message: `running on ${instance.host}` };
}

/** A guest still shutting down after the grace period is powered off (the host does it; it answers). */
function powerOffWhenGraceIsOver(s: Readonly<VmSituation>, actions: Action[]): void {
  const instance = s.instance!;
  if (s.now - instance.since < SHUTDOWN_GRACE_MS) return;
  actions.push({ type: "Stop", vm: idOf(s.vm), mode: "PowerOff", reason: `the guest did not shut down within ${SHUTDOWN_GRACE_MS / 1000} s` });
}

/** When a Stopping VM's grace period runs out, if it is Stopping. */
export function shutdownGraceEndsAt(instance: Readonly<VmObservation> | undefined): number | undefined {
  return instance?.power === "Stopping" ? instance.since + SHUTDOWN_GRACE_MS : undefined;
}

function phaseOf(instance: Readonly<VmObservation>): VmPhase {
  switch (instance.power) {
    case "Starting": return "Starting";
    case "Running": return "Running";
    case "Stopping": return "Stopping";
    case "Off": return "Stopped";
  }
}

function statusOf(s: Readonly<VmSituation>, p: Progress, want: DesiredPower, actions: readonly Action[]): VirtualMachineStatus {
  const { vm, instance } = s;
  const previous = vm.status ?? {};
  const generation = vm.metadata.generation;
  const status: VirtualMachineStatus = { observedGeneration: generation, phase: p.phase };
  const on = instance !== undefined && instance.power !== "Off";
  if (on) status.host = instance.host;
  if (s.networks.length > 0) status.networks = s.networks.map((n) => ({ ...n }));

  // A new run: remember when it began; a restart after an exit the VM did not ask for counts.
  const previousStart = previous.startedAt ? Date.parse(previous.startedAt) : undefined;
  const runStart = on && instance.poweredOnAt !== undefined ? instance.poweredOnAt : previousStart;
  let restarts = previous.restarts ?? 0;
  const exit = latestExit(vm, instance);
  if (on && runStart !== undefined && previousStart !== undefined && runStart > previousStart && exit && exit.at >= previousStart) restarts++;
  if (runStart !== undefined) status.startedAt = new Date(runStart).toISOString();
  if (restarts > 0) status.restarts = restarts;
  if (exit) status.lastExit = { reason: exit.reason, time: new Date(exit.at).toISOString() };
  const lastFailover = s.ha?.lastFailover ?? previous.lastFailover;
  if (lastFailover) status.lastFailover = { ...lastFailover };
  const resets = p.monitoringResets ?? resetsInWindow(previous.monitoringResets, s.ha?.monitoring, s.now);
  if (resets) status.monitoringResets = { ...resets };

  const message = p.stalled?.message ?? p.message ?? "";
  // A recovering VM's original is not drift from its recovered spec: it is on its way out.
  // Nor is a VM off while it is converted: that is the plan, not drift.
  const drift = s.recovering || s.verdict?.kind === "Converting" ? undefined : driftStatus(previous.drift, vmDrift({ vm, ...(instance ? { instance } : {}), want, ...(s.forbiddenHost ? { forbiddenHost: s.forbiddenHost } : {}) }), s.now);
  if (drift) status.drift = drift;
  if (s.replication) status.replication = s.replication.status;
  if (s.faultTolerance) status.faultTolerance = s.faultTolerance.status;
  status.conditions = summarize(previous.conditions as Condition[] | undefined, {
    ready: p.ready,
    reason: p.reason ?? p.phase,
    message: p.message ?? "",
    ...(p.stalled ? { stalled: p.stalled } : {}),
    conditions: [
      { type: "Placed", status: on, reason: on ? "Placed" : p.stalled?.reason ?? "NotPlaced", message: on ? `on host ${instance.host}` : message },
      driftedCondition(drift, driftResponse(p, actions)),
      baselinePending(s),
      s.replication?.condition,
      s.faultTolerance?.condition,
    ],
  }, new Date(s.now).toISOString(), generation);
  return status;
}

/** VM monitoring's resets while its window lasts and monitoring is on; gone after, as the count starts again. */
function resetsInWindow(resets: VirtualMachineStatus["monitoringResets"], monitoring: VmMonitoringInput | undefined, now: number): VirtualMachineStatus["monitoringResets"] {
  if (!resets || !monitoring) return undefined;
  return now - Date.parse(resets.windowStart) < monitoring.resetWindowMs ? resets : undefined;
}

/**
 * BEHAVIOUR.md, Live migration: a changed cpuBaseline reaches a running guest only at its next power-on;
 * until then it sees the features it booted with, and its migrations are judged by those.
 */
function baselinePending(s: Readonly<VmSituation>): ConditionInput | undefined {
  const baseline = s.cluster?.spec.cpuBaseline?.features;
  const seen = s.instance && s.instance.power !== "Off" ? s.instance.config.cpuFeatures : undefined;
  if (!baseline || !seen) return undefined;
  const wanted = [...baseline].sort();
  if (wanted.join(",") === [...seen].sort().join(",")) return undefined;
  return { type: "PowerCycleNeeded", status: true, reason: "CPUBaselineChanged", message: `the cluster's cpuBaseline is [${wanted.join(", ")}]; the guest sees [${seen.join(", ")}] until it is powered off and on` };
}

/** Reasons a VM waits for capacity: Vireo cannot correct its drift until capacity returns. */
const WAITS_FOR_CAPACITY: ReadonlySet<string> = new Set(["InsufficientCapacity", "InsufficientFailoverCapacity"]);

/** What Vireo does about the VM's drift, from the progress of this plan. */
function driftResponse(p: Progress, actions: readonly Action[]): DriftResponse {
  if (p.stalled) return { kind: "CannotCorrect", message: p.stalled.message };
  if (p.reason !== undefined && WAITS_FOR_CAPACITY.has(p.reason)) return { kind: "CannotCorrect", message: p.message ?? p.reason };
  if (p.correcting) return { kind: "Correcting", message: p.correcting };
  const action = actions[0];
  if (action?.type === "Stop") return { kind: "Correcting", message: action.mode === "PowerOff" ? "powering off" : `shutting down (${action.reason})` };
  if (p.reason === "ManualRunning" || p.reason === "ManualStopped") return { kind: "ReportOnly", message: "runStrategy is Manual: Vireo does not change the power state" };
  return { kind: "Correcting", message: p.message ?? p.reason ?? p.phase };
}

function idOf(vm: Readonly<VirtualMachine>): string {
  return `${vm.metadata.namespace ?? "default"}/${vm.metadata.name}`;
}
