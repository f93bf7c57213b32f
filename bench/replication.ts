// Replication and disaster-recovery benchmark. Two figures, each beside a baseline and a bound:
//  1. A site lost: 10 prod hosts running 500 replicated VMs (50 Highest waiting for their guest heartbeat,
//     200 Medium, 250 Low) all crash; through the whole controller on the virtual clock, the simulated time
//     until all 500 are Ready in dr, against one unordered batch computed from the same model, the floor the
//     priority order allows, and Zerto's default throttle (BEHAVIOUR.md); the time dr's cluster planner
//     takes per round (planCluster over the very situation of each of its rounds, planned again beside the
//     controller's own); split-brain attempts; the data lost, as the VMs' status says and as the hosts lost it.
//  2. The RPO across 1,000 replicated VMs sharing one link for 4 simulated hours, on the simulated hosts
//     alone (the controller is too slow for that in the time a benchmark has): the share of VMs that never
//     violate it after their first sync and the worst lag, on a link that carries their writes and on one
//     just too slow for them, beside what the bandwidth predicts; then the same VMs through the controller
//     for 15 simulated minutes, for what it reports and predicts and what each simulated hour costs it.
//
// Planner times are CPU time of this thread beside the wall: on a shared machine the wall measures the neighbours too.

import { performance } from "node:perf_hooks";
import type { RestartPriority, VirtualMachine } from "../controller/api/types.ts";
import { vmId } from "../controller/api/types.ts";
import { clusterKey } from "../controller/engine/context.ts";
import { gatherCluster } from "../controller/engine/reconcile-cluster.ts";
import { planCluster } from "../controller/planners/cluster/plan.ts";
import { MAX_CONCURRENT_POWER_ONS } from "../controller/planners/ha/restart-order.ts";
import { VirtualClock } from "../controller/core/clock.ts";
import type { HostConfig, WorkloadProfile } from "../controller/core/observation.ts";
import { rpoViolated, WRITE_RATE_MIBPS, type ReplicaObservation, type ReplicationSettings } from "../controller/core/replication.ts";
import { DEFAULT_SIM_TIMINGS, SimulatedHosts } from "../controller/provider/sim/index.ts";
import { hostConfig } from "../test/support/provider.ts";
import { Scenario, clusterYaml, condition, hostYaml } from "../test/support/scenario.ts";
import { timeObservations } from "./observe-time.ts";

export async function benchReplication(): Promise<void> {
  await benchSiteLoss();
  await benchLink();
}

// ------------------------------------------------------------ 1. a site lost

const SITE_HOSTS = 10;
const PROD_HOSTS = Array.from({ length: SITE_HOSTS }, (_, i) => `prod-${String(i + 1).padStart(2, "0")}`);
const DR_HOSTS = Array.from({ length: SITE_HOSTS }, (_, i) => `dr-${String(i + 1).padStart(2, "0")}`);
/** The tiers of the 500 VMs: how many, at which restart priority, ready at which condition. */
const TIERS: readonly { tier: string; count: number; priority: RestartPriority; readyCondition: string }[] = [
  { tier: "db", count: 50, priority: "Highest", readyCondition: "GuestHeartbeat" },
  { tier: "app", count: 200, priority: "Medium", readyCondition: "PoweredOn" },
  { tier: "web", count: 250, priority: "Low", readyCondition: "PoweredOn" },
];
const SITE_VMS = TIERS.reduce((n, t) => n + t.count, 0);
/** Wide enough that the first full syncs (500 × 1 GiB) take 4 min, not the 85 min of the 100 MiB/s default. */
const SITE_LINK_MIBPS = 2_000;
const SITE_DISK_GIB = 1;
const SITE_WRITE_MIBPS = 0.1;
/** RPOs of 5 to 14 min, a minute apart, VM by VM: their syncs drift apart, so a crash finds them at different points. */
const rpoOf = (i: number) => 300 + 60 * (i % 10);
/** From every VM Replicated to the crash: over two cycles of the longest RPO, off any cycle's boundary. */
const SETTLE_MS = 1_687_300;
/** An aim for one round of dr's cluster planner while it recovers 500 VMs. */
const PLAN_AIM_MS = 100;
/** BEHAVIOUR.md, Replication: Zerto's default recovery throttle, 5 VMs per host every 5 min. */
const ZERTO = { vmsPerHost: 5, everyMs: 300_000 };

