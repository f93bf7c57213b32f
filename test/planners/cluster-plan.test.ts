// The cluster planner as a pure function: one table of situations built by hand (hosts, their reports, the
// VMs and where they run, HA policies, the time) and what planCluster must decide for each — the actions
// and the stage that takes each, the verdicts on the VMs, the cluster's status and when to look again.
// No simulator, no clock, no store.

import { test } from "node:test";
import assert from "node:assert/strict";
import type { HAPolicy, Host, HostCluster, HostClusterStatus, VirtualMachine } from "../../controller/api/types.ts";
import { validateManifest } from "../../controller/api/schema.ts";
import type { VmObservation } from "../../controller/core/observation.ts";
import type { CandidateHost, PlacedVm } from "../../controller/placement/index.ts";
import { planCluster } from "../../controller/planners/cluster/plan.ts";
import type { ClusterAction, ClusterMemory, ClusterPlan, ClusterSituation, HostFacts, VmFacts, VmVerdict } from "../../controller/planners/cluster/types.ts";
import { protectionOf } from "../../controller/planners/ha/protection.ts";
import { hostPhase, unavailableReason } from "../../controller/planners/hosts.ts";
import { desiredConfig } from "../../controller/planners/lifecycle.ts";
import { hostLabels } from "../../controller/api/membership.ts";
import {
  GiB,
  T0,
  candidateOf,
  clusterObject,
  haPolicyObject,
  hostObject,
  hostReport,
  networksOf,
  vmObject,
  vmReport,
  type HostReportOptions,
} from "../support/objects.ts";

const NOW = T0 + 3_600_000;
/** A host that reported two seconds ago. */
const FRESH: HostReportOptions = { at: NOW - 2_000 };
/** A host silent on the network and its datastore for two minutes: Failed, its 80 s lease long expired. */
const CRASHED_LONG_AGO: HostReportOptions = { at: NOW - 120_000 };
/** A host silent for 30 s: Failed, its lease on its VMs' disks expires at NOW + 50 s. */
const CRASHED_JUST_NOW: HostReportOptions = { at: NOW - 30_000 };

// ------------------------------------------------------------------ the situation, as the engine gathers it

interface World {
  cluster?: HostCluster;
  /** Each host, and its latest report; a host without one is still being registered. */
  hosts: { host: Host; report?: HostReportOptions }[];
  /** Each VM, and how its host reports it, if one does. */
  vms: { vm: VirtualMachine; instance?: VmObservation }[];
  policies?: HAPolicy[];
  memory?: ClusterMemory;
  /** NOW unless said. */
  now?: number;
}

const running = (vm: VirtualMachine, host: string): { vm: VirtualMachine; instance: VmObservation } => ({ vm, instance: vmReport(vm, host, "Running", { since: NOW - 3_000_000 }) });
const waiting = (vm: VirtualMachine): { vm: VirtualMachine } => ({ vm });

/** What the engine's gather() makes of the world: host facts, VM facts with their protection, the placement snapshot. */
function situation(w: World): ClusterSituation {
  const cluster = w.cluster ?? clusterObject();
  const instances = w.vms.flatMap((v) => (v.instance ? [v.instance] : []));
  const hosts: HostFacts[] = w.hosts.map(({ host, report }) => {
    const observed = report ? hostReport(host, { ...report, vms: instances }) : undefined;
    const busy = instances.filter((i) => i.host === host.metadata.name && i.power !== "Off").length;
    const phase = hostPhase(host, observed, busy, w.now ?? NOW, cluster.spec.ha.failureDetectionSeconds);
    const unavailable = observed ? unavailableReason(phase, false) : "not registered";
    return { name: host.metadata.name, host, ...(observed ? { observed } : {}), cluster, phase, ...(unavailable ? { unavailable } : {}) };
  });
  const byName = new Map(hosts.map((h) => [h.name, h]));
  const vms: VmFacts[] = w.vms.map(({ vm, instance }) => {
    const instanceHost = instance ? byName.get(instance.host) : undefined;
    return { vm, declared: vm, role: { kind: "Home" }, plans: [], id: `default/${vm.metadata.name}`, ...(instance ? { instance } : {}), ...(instanceHost ? { instanceHost } : {}), protection: protectionOf(vm, w.policies ?? [], cluster), networks: networksOf(vm) };
  });
  const candidates: CandidateHost[] = hosts.map(candidateOf);
  const placed: PlacedVm[] = w.vms.flatMap(({ vm, instance }) => instance && instance.power !== "Off" && byName.has(instance.host)
    ? [{ id: instance.id, namespace: "default", labels: vm.metadata.labels ?? {}, host: instance.host, cpu: instance.config.cpu, memoryMiB: instance.config.memoryMiB, ...(vm.spec.placement.vmAntiAffinity?.required ? { antiAffinity: vm.spec.placement.vmAntiAffinity.required } : {}) }]
    : []);
  return {
    cluster,
    hosts,
    vms,
    site: { kind: "Up" },
    replicaSites: new Map(),
    snapshot: { hosts: candidates, placed, strategy: cluster.spec.placement.strategy },
    memory: w.memory ?? { attempts: new Map(), failovers: new Map(), balancing: { holdDowns: new Map() }, moves: new Map() },
    migrations: [],
    requests: [],
    hostClusters: new Map(hosts.map((h) => [h.name, cluster.metadata.name])),
    now: w.now ?? NOW,
  };
}

