// The cluster as one balancing pass sees it and changes it, move by move: the load of the hosts that take
// VMs, where every VM will be once the pass's moves are done, and what each host holds at the worst instant
// of them — a VM migrating live holds its memory and vCPUs on its source and its target at once, so every
// move of the pass, and every migration under way, counts on both ends until it is over.

import type { HostCluster } from "../../api/types.ts";
import type { CandidateHost, ClusterSnapshot, PlacedVm } from "../../placement/index.ts";
import type { ClusterSituation, HoldDown, HostFacts, StageState, VmFacts } from "../cluster/types.ts";
import { ordinaryPlacementSnapshot } from "../ha/admission.ts";
import { ASKED_UNREPORTED_MS, migrationSlots, takeSlot, type MigrationSlots } from "../migration/slots.ts";
import type { MoveCost } from "./cost.ts";
import { admissionGuard, type AdmissionGuard } from "./guards.ts";
import { applyMove, loadModel, type Demand, type LoadModel } from "./load.ts";
import { movableVms, type Movable } from "./movable.ts";
import { movePreferences, preferenceIndex, type PreferenceIndex } from "./preferences.ts";

export interface BalancingWorld {
  cluster: HostCluster;
  /** The hosts balancing may move VMs to: the cluster's, dedicated failover hosts set aside. */
  snapshot: ClusterSnapshot;
  hostsByName: ReadonlyMap<string, CandidateHost>;
  /** The member hosts as the planners see them, by name: for the CPU a guest can move to. */
  hostFacts: ReadonlyMap<string, HostFacts>;
  loads: LoadModel;
  movable: Map<string, Movable>;
  /** Every VM holding resources, once, where it will be once the pass's moves and those under way are done. */
  placed: PlacedVm[];
  /** What migrations hold besides: the source of each, the pass's own and those under way. */
  reservations: PlacedVm[];
  /** vCPUs and MiB held on each host at the worst instant, reservations included. */
  held: Map<string, { cpu: number; memoryMiB: number }>;
  preferences: PreferenceIndex;
  slots: MigrationSlots;
  admission: AdmissionGuard;
  meanHostMemoryMiB: number;
  /** VMs this pass moved. */
  moved: Set<string>;
  /** What moving each VM costs, worked out when first asked. */
  costs: Map<string, MoveCost>;
}

export function balancingWorld(s: Readonly<ClusterSituation>, state: Readonly<StageState>, holdDowns: ReadonlyMap<string, HoldDown>): BalancingWorld {
  const snapshot = ordinaryPlacementSnapshot(state.snapshot, s.cluster.spec.ha.admissionControl);
  const takers = snapshot.hosts.filter((h) => h.unavailable === undefined);
  const names = new Set(takers.map((h) => h.name));
  const facts = new Map(s.vms.map((f) => [f.id, f]));
  const underWay = migrationEnds(s, state, facts);
  // Each VM once, where it will run: a VM migrating now is on its target already; its source is reserved.
  const placed = state.snapshot.placed.filter((vm) => !isMoveShadow(vm.id)).map((vm) => {
    const target = underWay.get(vm.id)?.target;
    return target === undefined ? vm : { ...vm, host: target };
  });
  const reservations = sourceReservations(underWay, placed);
  const loads = loadModel(
    takers.map((h) => ({ name: h.name, cores: h.cpu.cores, memoryMiB: h.memoryMiB })),
    placed.map((vm) => ({ host: vm.host, demand: demandOf(facts.get(vm.id), vm) })),
  );
  const held = new Map<string, { cpu: number; memoryMiB: number }>();
  for (const vm of [...placed, ...reservations]) hold(held, vm.host, vm);
  return {
    cluster: s.cluster,
    snapshot,
    hostsByName: new Map(snapshot.hosts.map((h) => [h.name, h])),
    hostFacts: new Map(s.hosts.map((h) => [h.name, h])),
    loads,
    movable: movableVms(s, state, names, holdDowns),
    placed,
    reservations,
    held,
    preferences: preferenceIndex(snapshot.hosts, placed),
    slots: migrationSlots(s, state),
    // A copy: the guard compares with the cluster as the pass found it, and `placed` changes move by move.
    admission: admissionGuard(s, state.snapshot, [...placed]),
    meanHostMemoryMiB: takers.reduce((sum, h) => sum + h.memoryMiB, 0) / Math.max(takers.length, 1),
    moved: new Set(),
    costs: new Map(),
  };
}