function policyYaml(t: (typeof TIERS)[number]): string {
  return `apiVersion: vireo.dev/v1alpha1
kind: HAPolicy
metadata: {name: ${t.tier}, namespace: default}
spec:
  selector: {matchLabels: {tier: ${t.tier}}}
  restartPriority: ${t.priority}
  readyCondition: ${t.readyCondition}
  protection: Replicate
---
`;
}

function siteVmYaml(name: string, tier: string, rpoSeconds: number): string {
  return `apiVersion: vireo.dev/v1alpha1
kind: VirtualMachine
metadata: {name: ${name}, namespace: default, labels: {tier: ${tier}, site: prod}}
spec:
  runStrategy: Always
  cpu: 1
  memoryMiB: 2048
  cpuFeatures: []
  disks: [{name: root, sizeGiB: ${SITE_DISK_GIB}, datastore: prod-ds}]
  networks: [{name: prod}]
  placement: {cluster: prod}
  workload: {profile: Steady, cpuPercent: 20, diskWriteRateMiBps: ${SITE_WRITE_MIBPS}}
  replication:
    targetCluster: dr
    rpoSeconds: ${rpoSeconds}
    instances: 2
    networkMapping: [{source: prod, target: dr-net}]
---
`;
}

function siteYaml(): string {
  let yaml = clusterYaml("prod").replace("  placement: {strategy: Spread}\n", `  placement: {strategy: Spread}\n  replication: {bandwidthMiBps: ${SITE_LINK_MIBPS}}\n`);
  yaml += clusterYaml("dr");
  const host = { cores: 64, memoryMiB: 262_144 };
  yaml += PROD_HOSTS.map((h) => hostYaml(h, { ...host, cluster: "prod", datastores: ["prod-ds"], networks: ["prod"] })).join("");
  yaml += DR_HOSTS.map((h) => hostYaml(h, { ...host, cluster: "dr", datastores: ["dr-ds"], networks: ["dr-net"] })).join("");
  yaml += TIERS.map(policyYaml).join("");
  for (const t of TIERS) for (let i = 0; i < t.count; i++) yaml += siteVmYaml(`${t.tier}-${String(i).padStart(3, "0")}`, t.tier, rpoOf(i));
  return yaml;
}

function ready(vm: VirtualMachine): boolean {
  return vm.status?.phase === "Running" && condition(vm, "Ready")?.status === "True";
}

interface SiteLoss {
  /** Simulated ms from the crash until every VM of the tier was Ready in dr. */
  readyAfterMs: Map<string, number>;
  /** Simulated ms from the crash until the first VM was recovered: the fence. */
  fenceMs: number;
  planRounds: PlanRound[];
  splitBrain: number;
  /** Per VM: the writes lost, s, as its status reports and as the hosts lost them; and its RPO, s. */
  losses: { reported: number; actual: number; rpo: number }[];
  wall: { setupMs: number; setupSimulatedMs: number; recoveryMs: number; recoverySimulatedMs: number };
}