const three = () => ["h1", "h2", "h3"].map((name) => hostObject(name));

/** Each host with its report: a fresh one unless `reports` gives another, or undefined (not reported yet: registering). */
function reported(hosts: Host[], reports: Record<string, HostReportOptions | undefined> = {}): World["hosts"] {
  return hosts.map((host) => {
    const report = host.metadata.name in reports ? reports[host.metadata.name] : FRESH;
    return report ? { host, report } : { host };
  });
}

// ------------------------------------------------------------------ the worlds the cases share

/** h1 and h2 each run an 8 GiB protected VM, h3 is empty: one failure leaves room for two 6 GiB power-ons, not three. */
function admissionWorld(): World {
  return {
    hosts: reported(three()),
    vms: [
      running(vmObject("a", { memoryGiB: 8 }), "h1"),
      running(vmObject("b", { memoryGiB: 8 }), "h2"),
      waiting(vmObject("n1", { memoryGiB: 6 })),
      waiting(vmObject("n2", { memoryGiB: 6 })),
      waiting(vmObject("n3", { memoryGiB: 6 })),
      waiting(vmObject("huge", { memoryGiB: 64 })),
    ],
  };
}

/** h1 crashed two minutes ago with db (12 GiB) on it; h3 runs 12 of its 16 GiB: the one place for 12 GiB left is h2. */
function crashWorld(extra: World["vms"] = []): World {
  return {
    hosts: reported(three(), { h1: CRASHED_LONG_AGO }),
    vms: [...extra, running(vmObject("db", { memoryGiB: 12 }), "h1"), running(vmObject("filler", { memoryGiB: 12 }), "h3")],
  };
}

/** h1 is in maintenance and still runs web (Always) and manual (Manual) — whichever are given. */
function maintenanceWorld(names: ("web" | "manual" | "cold")[]): World {
  const vms = { web: running(vmObject("web"), "h1"), manual: running(vmObject("manual", { runStrategy: "Manual" }), "h1"), cold: running(vmObject("cold", { migrationPolicy: "Cold" }), "h1") };
  return { hosts: reported([hostObject("h1", { maintenance: true }), hostObject("h2"), hostObject("h3")]), vms: names.map((n) => vms[n]) };
}

/** A bit of everything: two restarts, power-ons admitted, refused and held behind, an unschedulable VM, an evacuation. */
function mixedWorld(): World {
  const hosts = [hostObject("h1"), hostObject("h2"), hostObject("h3", { maintenance: true }), hostObject("h4"), hostObject("h5", { memoryGiB: 32 })];
  return {
    hosts: reported(hosts, { h1: CRASHED_LONG_AGO }),
    policies: [haPolicyObject("gold", "High", { tier: "gold" })],
    vms: [
      running(vmObject("db", { memoryGiB: 8, labels: { tier: "gold" } }), "h1"),
      running(vmObject("cache", { memoryGiB: 4 }), "h1"),
      running(vmObject("web", { memoryGiB: 4 }), "h3"),
      running(vmObject("app", { memoryGiB: 8 }), "h4"),
      waiting(vmObject("n1", { memoryGiB: 6 })),
      waiting(vmObject("n2", { memoryGiB: 6, labels: { tier: "gold" } })),
      waiting(vmObject("n3", { memoryGiB: 12, labels: { tier: "gold" } })),
      waiting(vmObject("huge", { memoryGiB: 40 })),
    ],
  };
}

// ------------------------------------------------------------------ the table

