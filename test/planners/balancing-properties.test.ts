// Properties of a balancing pass over random clusters, each checked by slow, obviously-correct code: hosts
// of random sizes in two racks, VMs of random sizes and loads (some with required or preferred
// anti-affinity, some pinned to a rack, some that may not move live, some held down or migrating now),
// random thresholds and modes, admission control on or off. For every pass:
//   - no required rule is broken once its moves are done (anti-affinity, host affinity, capacity);
//   - no VM is moved within its hold-down, nor one that may not move live, nor one migrating now;
//   - the imbalance is never higher after the moves (a repair of a preferred rule may raise it, never past
//     what the threshold tolerates);
//   - no host's memory or vCPUs are overcommitted at any instant: every VM of the pass held on its source
//     and its target at once, with the migrations under way;
//   - the migration limits hold, and admission control's HostFailuresToTolerate still holds if it did.
// The seed is printed; replay a run with VIREO_BALANCING_SEED=<seed>, and the shrunk counterexample of a
// failure with VIREO_BALANCING_PATH=<path> too (fast-check prints both). VIREO_QUICK=1 runs fewer clusters.

import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { Host, MigrationPolicy, VirtualMachine, VmAffinityTerm } from "../../controller/api/types.ts";
import type { WorkloadProfile } from "../../controller/core/observation.ts";
import { HOST_LABEL } from "../../controller/api/types.ts";
import type { MigrationObservation } from "../../controller/core/migration.ts";
import { planCluster } from "../../controller/planners/cluster/plan.ts";
import { protectedRequests } from "../../controller/planners/cluster/admission.ts";
import type { ClusterPlan, ClusterSituation, HoldDown } from "../../controller/planners/cluster/types.ts";
import { failoverCapacity } from "../../controller/planners/ha/failover-capacity.ts";
import { NOW, balancingCluster, balancingSituation, type RunningVm } from "../support/balancing.ts";
import { GiB, hostObject, vmObject } from "../support/objects.ts";
import { propertySeed } from "../support/random.ts";

const QUICK = process.env.VIREO_QUICK === "1";
const REPLAY_SEED = process.env.VIREO_BALANCING_SEED;
const RACK = "topology.vireo.dev/rack";
const SPREAD: VmAffinityTerm = { labelSelector: { matchLabels: { group: "spread" } }, topologyKey: HOST_LABEL };
const POLICIES: readonly MigrationPolicy[] = ["Live", "Live", "Live", "LiveIfPossible", "Never", "Cold"];
const PROFILES: readonly WorkloadProfile[] = ["Idle", "Steady", "Diurnal", "Bursty"];

const clusterArb = fc.record({
  mode: fc.constantFrom("Automatic" as const, "Manual" as const),
  threshold: fc.integer({ min: 1, max: 5 }),
  tolerate: fc.boolean(),
  parallelMigrations: fc.integer({ min: 1, max: 6 }),
  parallelOutboundPerHost: fc.integer({ min: 1, max: 3 }),
  hosts: fc.array(fc.record({ memoryGiB: fc.integer({ min: 8, max: 32 }), cores: fc.integer({ min: 2, max: 16 }) }), { minLength: 2, maxLength: 6 }),
  vms: fc.array(fc.record({
    host: fc.nat(),
    memoryGiB: fc.integer({ min: 1, max: 8 }),
    cpu: fc.integer({ min: 1, max: 4 }),
    busy: fc.double({ min: 0, max: 1, noNaN: true }),
    rule: fc.constantFrom("none", "none", "none", "required", "preferred", "rack"),
    policy: fc.constantFrom(...POLICIES),
    profile: fc.constantFrom(...PROFILES),
    held: fc.constantFrom("no", "no", "no", "held", "expired"),
    migrating: fc.constantFrom(false, false, false, false, true),
  }), { maxLength: 22 }),
});

type Drawn = typeof clusterArb extends fc.Arbitrary<infer T> ? T : never;

interface World {
  s: ClusterSituation;
  hosts: Host[];
  /** Where each VM runs now. */
  at: Map<string, string>;
  vms: Map<string, RunningVm>;
}