async function loseSite(): Promise<SiteLoss> {
  const wallStart = performance.now();
  const s = await Scenario.start(siteYaml());
  try {
    const simulatedStart = s.clock.now();
    await s.until(() => s.vms().every(ready), 600_000, 5_000);
    await s.until(() => s.vms().every((vm) => condition(vm, "Replicated")?.status === "True"), 3_600_000, 10_000);
    // Into the steady state of incremental syncs; the RPOs differ, so the VMs are at different points of their cycles.
    await s.advance(SETTLE_MS);
    const setup = { setupMs: performance.now() - wallStart, setupSimulatedMs: s.clock.now() - simulatedStart };
    const recoveryStart = performance.now();
    const crashedAt = s.clock.now();
    for (const h of PROD_HOSTS) await s.sim.crashHost(h);
    const { readyAfterMs, planRounds } = await recover(s, crashedAt);
    const wall = { ...setup, recoveryMs: performance.now() - recoveryStart, recoverySimulatedMs: s.clock.now() - crashedAt };
    const truth = new Map(s.sim.groundTruth().recoveries.map((r) => [r.vm, (r.stoppedWritingAt - r.instanceAt) / 1000]));
    const losses = s.vms().map((vm) => ({
      reported: vm.status?.replication?.failover?.dataLossSeconds ?? Number.NaN,
      actual: truth.get(vmId(vm)) ?? Number.NaN,
      rpo: vm.spec.replication!.rpoSeconds,
    }));
    const fenceMs = Math.min(...s.vms().map((vm) => Date.parse(vm.status?.replication?.failover?.time ?? ""))) - crashedAt;
    return { readyAfterMs, fenceMs, planRounds, splitBrain: s.sim.splitBrainAttempts(), losses, wall };
  } finally {
    await s.stop();
  }
}

/** One round of dr's cluster planner during the recovery, planned again beside the controller's own. */
interface PlanRound {
  /** The VMs in dr's situation: none until prod is found lost. */
  vms: number;
  ms: number;
  /** The main thread's CPU time over the same call: what a busy machine's other processes do not inflate. */
  cpuMs: number;
  /** The Recover actions it planned. */
  recovers: number;
}

/**
 * Times dr's planner on the situation of each of its real rounds: the controller's reconcile of HostCluster
 * dr is wrapped so that, just before it gathers its situation, the same situation is gathered here and
 * planned (planCluster is pure, so the shadow plan changes nothing). Returns a function that unwraps it.
 */
function timeDrRounds(s: Scenario, rounds: PlanRound[]): () => void {
  const controller = s.controller as unknown as { reconcile?: (key: string) => Promise<unknown> };
  if (typeof controller.reconcile !== "function") throw new Error("Controller has no reconcile(key) to wrap: time dr's rounds another way");
  const reconcile = controller.reconcile.bind(controller);
  controller.reconcile = (key: string) => {
    if (key === clusterKey("dr")) {
      const situation = gatherCluster(s.controller.ctx, s.cluster("dr"));
      const cpu = process.threadCpuUsage();
      const start = performance.now();
      const plan = planCluster(situation);
      const ms = performance.now() - start;
      const used = process.threadCpuUsage(cpu);
      rounds.push({ vms: situation.vms.length, ms, cpuMs: (used.user + used.system) / 1000, recovers: plan.actions.filter((a) => a.action.type === "Recover").length });
    }
    return reconcile(key);
  };
  return () => { delete controller.reconcile; };
}

/** Steps a second at a time until every VM is Ready in dr. */
async function recover(s: Scenario, crashedAt: number): Promise<Pick<SiteLoss, "readyAfterMs" | "planRounds">> {
  const readyAfterMs = new Map<string, number>();
  const planRounds: PlanRound[] = [];
  const inDr = new Set(DR_HOSTS);
  const unwrap = timeDrRounds(s, planRounds);
  try {
    await s.until(() => {
      const vms = s.vms();
      for (const t of TIERS) {
        if (readyAfterMs.has(t.tier)) continue;
        if (vms.filter((vm) => vm.metadata.labels?.["tier"] === t.tier).every((vm) => ready(vm) && inDr.has(vm.status?.host ?? ""))) readyAfterMs.set(t.tier, s.clock.now() - crashedAt);
      }
      return readyAfterMs.size === TIERS.length;
    }, 1_800_000, 1_000);
  } finally {
    unwrap();
  }
  return { readyAfterMs, planRounds };
}

