// The per-VM planner as a pure function: one table of situations (a VM, how its host reports it, the
// cluster's verdict on it, the time) and what planVm must decide — the phase, the Ready, Reconciling and
// Stalled conditions, the steps (actions with their events), whether the VM waits for placement, and when
// to look again. First every runStrategy against every state of the instance, then the special cases.

import { test } from "node:test";
import assert from "node:assert/strict";
import type { HostCluster, HostPhase, RunStrategy, VirtualMachine, VmExitReason, VmPhase } from "../../controller/api/types.ts";
import type { HostObservation, VmObservation } from "../../controller/core/observation.ts";
import type { VmVerdict } from "../../controller/planners/cluster/types.ts";
import { protectionOf } from "../../controller/planners/ha/protection.ts";
import { APD_TIMEOUT_MS, VMCP_RESPONSE_DELAY_MS } from "../../controller/planners/ha/storage.ts";
import { SHUTDOWN_GRACE_MS, planVm, type VmPlan, type VmSituation } from "../../controller/planners/lifecycle.ts";
import { T0, clusterObject, hostObject, hostReport, networksOf, vmObject, vmReport } from "../support/objects.ts";

const NOW = T0 + 3_600_000;
const iso = (ms: number) => new Date(ms).toISOString();
const HOST = hostObject("h1");
/** When the VMs that are shutting down in the matrix began to. */
const STOPPING_SINCE = NOW - 10_000;

// ------------------------------------------------------------------ situations

interface VmWorld {
  vm: VirtualMachine;
  instance?: VmObservation;
  /** The phase of the instance's host; Ready by default. */
  hostPhase?: HostPhase;
  hostObserved?: HostObservation;
  forbiddenHost?: string;
  /** The VM's cluster; null when it does not exist. */
  cluster?: HostCluster | null;
  verdict?: VmVerdict;
  /** Whether HA protects the VM; as protectionOf says (no policy, HA on) by default. */
  protected?: boolean;
}

/** What the engine's situationOf() makes of it. */
function situation(w: VmWorld): VmSituation {
  const cluster = w.cluster === null ? undefined : w.cluster ?? clusterObject();
  const isProtected = w.protected ?? protectionOf(w.vm, [], cluster).protected;
  return {
    vm: w.vm,
    ...(w.instance ? { instance: w.instance, hostPhase: w.hostPhase ?? "Ready", hostObserved: w.hostObserved ?? hostReport(HOST, { at: NOW - 2_000, vms: [w.instance] }) } : {}),
    ...(w.forbiddenHost ? { forbiddenHost: w.forbiddenHost } : {}),
    ...(cluster ? { cluster } : {}),
    networks: networksOf(w.vm),
    ...(w.verdict ? { verdict: w.verdict } : {}),
    ha: { protected: isProtected },
    now: NOW,
  };
}

const OFF_STATES = ["Off after GuestShutdown", "Off after Crashed", "Off after ManualPowerOff"] as const;
type InstanceState = "none" | "Starting" | "Running" | "Stopping" | (typeof OFF_STATES)[number];
const STATES: readonly InstanceState[] = ["none", "Starting", "Running", "Stopping", ...OFF_STATES];

/** A VM of `runStrategy` whose instance is in `state`; a VM shown off ran from an hour ago until a minute ago. */
function vmIn(runStrategy: RunStrategy, state: InstanceState): VmWorld {
  const off = state.startsWith("Off after ");
  const vm = vmObject("vm", { runStrategy, ...(off ? { status: { startedAt: iso(NOW - 3_600_000) } } : {}) });
  switch (state) {
    case "none": return { vm };
    case "Starting": return { vm, instance: vmReport(vm, "h1", "Starting", { since: NOW - 10_000 }) };
    case "Running": return { vm, instance: vmReport(vm, "h1", "Running", { since: NOW - 600_000 }) };
    case "Stopping": return { vm, instance: vmReport(vm, "h1", "Stopping", { since: STOPPING_SINCE, poweredOnAt: NOW - 600_000 }) };
    default: {
      const reason = state.slice("Off after ".length) as VmExitReason;
      return { vm, instance: vmReport(vm, "h1", "Off", { since: NOW - 60_000, lastExit: { reason, at: NOW - 60_000 } }) };
    }
  }
}

// ------------------------------------------------------------------ expectations

interface Expect {
  phase: VmPhase;
  /** "Ready=<status>/<reason>", then "Reconciling=…" and "Stalled=…" when present; undefined: not checked. */
  conditions?: string;
  /** Every step: "<Type>[ <mode>] <event type>/<event reason>". */
  steps?: string[];
  needsPlacement?: boolean;
  wakeAt?: number;
  also?: (plan: VmPlan, s: VmSituation) => void;
}