/** The drawn cluster, its VMs placed where drawn when they fit there under every required rule (else dropped). */
function worldOf(d: Drawn): World {
  const hosts = d.hosts.map((h, i) => {
    const host = hostObject(`h${i + 1}`, { memoryGiB: h.memoryGiB });
    return { ...host, metadata: { ...host.metadata, labels: { ...host.metadata.labels, [RACK]: `r${(i % 2) + 1}` } }, spec: { ...host.spec, cpu: { ...host.spec.cpu, cores: h.cores } } };
  });
  const running: RunningVm[] = [];
  // What the hosts hold: the running VMs, and a copy of each migrating VM on its target.
  const holding: RunningVm[] = [];
  const holdDowns = new Map<string, HoldDown>();
  const migrations: MigrationObservation[] = [];
  d.vms.forEach((v, i) => {
    const host = hosts[v.host % hosts.length]!;
    const vm = vmOf(`v${i}`, v);
    if (!fitsThere(holding, vm, host)) return;
    const r = { vm, host: host.metadata.name, cpuUsage: v.busy * v.cpu };
    running.push(r);
    holding.push(r);
    const id = `default/${vm.metadata.name}`;
    if (v.held === "held") holdDowns.set(id, { moves: 1, lastMoveAt: NOW - 60_000, until: NOW + 840_000 });
    if (v.held === "expired") holdDowns.set(id, { moves: 1, lastMoveAt: NOW - 1_000_000, until: NOW - 100_000 });
    const target = v.migrating ? hosts.find((h) => h !== host && fitsThere(holding, vm, h)) : undefined;
    if (target === undefined) return;
    holding.push({ ...r, host: target.metadata.name });
    migrations.push({ vm: id, key: `balance/${id}/${NOW - 5_000}`, source: host.metadata.name, target: target.metadata.name, phase: "PreCopy", startedAt: NOW - 5_000, rounds: 1, transferredMiB: 0, remainingMiB: vm.spec.memoryMiB, bandwidthMiBps: 128, dirtyRateMiBps: 2, throttlePercent: 0 });
  });
  const cluster = balancingCluster(
    { mode: d.mode, threshold: d.threshold },
    d.tolerate ? { policy: "HostFailuresToTolerate", hostFailures: 1 } : { policy: "Disabled" },
    { parallelMigrations: d.parallelMigrations, parallelOutboundPerHost: d.parallelOutboundPerHost },
  );
  const s = balancingSituation({ cluster, hosts, vms: running, balancing: { holdDowns }, migrations });
  return { s, hosts, at: new Map(running.map((r) => [`default/${r.vm.metadata.name}`, r.host])), vms: new Map(running.map((r) => [`default/${r.vm.metadata.name}`, r])) };
}

function vmOf(name: string, v: Drawn["vms"][number]): VirtualMachine {
  const base = vmObject(name, { memoryGiB: v.memoryGiB, cpu: v.cpu, labels: { app: name, ...(v.rule === "required" || v.rule === "preferred" ? { group: "spread" } : {}) } });
  const placement = { ...base.spec.placement };
  if (v.rule === "required") placement.vmAntiAffinity = { required: [SPREAD] };
  if (v.rule === "preferred") placement.vmAntiAffinity = { preferred: [{ weight: 50, term: SPREAD }] };
  if (v.rule === "rack") placement.hostAffinity = { required: [{ matchLabels: { [RACK]: "r1" } }], preferred: [{ weight: 30, preference: { matchLabels: { [RACK]: "r2" } } }] };
  return { ...base, spec: { ...base.spec, placement, migration: { policy: v.policy }, workload: { profile: v.profile, cpuPercent: 50 } } };
}

// ------------------------------------------------------------------ the slow checker

/** Whether `vm` may run on `host` beside `others` (VMs with their hosts): capacity and every required rule. */
function fitsThere(others: readonly RunningVm[], vm: VirtualMachine, host: Host): boolean {
  const here = others.filter((o) => o.host === host.metadata.name);
  if (here.reduce((sum, o) => sum + o.vm.spec.memoryMiB, 0) + vm.spec.memoryMiB > host.spec.memoryMiB) return false;
  if (here.reduce((sum, o) => sum + o.vm.spec.cpu, 0) + vm.spec.cpu > host.spec.cpu.cores * host.spec.cpu.overcommitRatio) return false;
  return rulesHold(vm, host, here.map((o) => o.vm));
}

function rulesHold(vm: VirtualMachine, host: Host, neighbours: readonly VirtualMachine[]): boolean {
  const required = vm.spec.placement.hostAffinity?.required ?? [];
  if (required.length > 0 && !required.some((t) => Object.entries(t.matchLabels ?? {}).every(([k, v]) => host.metadata.labels?.[k] === v))) return false;
  const spreadsMe = (x: VirtualMachine) => (x.spec.placement.vmAntiAffinity?.required ?? []).length > 0;
  const inGroup = (x: VirtualMachine) => x.metadata.labels?.["group"] === "spread";
  return !neighbours.some((n) => n !== vm && ((spreadsMe(vm) && inGroup(n)) || (spreadsMe(n) && inGroup(vm))));
}