type ExpectedVerdict = { [K in keyof VmVerdict]?: VmVerdict[K] | RegExp } & { kind: VmVerdict["kind"] } & Record<string, unknown>;

interface Case {
  name: string;
  world: () => World;
  /** Every action of the plan, in order: "stage Type vm[@host][ mode]". */
  actions: string[];
  /** Every verdict of the plan, by VM name; each listed field must match (a RegExp matches a string). */
  verdicts: Record<string, ExpectedVerdict>;
  status?: Partial<HostClusterStatus>;
  wakeAt?: number;
  registering?: boolean;
  /** Anything else the case is about. */
  also?: (plan: ClusterPlan, s: ClusterSituation) => void;
}

const cases: Case[] = [
  {
    name: "a waiting VM is placed: a Start on the best host (the emptiest, with Spread), from the placement stage",
    world: () => ({ hosts: reported(three()), vms: [running(vmObject("busy1", { memoryGiB: 8 }), "h1"), running(vmObject("busy3", { memoryGiB: 8 }), "h3"), waiting(vmObject("web"))] }),
    actions: ["placement Start default/web@h2"],
    verdicts: {},
    also: (plan, s) => {
      const start = plan.actions[0]!.action as Extract<ClusterAction["action"], { type: "Start" }>;
      const web = s.vms.find((f) => f.id === "default/web")!;
      assert.deepEqual(start.config, { ...desiredConfig(web.vm, web.networks, s.cluster, []), isolationResponse: "LeavePoweredOn" });
      assert.match(start.reason, /^placement \(score [\d.]+\)$/);
      assert.deepEqual(plan.stages.map((st) => [st.stage, st.actions, st.verdicts]), [["conversions", 0, 0], ["restarts", 0, 0], ["admission", 0, 0], ["placement", 1, 0], ["faultTolerance", 0, 0], ["evacuation", 0, 0], ["migrations", 0, 0], ["balancing", 0, 0], ["replication", 0, 0]]);
    },
  },
  {
    name: "a VM of a crashed host (Failed, its lease expired) is restarted by the restarts stage before a new power-on of higher priority takes the room",
    // Admission control off: only room decides. aaa-urgent comes first in the list and has the higher priority.
    world: () => ({
      ...crashWorld([waiting(vmObject("aaa-urgent", { memoryGiB: 12, labels: { tier: "urgent" } }))]),
      cluster: clusterObject({ policy: "Disabled" }),
      policies: [haPolicyObject("urgent", "Highest", { tier: "urgent" })],
    }),
    actions: ["restarts Start default/db@h2"],
    verdicts: { "aaa-urgent": { kind: "Unschedulable", message: /^0\/3 hosts fit: .*2 insufficient memory/ } },
    also: (plan) => {
      const restart = plan.actions[0]!;
      assert.ok(restart.stage === "restarts");
      assert.deepEqual(restart.restart, { fromHost: "h1", reason: "HostFailure", failedAt: NOW - 120_000, priority: "Medium" });
      assert.match(restart.action.reason, /^HA restart after HostFailure of host h1$/);
      assert.deepEqual(plan.newFailovers, [{ vm: "default/db", record: { fromHost: "h1", reason: "HostFailure", failedAt: NOW - 120_000, attempts: 0 } }]);
    },
  },
  {
    name: "a VM of a failed host waits for the host's lease on its disks to expire: Waiting WaitingForLeaseExpiry until then, and the plan wakes then",
    world: () => ({ hosts: reported(three(), { h1: CRASHED_JUST_NOW }), vms: [running(vmObject("db"), "h1")] }),
    actions: [],
    verdicts: { db: { kind: "Waiting", reason: "WaitingForLeaseExpiry", until: NOW + 50_000, message: /host h1's lease on the VM's disks has expired/ } },
    wakeAt: NOW + 50_000,
    also: (plan) => assert.deepEqual(plan.newFailovers.map((f) => f.vm), ["default/db"], "the failover begins now; only the restart waits"),
  },
  {
    name: "a VM larger than every host is Unschedulable, not refused by admission control, even while admission control refuses others",
    world: admissionWorld,
    actions: ["placement Start default/n1@h3", "placement Start default/n2@h3"],
    verdicts: {
      n3: { kind: "NotAdmitted", ownReason: false, behind: undefined, message: /^admission control \(HostFailuresToTolerate 1\): with it running the cluster would tolerate 0 host failures, 1 short/ },
      huge: { kind: "Unschedulable", message: "0/3 hosts fit: 3 insufficient memory" },
    },
  },
  {
    name: "admission control refuses a power-on that breaks HostFailuresToTolerate even on its own (NotAdmitted), and the VMs of lower priority behind it still start",
    world: () => ({
      hosts: reported(three()),
      policies: [haPolicyObject("gold", "High", { tier: "gold" })],
      vms: [
        running(vmObject("a", { memoryGiB: 8 }), "h1"),
        running(vmObject("b", { memoryGiB: 8 }), "h2"),
        // 14 GiB fits h3 alone, but nothing could take it back if h3 failed.
        waiting(vmObject("big", { memoryGiB: 14, labels: { tier: "gold" } })),
        waiting(vmObject("small", { memoryGiB: 2 })),
      ],
    }),
    actions: ["placement Start default/small@h3"],
    verdicts: { big: { kind: "NotAdmitted", ownReason: true, behind: undefined, message: /refused on its own, whatever else waits$/ } },
    status: { vmsAwaitingCapacity: 1, vmsUnschedulable: 0 },
  },
  {
    name: "an HA restart waiting for capacity holds back every power-on: both count as awaiting capacity",
    world: () => ({
      hosts: reported(three(), { h1: CRASHED_LONG_AGO }),
      vms: [running(vmObject("db", { memoryGiB: 14 }), "h1"), running(vmObject("x", { memoryGiB: 8 }), "h2"), running(vmObject("y", { memoryGiB: 8 }), "h3"), waiting(vmObject("new", { memoryGiB: 1 }))],
    }),
    actions: [],
    verdicts: {
      db: { kind: "Waiting", reason: "InsufficientCapacity", message: /^no host can take it now: 0\/3 hosts fit/ },
      new: { kind: "NotAdmitted", ownReason: false, message: /1 HA restart waits for capacity or their turn, and comes first/ },
    },
    status: { vmsAwaitingCapacity: 2, vmsUnschedulable: 0, hostsReady: 2, hostsTotal: 3 },
  },
  {
    name: "a running VM on a host in maintenance migrates live to the best host, from the evacuation stage, with a Migrating verdict",
    world: () => maintenanceWorld(["web"]),
    actions: ["evacuation Migrate default/web@h2"],
    verdicts: { web: { kind: "Migrating", target: "h2" } },
    also: (plan) => {
      assert.equal(plan.actions[0]!.action.reason, "host h1 is in maintenance: evacuating");
      assert.equal(plan.moves.get("default/web")?.stage, "evacuation", "the move is remembered, for its attempts");
    },
  },
  {
    name: "a running VM whose migration policy is Cold is shut down by the evacuation stage, with a cold Evacuating verdict",
    world: () => maintenanceWorld(["cold"]),
    actions: ["evacuation Stop default/cold Shutdown"],
    verdicts: { cold: { kind: "Evacuating", host: "h1", message: "host h1 is in maintenance", cold: true } },
    also: (plan) => assert.equal(plan.actions[0]!.action.reason, "host h1 is in maintenance: moving the VM (cold)"),
  },
  {
    name: "a Manual VM on a host in maintenance is left alone: no action, no verdict",
    world: () => maintenanceWorld(["manual"]),
    actions: [],
    verdicts: {},
  },
  {
    name: "while a host is still being registered (declared, not yet reported) nothing is started, the plan says registering and only evacuates",
    world: () => ({ hosts: reported([hostObject("h1", { maintenance: true }), hostObject("h2"), hostObject("h3")], { h3: undefined }), vms: [...maintenanceWorld(["web"]).vms, waiting(vmObject("new"))] }),
    actions: ["evacuation Migrate default/web@h2"],
    verdicts: { web: { kind: "Migrating", target: "h2" } },
    registering: true,
    also: (plan) => assert.deepEqual(plan.stages.map((st) => st.stage), ["conversions", "evacuation", "migrations", "balancing", "replication"]),
  },
  {
    name: "the cluster status counts the VMs running, those unschedulable and those awaiting capacity, with the hosts and their capacity",
    world: admissionWorld,
    actions: ["placement Start default/n1@h3", "placement Start default/n2@h3"],
    verdicts: { n3: { kind: "NotAdmitted" }, huge: { kind: "Unschedulable" } },
    status: {
      observedGeneration: 1,
      hostsReady: 3,
      hostsTotal: 3,
      capacity: { cpu: 3 * 16 * 4, memoryMiB: 48 * GiB },
      allocated: { cpu: 4, memoryMiB: 16 * GiB },
      vmsRunning: 2,
      vmsTotal: 6,
      vmsUnschedulable: 1,
      vmsAwaitingCapacity: 1,
      // As it will be with n1 and n2 running: one failure survivable, not two.
      failoverCapacity: { tolerates: 1, required: 1, worstCase: ["h1", "h3"], unplaceable: 2 },
    },
  },
  {
    name: "a failover whose VM runs Ready on its new host is over: recovered, with its duration, and its restart attempts are settled",
    world: () => ({
      hosts: reported(three(), { h1: CRASHED_LONG_AGO }),
      vms: [{ ...running(vmObject("db", { status: { phase: "Running", conditions: [{ type: "Ready", status: "True", reason: "Running", message: "", lastTransitionTime: new Date(NOW).toISOString() }] } }), "h2") }],
      memory: {
        attempts: new Map([["default/db", { count: 1, firstAt: NOW - 300_000 }]]),
        failovers: new Map([["default/db", { fromHost: "h1", toHost: "h2", reason: "HostFailure", failedAt: NOW - 300_000, attempts: 1 }]]),
        balancing: { holdDowns: new Map() },
        moves: new Map(),
      },
    }),
    actions: [],
    verdicts: {},
    also: (plan) => {
      assert.deepEqual(plan.recovered, [{ vm: "default/db", record: { fromHost: "h1", toHost: "h2", reason: "HostFailure", failedAt: NOW - 300_000, attempts: 1 }, seconds: 300 }]);
      assert.deepEqual(plan.settled, ["default/db"]);
      assert.deepEqual(plan.newFailovers, []);
    },
  },
  {
    name: "the same situation gives the same plan, and planning leaves the situation as it was",
    world: mixedWorld,
    actions: ["restarts Start default/db@h5", "restarts Start default/cache@h2", "placement Start default/n2@h5", "evacuation Migrate default/web@h2"],
    verdicts: {
      // n3 (High) fits on its own but not after n2 (High): n1, of lower priority, waits behind it.
      n3: { kind: "NotAdmitted", ownReason: false, behind: undefined },
      n1: { kind: "NotAdmitted", ownReason: false, behind: "default/n3", message: /waiting behind default\/n3, of higher priority/ },
      huge: { kind: "Unschedulable" },
      web: { kind: "Migrating", target: "h2" },
    },
    also: (plan) => {
      const s = situation(mixedWorld());
      const before = structuredClone(s);
      assert.deepEqual(planCluster(s), plan, "a second situation built the same way gives the same plan");
      assert.deepEqual(planCluster(s), plan, "planning it again too");
      assert.deepEqual(s, before, "the situation is not modified");
    },
  },
];