const WAITS_FOR_HOST: Expect = { phase: "Pending", conditions: "Ready=False/Scheduling Reconciling=True/Scheduling", needsPlacement: true };
const STARTING: Expect = { phase: "Starting", conditions: "Ready=False/Starting Reconciling=True/Starting" };
const RUNNING: Expect = { phase: "Running", conditions: "Ready=True/Running" };
const RESTARTING: Expect = { phase: "Stopping", conditions: "Ready=False/Restarting Reconciling=True/Restarting", wakeAt: STOPPING_SINCE + SHUTDOWN_GRACE_MS };
const COMPLETED: Expect = { phase: "Stopped", conditions: "Ready=True/Completed" };
const MANUAL_STOPPED: Expect = { phase: "Stopped", conditions: "Ready=True/ManualStopped" };
const MANUAL_RUNNING: Expect = { phase: "Running", conditions: "Ready=True/ManualRunning" };
const HALTED: Expect = { phase: "Stopped", conditions: "Ready=True/Halted" };
const SHUT_DOWN: Expect = { phase: "Stopping", conditions: "Ready=False/Stopping Reconciling=True/Stopping", steps: ["Stop Shutdown Normal/Stopping"] };
const HALTED_STOPPING: Expect = { phase: "Stopping", conditions: "Ready=False/Stopping Reconciling=True/Stopping", wakeAt: STOPPING_SINCE + SHUTDOWN_GRACE_MS };

/** runStrategy × the instance's state. */
const MATRIX: Record<RunStrategy, Record<InstanceState, Expect>> = {
  Always: {
    none: WAITS_FOR_HOST, Starting: STARTING, Running: RUNNING, Stopping: RESTARTING,
    "Off after GuestShutdown": WAITS_FOR_HOST, "Off after Crashed": WAITS_FOR_HOST, "Off after ManualPowerOff": WAITS_FOR_HOST,
  },
  RerunOnFailure: {
    none: WAITS_FOR_HOST, Starting: STARTING, Running: RUNNING, Stopping: RESTARTING,
    "Off after GuestShutdown": COMPLETED, "Off after Crashed": WAITS_FOR_HOST, "Off after ManualPowerOff": WAITS_FOR_HOST,
  },
  Once: {
    none: WAITS_FOR_HOST, Starting: STARTING, Running: RUNNING, Stopping: RESTARTING,
    "Off after GuestShutdown": COMPLETED, "Off after Crashed": COMPLETED, "Off after ManualPowerOff": COMPLETED,
  },
  Manual: {
    none: MANUAL_STOPPED,
    Starting: { phase: "Starting", conditions: "Ready=False/ManualRunning Reconciling=True/ManualRunning" },
    Running: MANUAL_RUNNING,
    // Vireo never powers a Manual VM off: the end of the grace period is no reason to look again.
    Stopping: { phase: "Stopping", conditions: "Ready=False/ManualRunning Reconciling=True/ManualRunning" },
    "Off after GuestShutdown": MANUAL_STOPPED, "Off after Crashed": MANUAL_STOPPED, "Off after ManualPowerOff": MANUAL_STOPPED,
  },
  Halted: {
    none: HALTED, Starting: SHUT_DOWN, Running: SHUT_DOWN, Stopping: HALTED_STOPPING,
    "Off after GuestShutdown": HALTED, "Off after Crashed": HALTED, "Off after ManualPowerOff": HALTED,
  },
};

interface Case {
  name: string;
  world: () => VmWorld;
  expect: Expect;
}

const matrixCases: Case[] = (Object.keys(MATRIX) as RunStrategy[]).flatMap((strategy) =>
  STATES.map((state) => ({ name: `runStrategy ${strategy}, instance ${state}`, world: () => vmIn(strategy, state), expect: MATRIX[strategy][state] })));

const FAILED_HOST_WAIT: VmVerdict = { kind: "Waiting", reason: "WaitingForLeaseExpiry", until: NOW + 50_000, message: "waiting until …, when host h1's lease on the VM's disks has expired" };
const APD_SINCE_DUE_IN_20S = NOW - (APD_TIMEOUT_MS + VMCP_RESPONSE_DELAY_MS) + 20_000;
const APD_SINCE_DUE_NOW = NOW - (APD_TIMEOUT_MS + VMCP_RESPONSE_DELAY_MS);
const running = (vm = vmObject("vm")): VmWorld => ({ vm, instance: vmReport(vm, "h1", "Running", { since: NOW - 600_000 }) });
const inApd = (since: number, w: VmWorld = running()): VmWorld => ({ ...w, hostObserved: hostReport(HOST, { at: NOW - 2_000, vms: [w.instance!], allPathsDown: { shared: since } }) });
const stoppingSince = (since: number, runStrategy: RunStrategy = "Always"): VmWorld => {
  const vm = vmObject("vm", { runStrategy });
  return { vm, instance: vmReport(vm, "h1", "Stopping", { since, poweredOnAt: NOW - 3_600_000 }) };
};