/** The standard deviation of host load, the larger of CPU and memory, over the hosts that take VMs. */
function imbalance(w: World, at: ReadonlyMap<string, string>): number {
  const deviation = (loads: number[]) => {
    const mean = loads.reduce((a, b) => a + b, 0) / loads.length;
    return Math.sqrt(loads.reduce((a, l) => a + (l - mean) ** 2, 0) / loads.length);
  };
  const cpu = w.hosts.map((h) => [...w.vms.values()].filter((r) => at.get(`default/${r.vm.metadata.name}`) === h.metadata.name).reduce((sum, r) => sum + (r.cpuUsage ?? 0), 0) / h.spec.cpu.cores);
  const memory = w.hosts.map((h) => [...w.vms.values()].filter((r) => at.get(`default/${r.vm.metadata.name}`) === h.metadata.name).reduce((sum, r) => sum + r.vm.spec.memoryMiB, 0) / h.spec.memoryMiB);
  return w.hosts.length < 2 ? 0 : Math.max(deviation(cpu), deviation(memory));
}

/** The pass's moves: Automatic's migrations, or Manual's recommendations. */
function movesOf(plan: ClusterPlan): { vm: string; to: string }[] {
  const made = plan.actions.flatMap((a) => (a.stage === "balancing" && a.action.type === "Migrate" ? [{ vm: a.action.vm, to: a.action.target }] : []));
  return made.length > 0 ? made : (plan.balancing?.recommendations ?? []).map((r) => ({ vm: r.vm, to: r.to }));
}

function checkPass(w: World, plan: ClusterPlan): number {
  const moves = movesOf(plan);
  const { s } = w;
  if (s.cluster.spec.balancing.mode === "Manual") assert.ok(!plan.actions.some((a) => a.stage === "balancing"), "Manual makes no move of its own");
  if (s.cluster.spec.balancing.threshold === 1) assert.deepEqual(moves, [], "threshold 1 moves nothing");
  assert.equal(new Set(moves.map((m) => m.vm)).size, moves.length, "a VM moves once a pass");
  // Where every VM runs before the pass's moves (the migrations under way landed), and after them.
  const landed = new Map(w.at);
  for (const m of s.migrations) landed.set(m.vm, m.target);
  const after = new Map(landed);
  for (const { vm, to } of moves) {
    checkMayMove(w, vm, to);
    after.set(vm, to);
  }
  checkRules(w, after);
  checkWorstInstant(w, after);
  checkImbalance(w, plan, landed, after);
  if (s.cluster.spec.balancing.mode === "Automatic") checkLimits(s, moves, w.at);
  checkAdmission(s, w, after, moves.length);
  return moves.length;
}

function checkMayMove(w: World, vm: string, to: string): void {
  const policy = w.vms.get(vm)!.vm.spec.migration.policy;
  assert.ok(policy === "Live" || policy === "LiveIfPossible", `${vm} (policy ${policy}) is moved`);
  assert.ok(!w.s.migrations.some((m) => m.vm === vm), `${vm} is moved while it migrates`);
  const held = w.s.memory.balancing.holdDowns.get(vm);
  assert.ok(held === undefined || held.until <= w.s.now, `${vm} is moved within its hold-down`);
  assert.notEqual(w.at.get(vm), to, `${vm} moves to where it is`);
}

/** Every required rule holds once the moves are done, with the migrations under way landed. */
function checkRules(w: World, after: ReadonlyMap<string, string>): void {
  for (const [id, host] of after) {
    const neighbours = [...after].filter(([, h]) => h === host).map(([other]) => w.vms.get(other)!.vm);
    assert.ok(rulesHold(w.vms.get(id)!.vm, w.hosts.find((h) => h.metadata.name === host)!, neighbours), `${id} breaks a required rule on ${host}`);
  }
}

/** At the worst instant, each VM of the pass and each migration under way holds both of its hosts. */
function checkWorstInstant(w: World, after: ReadonlyMap<string, string>): void {
  for (const host of w.hosts) {
    const name = host.metadata.name;
    const holding = [...w.vms.keys()].filter((id) => w.at.get(id) === name || after.get(id) === name);
    const memory = holding.reduce((sum, id) => sum + w.vms.get(id)!.vm.spec.memoryMiB, 0);
    const cpu = holding.reduce((sum, id) => sum + w.vms.get(id)!.vm.spec.cpu, 0);
    assert.ok(memory <= host.spec.memoryMiB, `${name} holds ${memory / GiB} GiB of ${host.spec.memoryMiB / GiB} while the moves run`);
    assert.ok(cpu <= host.spec.cpu.cores * host.spec.cpu.overcommitRatio, `${name} holds ${cpu} vCPUs while the moves run`);
  }
}