async function benchSiteLoss(): Promise<void> {
  const loss = await loseSite();
  const timings = DEFAULT_SIM_TIMINGS;
  const { bootMs } = timings;
  // The baseline: the same fence, then every VM at once, as the hosts allow (32 power-ons each), with no order.
  const waves = Math.ceil(SITE_VMS / (MAX_CONCURRENT_POWER_ONS * SITE_HOSTS));
  const unordered = loss.fenceMs + waves * bootMs;
  // The bound: the order kept, each priority group one boot after the one before it is Ready.
  const floors = TIERS.map((_, i) => loss.fenceMs + (i + 1) * bootMs);
  const zertoBatches = Math.ceil(SITE_VMS / (ZERTO.vmsPerHost * SITE_HOSTS));
  const all = Math.max(...loss.readyAfterMs.values());
  const recovering = loss.planRounds.filter((r) => r.vms > 0);
  const cpu = recovering.map((r) => r.cpuMs);
  const wall = recovering.map((r) => r.ms);
  const acting = recovering.filter((r) => r.recovers > 0);
  // The shadow plans must recover what the controller recovered, or situationOf no longer gathers as the engine does.
  const planned = acting.reduce((n, r) => n + r.recovers, 0);
  if (planned !== SITE_VMS) throw new Error(`dr's shadow plans recovered ${planned} VMs, the controller ${SITE_VMS}: situationOf has drifted from engine/reconcile-cluster.ts`);
  const reported = loss.losses.map((l) => l.reported);
  const actual = loss.losses.map((l) => l.actual);
  const within = loss.losses.filter((l) => l.reported <= l.rpo && l.actual <= l.rpo).length;
  console.log(`\nreplication: site loss — all ${SITE_HOSTS} prod hosts, running ${SITE_VMS} replicated VMs (RPO 5–14 min), crash; the controller recovers them into ${SITE_HOSTS} dr hosts (virtual clock)`);
  console.log(table([
    ["", "Vireo", "baseline: one unordered batch", "bound"],
    [`all ${SITE_VMS} Ready in dr after`, fmtSeconds(all), `${fmtSeconds(unordered)} (fence + ${waves} waves of 32 power-ons/host)`, `≥ ${fmtSeconds(floors.at(-1)!)}: fence + one boot per priority group`],
    ...TIERS.map((t, i) => [`  ${t.priority} (${t.count}, ready at ${t.readyCondition})`, fmtSeconds(loss.readyAfterMs.get(t.tier)!), `≤ ${fmtSeconds(unordered)}: any may be in the last wave`, `≥ ${fmtSeconds(floors[i]!)}`]),
    ["  fence: crash to first recovery", fmtSeconds(loss.fenceMs), `the same, then all at once: ${fmtSeconds(loss.fenceMs + bootMs)} unlimited`, `lease expiry ${timings.lockExpiryMs / 1000} s after the last heartbeat`],
    ["Zerto's default throttle", "", `${fmtSeconds(zertoBatches * ZERTO.everyMs)} (${zertoBatches} batches of ${ZERTO.vmsPerHost}/host, 5 min apart)`, "BEHAVIOUR.md: about 50 min"],
    [`dr planner per round, CPU (${recovering.length} rounds)`, `${median(cpu).toFixed(1)} / ${Math.max(...cpu).toFixed(1)} ms`, "median / max", `< ${PLAN_AIM_MS} ms ${Math.max(...cpu) < PLAN_AIM_MS ? "(met)" : "(MISSED)"}`],
    ["  the same, wall", `${median(wall).toFixed(1)} / ${Math.max(...wall).toFixed(1)} ms`, "median / max", "a busy machine's neighbours count here"],
    ["  rounds that recovered VMs, CPU", acting.map((r) => `${r.recovers}: ${r.cpuMs.toFixed(1)} ms`).join(", "), "VMs recovered: CPU time", ""],
    ["split-brain attempts", String(loss.splitBrain), "", "0"],
    ["data lost, status.replication.failover", `${Math.max(...reported).toFixed(1)} / ${mean(reported).toFixed(1)} s`, `hosts' ground truth: ${Math.max(...actual).toFixed(1)} / ${mean(actual).toFixed(1)} s`, `max / mean; each ≤ its RPO: ${within} of ${SITE_VMS}`],
    ["  status against ground truth, worst", `${Math.max(...loss.losses.map((l) => Math.abs(l.reported - l.actual))).toFixed(1)} s`, "", `≤ ${timings.datastoreHeartbeatIntervalMs / 1000} s: the status counts to the last datastore heartbeat`],
    ["wall: set-up / recovery", `${(loss.wall.setupMs / 1000).toFixed(1)} / ${(loss.wall.recoveryMs / 1000).toFixed(1)} s`, `for ${fmtSeconds(loss.wall.setupSimulatedMs)} / ${fmtSeconds(loss.wall.recoverySimulatedMs)} simulated`, ""],
  ]));
}