/** Whether `host` has room for `vm` at the worst instant of the pass (capacity only; rules are the placement code's). */
export function hasRoom(world: Readonly<BalancingWorld>, host: Readonly<CandidateHost>, vm: { cpu: number; memoryMiB: number }): boolean {
  const now = world.held.get(host.name) ?? { cpu: 0, memoryMiB: 0 };
  return now.memoryMiB + vm.memoryMiB <= host.memoryMiB && now.cpu + vm.cpu <= host.cpu.cores * host.cpu.overcommitRatio;
}

/** Records a move of the pass: the VM runs on `to` once it is over, and holds both hosts while it runs. */
export function recordMove(world: BalancingWorld, mover: Readonly<Movable>, to: string, useSlot: boolean): void {
  const from = mover.host;
  const index = world.placed.findIndex((vm) => vm.id === mover.id && vm.host === from);
  const entry = world.placed[index];
  if (entry !== undefined) {
    world.placed[index] = { ...entry, host: to };
    world.reservations.push(entry);
    hold(world.held, to, entry);
  }
  const fromIndex = world.loads.index.get(from);
  const toIndex = world.loads.index.get(to);
  if (fromIndex !== undefined && toIndex !== undefined) applyMove(world.loads, fromIndex, toIndex, mover.demand);
  movePreferences(world.preferences, mover.id, to);
  world.moved.add(mover.id);
  if (useSlot) takeSlot(world.slots, from);
}

/**
 * Physical cores a VM uses: as its host reports it, or for a VM an earlier stage starts this round, what its
 * workload declares (a VM with none declared counts as idle until it reports).
 */
function demandOf(f: Readonly<VmFacts> | undefined, vm: Readonly<PlacedVm>): Demand {
  const reported = f?.instance !== undefined && f.instance.power !== "Off" ? f.instance.cpuUsage : undefined;
  const declared = f?.vm.spec.workload ? (f.vm.spec.cpu * f.vm.spec.workload.cpuPercent) / 100 : 0;
  return { cpu: reported ?? declared, memoryMiB: vm.memoryMiB };
}

/** Both ends of every migration under way, and of those the stages before planned this round, by VM. */
function migrationEnds(s: Readonly<ClusterSituation>, state: Readonly<StageState>, facts: ReadonlyMap<string, VmFacts>): Map<string, { source?: string; target: string }> {
  const ends = new Map<string, { source?: string; target: string }>();
  for (const m of s.migrations) if (m.phase === "PreCopy" || m.phase === "Switchover") ends.set(m.vm, { source: m.source, target: m.target });
  // Moves asked for in an earlier round that the hosts have not reported yet are under way all the same.
  for (const [vm, move] of s.memory.moves) {
    if (ends.has(vm) || s.now - move.startedAt >= ASKED_UNREPORTED_MS || s.migrations.some((m) => m.vm === vm && m.key === move.key)) continue;
    const source = facts.get(vm)?.instance?.host;
    if (source !== move.target) ends.set(vm, { ...(source ? { source } : {}), target: move.target });
  }
  for (const step of state.actions) {
    if (step.action.type !== "Migrate") continue;
    const source = facts.get(step.action.vm)?.instance?.host;
    ends.set(step.action.vm, { ...(source ? { source } : {}), target: step.action.target });
  }
  return ends;
}

/** The source each migration under way still holds while `placed` lists the VM on its target. */
function sourceReservations(ends: ReadonlyMap<string, { source?: string; target: string }>, placed: readonly PlacedVm[]): PlacedVm[] {
  const reservations: PlacedVm[] = [];
  for (const vm of placed) {
    const source = ends.get(vm.id)?.source;
    if (source !== undefined && source !== vm.host) reservations.push({ ...vm, host: source });
  }
  return reservations;
}

/** The entry a stage adds for a VM on the target of its move, "<id>@<target>" (cluster/moves.ts): the VM counted twice while it moves. */
function isMoveShadow(id: string): boolean {
  return id.includes("@");
}

function hold(held: Map<string, { cpu: number; memoryMiB: number }>, host: string, vm: { cpu: number; memoryMiB: number }): void {
  const now = held.get(host) ?? { cpu: 0, memoryMiB: 0 };
  held.set(host, { cpu: now.cpu + vm.cpu, memoryMiB: now.memoryMiB + vm.memoryMiB });
}
