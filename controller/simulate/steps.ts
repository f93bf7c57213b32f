// Carrying out a scenario's steps on the simulated world, as a person at the keyboard would: applying
// manifests, flipping a host's maintenance flag, rolling maintenance host by host (each emptied, held for
// its patching, and brought back before the next, as vSphere Lifecycle Manager remediates a cluster), and
// changing what guests do.

import type { Host, VirtualMachine, VireoObject } from "../api/types.ts";
import { objectKey, vmId } from "../api/types.ts";
import { selectorMatches } from "../api/selectors.ts";
import type { ScenarioStep, StepAction } from "./timeline.ts";
import type { SimulatedWorld } from "./world.ts";
import type { RunRecorder } from "./recorder.ts";
import { describeDuration } from "./durations.ts";

/** Carries out a step; all of its effect is made before it first waits, so it happens at the step's time. */
export async function applyStep(world: SimulatedWorld, recorder: RunRecorder, step: Readonly<ScenarioStep>, rollouts: RollingMaintenance[]): Promise<void> {
  recorder.step(step.index, step.summary, step.note);
  const action = step.action;
  switch (action.type) {
    case "Apply": return world.apply(action.objects);
    case "Maintenance": for (const host of action.hosts) setMaintenance(world, host, action.enabled); return;
    case "RollingMaintenance": rollouts.push(new RollingMaintenance(action, world, recorder)); return;
    case "Workload": return changeWorkloads(world, recorder, action);
    case "Delete": for (const key of action.keys) world.store.delete(key); return;
  }
}

/** Sets `spec.maintenance` of a host as an edit of its manifest would. */
export function setMaintenance(world: SimulatedWorld, name: string, enabled: boolean): void {
  const host = world.store.get(objectKey("Host", name)) as Host | undefined;
  if (!host || host.spec.maintenance === enabled) return;
  const { status: _status, ...manifest } = host;
  world.apply([{ ...manifest, spec: { ...host.spec, maintenance: enabled } } as VireoObject]);
}

/**
 * The guests change what they do now — CPU use, memory dirtying and disk writes — and their manifests say
 * so: a guest the hosts do not have yet (waiting for room, not yet started) gets it when Vireo starts it,
 * and a guest restarted elsewhere keeps it.
 */
async function changeWorkloads(world: SimulatedWorld, recorder: RunRecorder, action: Extract<StepAction, { type: "Workload" }>): Promise<void> {
  const chosen = world.store.list("VirtualMachine").filter((vm) => (action.vms ? action.vms.includes(vmId(vm)) : matches(vm, action)));
  if (chosen.length === 0) recorder.note("the workload change matched no VM");
  const changes: Promise<boolean>[] = [];
  for (const vm of chosen) {
    const workload = { profile: "Steady" as const, cpuPercent: 20, ...vm.spec.workload, ...action.change };
    const { status: _status, ...manifest } = vm;
    world.apply([{ ...manifest, spec: { ...vm.spec, workload } } as VireoObject]);
    changes.push(world.setGuestWorkload(vmId(vm), workload));
  }
  await Promise.all(changes);
}

function matches(vm: Readonly<VirtualMachine>, action: Extract<StepAction, { type: "Workload" }>): boolean {
  if (action.namespace !== undefined && vm.metadata.namespace !== action.namespace) return false;
  return action.selector !== undefined && selectorMatches(action.selector, vm.metadata.labels ?? {});
}

type Stage = "Entering" | "Holding" | "Exiting" | "Done" | "Stopped";

/** One host at a time: into maintenance, empty, held, back out and Ready, then the next. */
export class RollingMaintenance {
  private readonly action: Extract<StepAction, { type: "RollingMaintenance" }>;
  private readonly world: SimulatedWorld;
  private readonly recorder: RunRecorder;
  private index = 0;
  private stage: Stage = "Entering";
  private since: number;

  constructor(action: Extract<StepAction, { type: "RollingMaintenance" }>, world: SimulatedWorld, recorder: RunRecorder) {
    this.action = action;
    this.world = world;
    this.recorder = recorder;
    this.since = world.clock.now();
    setMaintenance(world, this.host(), true);
  }

  get done(): boolean {
    return this.stage === "Done" || this.stage === "Stopped";
  }

  /** Moves the rollout on when its host got where it was going; true when it changed a host. */
  poll(): boolean {
    const now = this.world.clock.now();
    const name = this.host();
    const host = this.world.store.get(objectKey("Host", name)) as Host | undefined;
    const phase = host?.status?.phase;
    switch (this.stage) {
      case "Entering":
        if (phase === "Maintenance") return this.next("Holding", `rolling maintenance: ${name} is empty; holding it ${describeDuration(this.action.holdMs)}`);
        if (now - this.since < this.action.timeoutMs) return false;
        setMaintenance(this.world, name, false);
        return this.next("Stopped", `rolling maintenance stopped: ${name} did not empty within ${describeDuration(this.action.timeoutMs)}${blocked(host)}`);
      case "Holding":
        if (now - this.since < this.action.holdMs) return false;
        setMaintenance(this.world, name, false);
        return this.next("Exiting", `rolling maintenance: ${name} leaves maintenance`);
      case "Exiting":
        if (phase !== "Ready") return false;
        if (this.index + 1 >= this.action.hosts.length) return this.next("Done", `rolling maintenance done: ${this.action.hosts.length} hosts`);
        this.index++;
        setMaintenance(this.world, this.host(), true);
        return this.next("Entering", `rolling maintenance: ${this.host()} enters maintenance`);
      default:
        return false;
    }
  }

  private host(): string {
    return this.action.hosts[this.index]!;
  }

  private next(stage: Stage, message: string): true {
    this.stage = stage;
    this.since = this.world.clock.now();
    this.recorder.note(message);
    return true;
  }
}

function blocked(host: Readonly<Host> | undefined): string {
  const reasons = host?.status?.evacuationBlocked ?? [];
  return reasons.length === 0 ? "" : ` (${reasons.map((b) => `${b.vm}: ${b.reason}`).join("; ")})`;
}