// ------------------------------------------------------------ 2. the RPO on one shared link

/** The write mix of the 1,000 VMs: how many of each profile, each writing its profile's rate (core/replication.ts). */
const LINK_MIX: readonly [WorkloadProfile, number][] = [["Idle", 300], ["Steady", 400], ["Diurnal", 200], ["Bursty", 100]];
const LINK_HOSTS = 20;
const LINK_RPO_MS = 900_000;
const LINK_HOURS = 4;
/** The first full syncs are seeded over this, then the link is set to the bandwidth measured. */
const SEED_LINK_MIBPS = 100_000;
/** Every replica is read this often: well under RPO/2, so no completed sync goes unseen. */
const SAMPLE_MS = 60_000;

interface LinkVm {
  id: string;
  profile: WorkloadProfile;
  rateMiBps: number;
}

function linkVms(): LinkVm[] {
  const vms: LinkVm[] = [];
  for (const [profile, count] of LINK_MIX) {
    for (let i = 0; i < count; i++) vms.push({ id: `rpo/${profile.toLowerCase()}-${String(i).padStart(3, "0")}`, profile, rateMiBps: WRITE_RATE_MIBPS[profile] });
  }
  return vms;
}

/** What one VM's replica did over the window: its syncs as they completed, and the worst it got. */
interface ReplicaTrack {
  lastStart: number;
  violated: boolean;
  worstLagMs: number;
  syncs: number;
}

interface LinkRun {
  bandwidthMiBps: number;
  tracks: Map<string, ReplicaTrack>;
  wallMs: { seed: number; run: number; reading: number };
  timerEvents: number;
}

function linkSettings(bandwidthMiBps: number): ReplicationSettings {
  return { targetDatastore: "site-b", rpoMs: LINK_RPO_MS, instances: 2, link: "a->b", linkBandwidthMiBps: bandwidthMiBps };
}

async function linkWorld(vms: readonly LinkVm[]): Promise<{ clock: VirtualClock; sim: SimulatedHosts }> {
  const clock = new VirtualClock();
  const sim = new SimulatedHosts({ clock, seed: 1 });
  const host: Partial<HostConfig> = { cpu: { cores: 64, vendor: "intel", features: ["avx2"], overcommitRatio: 4 }, memoryMiB: 262_144 };
  for (let h = 0; h < LINK_HOSTS; h++) await sim.registerHost(`a${h}`, hostConfig({ ...host, datastores: ["site-a"] }));
  await sim.registerHost("b0", hostConfig({ ...host, datastores: ["site-b"] }));
  for (const [i, vm] of vms.entries()) {
    await sim.startVm(vm.id, `a${i % LINK_HOSTS}`, {
      cpu: 1, memoryMiB: 2048, cpuFeatures: [], disks: [{ name: "root", sizeGiB: 1, datastore: "site-a" }],
      nics: [{ network: "prod", macAddress: `52:54:00:01:${(i >> 8).toString(16).padStart(2, "0")}:${(i & 0xff).toString(16).padStart(2, "0")}` }],
      workload: { profile: vm.profile, cpuPercent: 20 },
    });
  }
  await clock.advance(sim.timings.bootMs);
  return { clock, sim };
}