// ------------------------------------------------------------------ running the table

function describeAction(a: ClusterAction): string {
  const action = a.action;
  if (action.type === "Start") return `${a.stage} Start ${action.vm}@${action.host}`;
  if (action.type === "Migrate") return `${a.stage} Migrate ${action.vm}@${action.target}`;
  return action.type === "Stop" ? `${a.stage} Stop ${action.vm} ${action.mode}` : `${a.stage} ${action.type} ${action.vm}`;
}

function assertVerdict(name: string, actual: VmVerdict | undefined, expected: ExpectedVerdict): void {
  assert.ok(actual, `${name} has a verdict`);
  for (const [field, want] of Object.entries(expected)) {
    const got: unknown = (actual as unknown as Record<string, unknown>)[field];
    if (want instanceof RegExp) assert.match(String(got), want, `${name}.${field}`);
    else assert.deepEqual(got, want, `${name}.${field}`);
  }
}

for (const c of cases) {
  test(c.name, () => {
    const s = situation(c.world());
    const plan = planCluster(s);
    assert.deepEqual(plan.actions.map(describeAction), c.actions, "actions");
    assert.deepEqual([...plan.verdicts.keys()].sort(), Object.keys(c.verdicts).map((n) => `default/${n}`).sort(), "the VMs with a verdict");
    for (const [name, expected] of Object.entries(c.verdicts)) assertVerdict(name, plan.verdicts.get(`default/${name}`), expected);
    for (const [id, verdict] of plan.verdicts) assert.equal(verdict.generation, s.vms.find((f) => f.id === id)?.vm.metadata.generation, `${id}: the verdict names the generation it was made for`);
    for (const [field, want] of Object.entries(c.status ?? {})) assert.deepEqual(plan.status[field as keyof HostClusterStatus], want, `status.${field}`);
    // Every case's cluster balances (Manual, the default): its next pass is due one interval on.
    assert.equal(plan.wakeAt, Math.min(c.wakeAt ?? Infinity, s.now + s.cluster.spec.balancing.intervalSeconds * 1000), "wakeAt");
    assert.equal(plan.registering, c.registering ?? false, "registering");
    c.also?.(plan, s);
  });
}