const specialCases: Case[] = [
  {
    name: "a Waiting verdict (a VM of a failed host) keeps the VM Pending with the verdict's reason and message, and places nothing",
    world: () => ({ ...running(), hostPhase: "Failed", verdict: FAILED_HOST_WAIT }),
    expect: { phase: "Pending", conditions: "Ready=False/WaitingForLeaseExpiry Reconciling=True/WaitingForLeaseExpiry", also: (plan) => assert.equal(readyOf(plan)?.message, FAILED_HOST_WAIT.message) },
  },
  {
    name: "a NotAdmitted verdict keeps the VM Pending with reason InsufficientFailoverCapacity",
    world: () => ({ vm: vmObject("vm"), verdict: { kind: "NotAdmitted", ownReason: false, message: "admission control (HostFailuresToTolerate 1): …" } }),
    expect: { phase: "Pending", conditions: "Ready=False/InsufficientFailoverCapacity Reconciling=True/InsufficientFailoverCapacity" },
  },
  {
    name: "a NotAdmitted verdict refused on its own account is still Pending, not Stalled: capacity that arrives admits it",
    world: () => ({ vm: vmObject("vm"), verdict: { kind: "NotAdmitted", ownReason: true, message: "… refused on its own, whatever else waits" } }),
    expect: { phase: "Pending", conditions: "Ready=False/InsufficientFailoverCapacity Reconciling=True/InsufficientFailoverCapacity" },
  },
  {
    name: "an Unschedulable verdict makes the VM Unschedulable and Stalled, still waiting for placement",
    world: () => ({ vm: vmObject("vm"), verdict: { kind: "Unschedulable", message: "0/3 hosts fit: 3 insufficient memory" } }),
    expect: { phase: "Unschedulable", conditions: "Ready=False/Unschedulable Stalled=True/Unschedulable", needsPlacement: true, also: (plan) => assert.equal(readyOf(plan)?.message, "0/3 hosts fit: 3 insufficient memory") },
  },
  {
    name: "a RestartFailed verdict makes the VM Failed and Stalled",
    world: () => ({ ...vmIn("Always", "Off after Crashed"), verdict: { kind: "RestartFailed", message: "restart failed 5 times" } }),
    expect: { phase: "Failed", conditions: "Ready=False/RestartFailed Stalled=True/RestartFailed" },
  },
  {
    name: "an Evacuating verdict says Stopping, reason Evacuating, with no action of its own: the cluster shuts it down",
    world: () => ({ ...running(), hostPhase: "EnteringMaintenance", verdict: { kind: "Evacuating", host: "h1", message: "host h1 is in maintenance", cold: true } }),
    expect: { phase: "Stopping", conditions: "Ready=False/Evacuating Reconciling=True/Evacuating", steps: [] },
  },
  {
    name: "a spec change (more vCPUs than it runs with) shuts the VM down to apply it: reason Reconfiguring",
    world: () => {
      const vm = vmObject("vm", { cpu: 4 });
      return { vm, instance: vmReport(vm, "h1", "Running", { since: NOW - 600_000, runningAs: vmObject("vm", { cpu: 2 }) }) };
    },
    expect: { phase: "Stopping", conditions: "Ready=False/Reconfiguring Reconciling=True/Reconfiguring", steps: ["Stop Shutdown Normal/Stopping"], also: (plan) => assert.equal(plan.steps[0]!.action.reason, "spec changed (cpu 2→4): a power cycle applies it") },
  },
  {
    name: "a VM on a host its required rules forbid is shut down to be moved: reason Misplaced",
    world: () => ({ ...running(), forbiddenHost: "host does not match the required host affinity" }),
    expect: {
      phase: "Stopping",
      conditions: "Ready=False/Misplaced Reconciling=True/Misplaced",
      steps: ["Stop Shutdown Normal/Stopping"],
      also: (plan) => assert.equal(plan.steps[0]!.action.reason, "its rules forbid host h1 (host does not match the required host affinity): moving the VM (cold)"),
    },
  },
  {
    name: "a guest still shutting down 1 ms before its 180 s grace ends gets no action, and a wake at the grace end",
    world: () => stoppingSince(NOW - SHUTDOWN_GRACE_MS + 1),
    expect: { ...RESTARTING, wakeAt: NOW + 1 },
  },
  {
    name: "a guest still shutting down when its 180 s grace ends is powered off",
    world: () => stoppingSince(NOW - SHUTDOWN_GRACE_MS),
    expect: { ...RESTARTING, wakeAt: undefined, steps: ["Stop PowerOff Normal/Stopping"], also: (plan) => assert.equal(plan.steps[0]!.action.reason, "the guest did not shut down within 180 s") },
  },
  {
    name: "a Halted VM still shutting down when its grace ends is powered off too",
    world: () => stoppingSince(NOW - SHUTDOWN_GRACE_MS - 5_000, "Halted"),
    expect: { ...HALTED_STOPPING, wakeAt: undefined, steps: ["Stop PowerOff Normal/Stopping"] },
  },
  {
    // Conditions not asserted: VMCP acts beside the lifecycle, which reads the frozen VM as running and Ready.
    name: "a protected VM whose datastore is in all paths down on a Ready host gets no action before APD timeout + response delay, and a wake then",
    world: () => inApd(APD_SINCE_DUE_IN_20S),
    expect: { phase: "Running", steps: [], wakeAt: NOW + 20_000 },
  },
  {
    name: "a protected VM whose datastore is in all paths down is powered off once APD timeout + response delay (320 s) have passed: ComponentProtectionTerminated",
    world: () => inApd(APD_SINCE_DUE_NOW),
    expect: {
      phase: "Running",
      steps: ["Stop PowerOff Warning/ComponentProtectionTerminated"],
      also: (plan) => assert.equal(plan.steps[0]!.action.reason, `VM component protection: all paths down to datastore shared on host h1 since ${iso(APD_SINCE_DUE_NOW)}`),
    },
  },
  {
    name: "an unprotected VM in all paths down is left alone: no action, no wake",
    world: () => ({ ...inApd(APD_SINCE_DUE_NOW - 60_000), protected: false }),
    expect: { ...RUNNING, steps: [] },
  },
  {
    name: "a protected VM in all paths down on a host that does not answer (Failed) is left to HA restarts: no VM component protection",
    world: () => ({ ...inApd(APD_SINCE_DUE_NOW - 60_000), hostPhase: "Failed" }),
    expect: { phase: "Running", conditions: "Ready=False/HostNotReady Reconciling=True/HostNotReady", steps: [] },
  },
  {
    name: "a VM whose HostCluster does not exist is Stalled, ClusterNotFound, and waits for no placement",
    world: () => ({ vm: vmObject("vm"), cluster: null }),
    expect: { phase: "Pending", conditions: "Ready=False/ClusterNotFound Stalled=True/ClusterNotFound", also: (plan) => assert.equal(readyOf(plan)?.message, "HostCluster prod does not exist") },
  },
  {
    name: "a running VM whose HostCluster does not exist keeps its phase and is Stalled, ClusterNotFound",
    world: () => ({ ...running(), cluster: null }),
    expect: { phase: "Running", conditions: "Ready=False/ClusterNotFound Stalled=True/ClusterNotFound" },
  },
];