/** Reads every replica; a sync completed since the last reading counts with the lag the replica had just before it. */
function readReplicas(replicas: readonly ReplicaObservation[], tracks: Map<string, ReplicaTrack>, now: number): void {
  for (const r of replicas) {
    const track = tracks.get(r.vm)!;
    const last = r.lastSync!;
    if (last.startedAt !== track.lastStart) {
      if (r.instances.filter((at) => at > track.lastStart).length > 1) throw new Error(`${r.vm}: two syncs completed between readings; read more often`);
      const lagBefore = last.endedAt - track.lastStart;
      track.worstLagMs = Math.max(track.worstLagMs, lagBefore);
      if (lagBefore > LINK_RPO_MS || last.endedAt - last.startedAt > LINK_RPO_MS / 2) track.violated = true;
      track.lastStart = last.startedAt;
      track.syncs++;
    }
    track.worstLagMs = Math.max(track.worstLagMs, now - track.lastStart);
    if (rpoViolated(r, now)) track.violated = true;
  }
}

/** 1,000 VMs replicating over one link of `bandwidthMiBps` for LINK_HOURS after their first full syncs. */
async function runLink(vms: readonly LinkVm[], bandwidthMiBps: number): Promise<LinkRun> {
  const seedStart = performance.now();
  const { clock, sim } = await linkWorld(vms);
  try {
    for (const vm of vms) await sim.replicateVm(vm.id, linkSettings(SEED_LINK_MIBPS));
    while ((await sim.observe()).replicas!.some((r) => r.lastSync === undefined)) await clock.advance(1_000);
    for (const vm of vms) await sim.replicateVm(vm.id, linkSettings(bandwidthMiBps));
    const tracks = new Map((await sim.observe()).replicas!.map((r) => [r.vm, { lastStart: r.lastSync!.startedAt, violated: false, worstLagMs: 0, syncs: 0 }]));
    const seed = performance.now() - seedStart;
    let reading = 0;
    let timerEvents = 0;
    const runStart = performance.now();
    const end = clock.now() + LINK_HOURS * 3_600_000;
    while (clock.now() < end) {
      const next = Math.min(end, clock.now() + SAMPLE_MS);
      // The hosts' timers are synchronous: fired one by one without the turns a controller would need.
      while (clock.fireNext(next)) timerEvents++;
      await clock.advanceTo(next);
      const readStart = performance.now();
      readReplicas((await sim.observe()).replicas!, tracks, clock.now());
      reading += performance.now() - readStart;
    }
    return { bandwidthMiBps, tracks, wallMs: { seed, run: performance.now() - runStart - reading, reading }, timerEvents };
  } finally {
    await sim.close();
  }
}

/** Max-min fair shares of the link (what even shares of it come to): the VMs writing faster than the level fall behind. */
function fairShareLevel(rates: readonly number[], bandwidthMiBps: number): number {
  const sorted = [...rates].sort((a, b) => a - b);
  let left = bandwidthMiBps;
  for (const [i, rate] of sorted.entries()) {
    const level = left / (sorted.length - i);
    if (rate > level) return level;
    left -= rate;
  }
  return Number.POSITIVE_INFINITY;
}

/** What the whole controller makes of the same 1,000 VMs, and what it costs to run it. */
interface ControllerLink {
  steadyWallMs: number;
  steadyCpuMs: number;
  observeMs: number;
  /** VMs whose Replicated condition is True at the end of the steady window, and that report a violation. */
  replicated: number;
  violating: number;
  /** VMs the controller says the link will fail (Replicated False, LinkTooSlow): on the link that fits, and once it drops. */
  linkTooSlowFits: number;
  linkTooSlow: number;
  setupWallMs: number;
}

/** How long the controller runs the 1,000 VMs in their steady state, ms simulated: a sample of the pace. */
const CONTROLLER_STEADY_MS = 900_000;