test("the hand-built objects are what the API server's defaulting makes of their short manifests", () => {
  const defaulted = (doc: unknown) => {
    const result = validateManifest(doc);
    assert.ok(result.ok, JSON.stringify(result));
    return result.object.spec;
  };
  const host = hostObject("h1");
  assert.deepEqual(defaulted({ apiVersion: host.apiVersion, kind: "Host", metadata: { name: "h1" }, spec: { hypervisor: "esx", cpu: { cores: 16, vendor: "intel" }, memoryMiB: 16 * GiB, datastores: ["shared"], networks: ["prod"] } }), host.spec);
  const cluster = clusterObject();
  assert.deepEqual(defaulted({ apiVersion: cluster.apiVersion, kind: "HostCluster", metadata: { name: "prod" }, spec: { hostSelector: cluster.spec.hostSelector } }), cluster.spec);
  const vm = vmObject("web");
  assert.deepEqual(defaulted({ apiVersion: vm.apiVersion, kind: "VirtualMachine", metadata: { name: "web", namespace: "default" }, spec: { cpu: 2, memoryMiB: 4 * GiB, disks: vm.spec.disks, networks: vm.spec.networks, placement: { cluster: "prod" } } }), vm.spec);
  const policy = haPolicyObject("gold", "Medium", { tier: "gold" });
  assert.deepEqual(defaulted({ apiVersion: policy.apiVersion, kind: "HAPolicy", metadata: { name: "gold", namespace: "default" }, spec: { selector: policy.spec.selector } }), policy.spec);
  assert.deepEqual(hostReport(host, FRESH).config.labels, hostLabels(host));
});