/** The imbalance never rises past where it was, or past the target for a repair of a preferred rule; the report projects it right. */
function checkImbalance(w: World, plan: ClusterPlan, before: ReadonlyMap<string, string>, after: ReadonlyMap<string, string>): void {
  const start = imbalance(w, before);
  const end = imbalance(w, after);
  const target = plan.balancing?.target ?? 0;
  const repairs = (plan.balancing?.recommendations ?? []).some((r) => /preferred rules/.test(r.reason));
  assert.ok(end <= (repairs ? Math.max(start, target) : start) + 1e-9, `imbalance ${start} → ${end} (target ${target})`);
  if (plan.balancing?.passAt !== undefined) assert.ok(Math.abs(plan.balancing.projected - end) < 1e-9, `projected ${plan.balancing.projected}, found ${end}`);
}

function checkLimits(s: ClusterSituation, moves: readonly { vm: string }[], at: ReadonlyMap<string, string>): void {
  const limits = s.cluster.spec.migration;
  assert.ok(moves.length <= Math.max(0, limits.parallelMigrations - s.migrations.length), `${moves.length} migrations begun, ${s.migrations.length} under way, limit ${limits.parallelMigrations}`);
  for (const host of new Set(moves.map((m) => at.get(m.vm)!))) {
    const leaving = moves.filter((m) => at.get(m.vm) === host).length;
    const already = s.migrations.filter((m) => m.source === host).length;
    assert.ok(leaving <= Math.max(0, limits.parallelOutboundPerHost - already), `${leaving} migrations begun from ${host}, ${already} under way, limit ${limits.parallelOutboundPerHost}`);
  }
}

function checkAdmission(s: ClusterSituation, w: World, after: ReadonlyMap<string, string>, moves: number): void {
  if (moves === 0 || s.cluster.spec.ha.admissionControl.policy !== "HostFailuresToTolerate" || w.hosts.length < 3) return;
  const placedAt = (where: ReadonlyMap<string, string>) => s.snapshot.placed.map((p) => ({ ...p, host: where.get(p.id) ?? p.host }));
  const tolerates = (where: ReadonlyMap<string, string>) => failoverCapacity({ snapshot: { ...s.snapshot, placed: placedAt(where) }, protectedVms: protectedRequests(s), maxFailures: 1 }).tolerates;
  const landed = new Map(w.at);
  for (const m of s.migrations) landed.set(m.vm, m.target);
  const now = Math.min(tolerates(w.at), tolerates(landed));
  assert.ok(tolerates(after) >= now, `the moves leave the cluster tolerating ${tolerates(after)} host failures, it tolerated ${now}`);
}

test("balancing passes over random clusters: required rules, hold-downs, capacity at every instant, the migration limits and admission control hold, and the imbalance never rises", (t) => {
  const seed = propertySeed(REPLAY_SEED);
  const numRuns = QUICK ? 60 : 400;
  t.diagnostic(`seed ${seed} (replay: VIREO_BALANCING_SEED=${seed}), ${numRuns} clusters`);
  const started = performance.now();
  const seen = { moved: 0, recommended: 0, held: 0, repairs: 0 };
  fc.assert(fc.property(clusterArb, (d) => {
    const w = worldOf(d);
    const plan = planCluster(w.s);
    const moves = checkPass(w, plan);
    if (moves > 0) seen[w.s.cluster.spec.balancing.mode === "Automatic" ? "moved" : "recommended"]++;
    if ((plan.balancing?.recommendations ?? []).some((r) => /preferred rules/.test(r.reason))) seen.repairs++;
    if (w.s.memory.balancing.holdDowns.size > 0) seen.held++;
  }), { seed, numRuns, ...(process.env.VIREO_BALANCING_PATH ? { path: process.env.VIREO_BALANCING_PATH } : {}) });
  t.diagnostic(`${numRuns} clusters in ${Math.round(performance.now() - started)} ms; moves made in ${seen.moved}, recommended in ${seen.recommended}, preferred rules repaired in ${seen.repairs}, with VMs held down ${seen.held}`);
});