function linkFleetYaml(vms: readonly LinkVm[], bandwidthMiBps: number): string {
  let yaml = linkClusterYaml(bandwidthMiBps) + clusterYaml("dr");
  for (let h = 0; h < LINK_HOSTS; h++) yaml += hostYaml(`a${h}`, { cluster: "prod", cores: 64, memoryMiB: 262_144, datastores: ["site-a"], networks: ["prod"] });
  yaml += hostYaml("b0", { cluster: "dr", cores: 64, memoryMiB: 262_144, datastores: ["site-b"], networks: ["prod"] });
  for (const vm of vms) {
    const [namespace, name] = vm.id.split("/") as [string, string];
    yaml += `apiVersion: vireo.dev/v1alpha1
kind: VirtualMachine
metadata: {name: ${name}, namespace: ${namespace}}
spec:
  cpu: 1
  memoryMiB: 2048
  disks: [{name: root, sizeGiB: 1, datastore: site-a}]
  networks: [{name: prod}]
  placement: {cluster: prod}
  workload: {profile: ${vm.profile}, cpuPercent: 20}
  replication: {targetCluster: dr, rpoSeconds: ${LINK_RPO_MS / 1000}, instances: 2}
---
`;
  }
  return yaml;
}

function linkClusterYaml(bandwidthMiBps: number): string {
  return clusterYaml("prod").replace("  placement: {strategy: Spread}\n", `  placement: {strategy: Spread}\n  replication: {bandwidthMiBps: ${bandwidthMiBps}}\n`);
}

/**
 * The 1,000 VMs through the controller: seeded over a fast link, then CONTROLLER_STEADY_MS on the link that
 * carries them (timed, with the hosts' observation timed apart), then the link dropped below their writes.
 */
async function linkThroughController(vms: readonly LinkVm[], bandwidths: { fits: number; slow: number }): Promise<ControllerLink> {
  const setupStart = performance.now();
  const s = await Scenario.start(linkFleetYaml(vms, SEED_LINK_MIBPS));
  const observations = timeObservations(s.sim);
  try {
    const replicated = () => s.vms().filter((vm) => condition(vm, "Replicated")?.status === "True").length;
    await s.until(() => replicated() === vms.length, 3_600_000, 10_000);
    s.apply(linkClusterYaml(bandwidths.fits));
    await s.advance(10_000);
    const setupWallMs = performance.now() - setupStart;
    observations.reset();
    const cpu = process.threadCpuUsage();
    const start = performance.now();
    await s.advance(CONTROLLER_STEADY_MS);
    const steadyWallMs = performance.now() - start;
    const used = process.threadCpuUsage(cpu);
    const linkTooSlow = () => s.vms().filter((vm) => condition(vm, "Replicated")?.reason === "LinkTooSlow").length;
    const steady = { steadyWallMs, steadyCpuMs: (used.user + used.system) / 1000, observeMs: observations.ms(), replicated: replicated(), violating: s.vms().filter((vm) => vm.status?.replication?.rpoViolated).length, linkTooSlowFits: linkTooSlow() };
    s.apply(linkClusterYaml(bandwidths.slow));
    await s.advance(10_000);
    return { ...steady, linkTooSlow: linkTooSlow(), setupWallMs };
  } finally {
    await s.stop();
  }
}