// ------------------------------------------------------------------ running the table

function readyOf(plan: VmPlan) {
  return plan.status.conditions?.find((c) => c.type === "Ready");
}

function describeConditions(plan: VmPlan): string {
  return ["Ready", "Reconciling", "Stalled"]
    .map((type) => plan.status.conditions?.find((c) => c.type === type))
    .filter((c) => c !== undefined)
    .map((c) => `${c.type}=${c.status}/${c.reason}`)
    .join(" ");
}

function describeStep(step: VmPlan["steps"][number]): string {
  const a = step.action;
  return `${a.type}${a.type === "Stop" ? ` ${a.mode}` : ""} ${step.event.type}/${step.event.reason}`;
}

for (const c of [...matrixCases, ...specialCases]) {
  test(c.name, () => {
    const s = situation(c.world());
    const plan = planVm(s);
    const e = c.expect;
    assert.equal(plan.status.phase, e.phase, "phase");
    if (e.conditions !== undefined) assert.equal(describeConditions(plan), e.conditions, "conditions");
    assert.deepEqual(plan.steps.map(describeStep), e.steps ?? [], "steps");
    assert.equal(plan.needsPlacement, e.needsPlacement ?? false, "needsPlacement");
    assert.equal(plan.wakeAt, e.wakeAt, "wakeAt");
    for (const step of plan.steps) assert.equal("vm" in step.action ? step.action.vm : undefined, "default/vm", "every step names the VM");
    e.also?.(plan, s);
  });
}

test("a Manual VM shutting down gets no wake at the grace end: Vireo never powers it off, so nothing changes then", () => {
  assert.equal(planVm(situation(vmIn("Manual", "Stopping"))).wakeAt, undefined);
});