test("power-ons wait while a VM of a failed host waits for its lease, so they leave it room: it restarts once the lease expires", () => {
  // Three 20 GiB hosts; h1 crashed 30 s ago with db (14 GiB): its lease expires at NOW + 50 s. h2 and h3
  // run 4 GiB each. Were the two 6 GiB power-ons placed, one on each, db (protected) would find 10 GiB
  // free on each host after the lease, and nowhere to go: admission control holds them while db waits.
  const hosts = ["h1", "h2", "h3"].map((n) => hostObject(n, { memoryGiB: 20 }));
  const db = running(vmObject("db", { memoryGiB: 14 }), "h1");
  const others = [running(vmObject("x", { memoryGiB: 4 }), "h2"), running(vmObject("y", { memoryGiB: 4 }), "h3")];
  const newVms = [vmObject("n1", { memoryGiB: 6 }), vmObject("n2", { memoryGiB: 6 })];
  const first = planCluster(situation({ hosts: reported(hosts, { h1: CRASHED_JUST_NOW }), vms: [db, ...others, ...newVms.map(waiting)] }));
  assert.equal(first.verdicts.get("default/db")?.kind, "Waiting");
  assert.deepEqual(["default/n1", "default/n2"].map((id) => first.verdicts.get(id)?.kind), ["NotAdmitted", "NotAdmitted"]);
  assert.match((first.verdicts.get("default/n1") as { message: string }).message, /1 HA restart waits for capacity or their turn, and comes first/);
  const later = NOW + 60_000;
  const starts = new Map(first.actions.flatMap((a) => (a.action.type === "Start" ? [[a.action.vm, a.action.host] as const] : [])));
  const vms = [db, ...others, ...newVms.map((vm) => {
    const host = starts.get(`default/${vm.metadata.name}`);
    return host ? { vm, instance: vmReport(vm, host, "Running", { since: NOW + 20_000 }) } : waiting(vm);
  })];
  const second = planCluster(situation({ now: later, hosts: reported(hosts, { h1: CRASHED_JUST_NOW, h2: { at: later - 2_000 }, h3: { at: later - 2_000 } }), vms }));
  const restart = second.actions.find((a) => a.stage === "restarts" && a.action.vm === "default/db");
  assert.ok(restart, `db is restarted once its lease has expired; it is left with ${JSON.stringify(second.verdicts.get("default/db"))}`);
});