async function benchLink(): Promise<void> {
  const vms = linkVms();
  const total = vms.reduce((sum, vm) => sum + vm.rateMiBps, 0);
  const bandwidths = { fits: Math.round(total * 1.2), slow: Math.round(total * 0.95) };
  const runs = [await runLink(vms, bandwidths.fits), await runLink(vms, bandwidths.slow)];
  const controller = await linkThroughController(vms, bandwidths);
  console.log(`\nreplication: RPO ${LINK_RPO_MS / 60_000} min across ${vms.length.toLocaleString("en")} VMs on one link, ${LINK_HOURS} h simulated after the first full syncs (simulated hosts alone)`);
  console.log(`  writes: ${LINK_MIX.map(([p, n]) => `${n} ${p} × ${WRITE_RATE_MIBPS[p]}`).join(", ")} MiB/s = ${total.toFixed(0)} MiB/s in all`);
  const rows: string[][] = [["", ...runs.map((r) => `link ${r.bandwidthMiBps} MiB/s`), "bound"]];
  rows.push(["total writes / bandwidth", ...runs.map((r) => `${(total / r.bandwidthMiBps).toFixed(2)}`), "≤ 1: the link carries every RPO"]);
  rows.push(["VMs never violating the RPO", ...runs.map((r) => pct([...r.tracks.values()].filter((t) => !t.violated).length, vms.length)), ""]);
  for (const [profile] of LINK_MIX) {
    rows.push([`  violating, ${profile} (${WRITE_RATE_MIBPS[profile]} MiB/s)`, ...runs.map((r) => String(vms.filter((vm) => vm.profile === profile && r.tracks.get(vm.id)!.violated).length)), ""]);
  }
  rows.push(["violations predicted: controller", String(controller.linkTooSlowFits), String(controller.linkTooSlow), "Replicated False, LinkTooSlow (the controller run below)"]);
  rows.push(["violations predicted: fair shares", ...runs.map((r) => { const level = fairShareLevel(vms.map((vm) => vm.rateMiBps), r.bandwidthMiBps); return `${vms.filter((vm) => vm.rateMiBps > level).length}${Number.isFinite(level) ? ` (> ${level.toFixed(2)} MiB/s)` : ""}`; }), "the VMs writing above the max-min fair share"]);
  rows.push(["worst lag", ...runs.map((r) => fmtSeconds(Math.max(...[...r.tracks.values()].map((t) => t.worstLagMs)))), `≤ RPO ${LINK_RPO_MS / 1000} s; RPO/2 + Σ writes × RPO/2 ÷ bandwidth = ${fmtSeconds(LINK_RPO_MS / 2 * (1 + total / runs[0]!.bandwidthMiBps))} on the first`]);
  rows.push(["syncs completed", ...runs.map((r) => [...r.tracks.values()].reduce((n, t) => n + t.syncs, 0).toLocaleString("en")), ""]);
  rows.push(["wall: seed / run / reading", ...runs.map((r) => `${(r.wallMs.seed / 1000).toFixed(1)} / ${(r.wallMs.run / 1000).toFixed(1)} / ${(r.wallMs.reading / 1000).toFixed(1)} s`), `${runs[0]!.timerEvents.toLocaleString("en")} / ${runs[1]!.timerEvents.toLocaleString("en")} timer events`]);
  console.log(table(rows));
  const perHour = 3_600_000 / CONTROLLER_STEADY_MS;
  console.log(`  the same VMs through the whole controller (virtual clock, observing every second): seeded, then ${CONTROLLER_STEADY_MS / 60_000} min on the ${bandwidths.fits} MiB/s link, then the link set to ${bandwidths.slow} MiB/s`);
  console.log(table([
    ["", "controller", "hosts alone", "bound"],
    ["wall per simulated hour", `${(controller.steadyWallMs * perHour / 1000).toFixed(1)} s (CPU ${(controller.steadyCpuMs * perHour / 1000).toFixed(1)} s)`, `${(runs[0]!.wallMs.run / LINK_HOURS / 1000).toFixed(2)} s`, `${LINK_HOURS} h take ${(controller.steadyWallMs * perHour * LINK_HOURS / 1000).toFixed(0)} s through the controller`],
    ["  of which the hosts' observations", `${(controller.observeMs * perHour / 1000).toFixed(1)} s`, `${(runs[0]!.wallMs.reading / LINK_HOURS / 1000).toFixed(2)} s (a reading a minute)`, ""],
    ["Replicated True / rpoViolated, at the end", `${controller.replicated} / ${controller.violating}`, `${[...runs[0]!.tracks.values()].filter((t) => !t.violated).length} / 0`, `${vms.length} / 0`],
    ["set-up wall (seeding 1,000 replicas)", `${(controller.setupWallMs / 1000).toFixed(1)} s`, `${(runs[0]!.wallMs.seed / 1000).toFixed(1)} s`, ""],
  ]));
}

function pct(n: number, of: number): string {
  return `${n} (${((100 * n) / of).toFixed(1)} %)`;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
}

function fmtSeconds(ms: number): string {
  return `${Math.round(ms / 1000).toLocaleString("en")} s`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => "  " + r.map((cell, i) => (i === 0 || i === r.length - 1 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("   ").trimEnd()).join("\n");
}
