// The balancing stage (DRS) of the cluster planner, on hand-built clusters: what a pass moves, recommends
// or leaves alone, and why. Each case is a cluster (hosts, the VMs on them and their CPU load, the settings,
// what balancing remembers) and what planCluster must make of it. No simulator, no clock.

import { test } from "node:test";
import assert from "node:assert/strict";
import type { VirtualMachine, VmAffinityTerm } from "../../controller/api/types.ts";
import { HOST_LABEL } from "../../controller/api/types.ts";
import type { MigrationObservation } from "../../controller/core/migration.ts";
import { validateManifest } from "../../controller/api/schema.ts";
import { planCluster } from "../../controller/planners/cluster/plan.ts";
import type { ClusterAction, ClusterPlan, ClusterSituation } from "../../controller/planners/cluster/types.ts";
import { HOLD_DOWN_MAX_MS, HOLD_DOWN_MS, holdDownAfterMove } from "../../controller/planners/balancing/hold-down.ts";
import { recommendationId } from "../../controller/planners/balancing/recommendations.ts";
import { migrationSettingsOf } from "../../controller/planners/migration/settings.ts";
import { NOW, balancingCluster, balancingSituation, type BalancingWorld, type RunningVm } from "../support/balancing.ts";
import { haPolicyObject, hostObject, vmObject } from "../support/objects.ts";

const MINUTE = 60_000;
const hosts = (...names: string[]) => names.map((name) => hostObject(name));
const on = (host: string, ...vms: VirtualMachine[]): RunningVm[] => vms.map((vm) => ({ vm, host, cpuUsage: 0 }));
const vm = (name: string, memoryGiB = 4, spec: Partial<VirtualMachine["spec"]> = {}): VirtualMachine => {
  const base = vmObject(name, { memoryGiB });
  return { ...base, spec: { ...base.spec, ...spec } };
};
const withPolicy = (v: VirtualMachine, policy: "Never" | "Cold" | "LiveIfPossible"): VirtualMachine => ({ ...v, spec: { ...v.spec, migration: { policy } } });
const SPREAD: VmAffinityTerm = { labelSelector: { matchLabels: { group: "spread" } }, topologyKey: HOST_LABEL };
const spread = (v: VirtualMachine, how: "required" | "preferred"): VirtualMachine => ({
  ...v,
  metadata: { ...v.metadata, labels: { ...v.metadata.labels, group: "spread" } },
  spec: { ...v.spec, placement: { ...v.spec.placement, vmAntiAffinity: how === "required" ? { required: [SPREAD] } : { preferred: [{ weight: 100, term: SPREAD }] } } },
});

/** Three 16 GiB hosts; h1 runs a, b and c (4 GiB each), h2 and h3 nothing. */
function skewed(w: Partial<BalancingWorld> = {}): BalancingWorld {
  return { hosts: hosts("h1", "h2", "h3"), vms: on("h1", vm("a"), vm("b"), vm("c")), ...w };
}

function migrations(plan: ClusterPlan): string[] {
  return plan.actions.map(describe);
}

function describe(a: ClusterAction): string {
  return a.action.type === "Migrate" ? `${a.stage} Migrate ${a.action.vm}@${a.action.target}` : `${a.stage} ${a.action.type} ${a.action.vm}`;
}

/** The imbalance once the plan's moves are done, as the report projects it. */
function projected(plan: ClusterPlan): number {
  assert.ok(plan.balancing, "a pass ran");
  return plan.balancing.projected;
}

interface Case {
  name: string;
  world: () => BalancingWorld;
  /** Every action, in order: "stage Migrate vm@target". A RegExp list matches one action each. */
  actions: (string | RegExp)[];
  also?: (plan: ClusterPlan, s: ClusterSituation) => void;
}

const cases: Case[] = [
  {
    name: "a skewed cluster gets live moves from the balancing stage, each lowering its imbalance, until it is within the threshold's target",
    world: () => skewed(),
    actions: [/^balancing Migrate default\/[abc]@h[23]$/, /^balancing Migrate default\/[abc]@h[23]$/],
    also: (plan, s) => {
      const report = plan.balancing!;
      assert.equal(report.passAt, NOW);
      assert.ok(report.imbalance > report.target, "the cluster starts above its target");
      assert.ok(projected(plan) <= report.target, `the moves bring it within the target: ${projected(plan)} ≤ ${report.target}`);
      const targets = plan.actions.map((a) => (a.action as { target: string }).target).sort();
      assert.deepEqual(targets, ["h2", "h3"], "one VM to each empty host");
      for (const step of plan.actions) {
        const action = step.action as Extract<ClusterAction["action"], { type: "Migrate" }>;
        const f = s.vms.find((v) => v.id === action.vm)!;
        assert.equal(action.key, `balance/${action.vm}/${NOW}`);
        assert.deepEqual(action.settings, migrationSettingsOf(s.cluster, f.vm));
        assert.match(action.reason, /^balancing h1 → h[23]: imbalance \d\.\d{3} → \d\.\d{3} \(target 0\.115\); copies about \d+ MiB/);
        assert.deepEqual(plan.verdicts.get(action.vm)?.kind, "Migrating");
        assert.deepEqual(plan.holdDowns?.get(action.vm), { moves: 1, lastMoveAt: NOW, until: NOW + HOLD_DOWN_MS });
        assert.equal(plan.moves.get(action.vm)?.stage, "balancing");
      }
      assert.deepEqual(plan.stages.find((st) => st.stage === "balancing"), { stage: "balancing", actions: 2, verdicts: 2 });
      assert.equal(plan.wakeAt, NOW + 300_000, "the next pass, one interval on");
      assert.equal(plan.status.balancing?.movesStarted, 2);
      assert.deepEqual(plan.status.balancing?.recommendations, [], "Automatic lists nothing to approve");
    },
  },
  {
    name: "a balanced cluster makes no moves",
    world: () => ({ hosts: hosts("h1", "h2", "h3"), vms: [...on("h1", vm("a")), ...on("h2", vm("b")), ...on("h3", vm("c"))] }),
    actions: [],
    also: (plan) => {
      assert.equal(plan.balancing?.imbalance, 0);
      assert.match(plan.balancing?.reason ?? "", /^balanced/);
      assert.equal(plan.balancing?.passAt, NOW, "a pass ran, and found nothing to do");
    },
  },
  {
    name: "Disabled: no pass, no report, no wake-up for balancing, nothing in status",
    world: () => skewed({ cluster: balancingCluster({ mode: "Disabled" }) }),
    actions: [],
    also: (plan) => {
      assert.equal(plan.balancing, undefined);
      assert.equal(plan.holdDowns, undefined);
      assert.equal(plan.wakeAt, undefined);
      assert.equal(plan.status.balancing, undefined);
    },
  },
  {
    name: "Manual: the moves are recommended, not made, each with a stable id of VM, source and target",
    world: () => skewed({ cluster: balancingCluster({ mode: "Manual" }) }),
    actions: [],
    also: (plan, s) => {
      const recommendations = plan.balancing!.recommendations;
      assert.equal(recommendations.length, 2);
      for (const r of recommendations) {
        assert.equal(r.id, recommendationId(r.vm, r.from, r.to));
        assert.match(r.id, /^[0-9a-f]{12}$/);
        assert.equal(r.from, "h1");
        assert.ok(r.gain > 0 && r.costMiB >= 4096, `gain ${r.gain}, cost ${r.costMiB} MiB`);
      }
      assert.deepEqual(planCluster(s).balancing?.recommendations, recommendations, "the same cluster, the same recommendations and ids");
      assert.deepEqual(plan.status.balancing?.recommendations, recommendations);
      const written = validateManifest({ ...s.cluster, status: plan.status });
      assert.ok(written.ok, `the status fits the CRD's schema: ${JSON.stringify(written)}`);
      assert.equal(plan.verdicts.size, 0);
      assert.equal(plan.holdDowns?.size, 0);
    },
  },
  {
    name: "VMs whose migration policy is Never or Cold are never moved by balancing (it moves live only); LiveIfPossible ones are",
    world: () => ({ hosts: hosts("h1", "h2", "h3"), vms: on("h1", withPolicy(vm("a"), "Never"), withPolicy(vm("b"), "Cold"), withPolicy(vm("c"), "LiveIfPossible")) }),
    actions: ["balancing Migrate default/c@h2"],
  },
  {
    name: "held-down VMs are not moved until their hold-down ends",
    world: () => skewed({
      balancing: {
        lastPassAt: NOW - 10 * MINUTE,
        holdDowns: new Map([
          ["default/a", { moves: 1, lastMoveAt: NOW - 10 * MINUTE, until: NOW + 5 * MINUTE }],
          ["default/b", { moves: 2, lastMoveAt: NOW - 40 * MINUTE, until: NOW + MINUTE }],
          ["default/c", { moves: 1, lastMoveAt: NOW - 20 * MINUTE, until: NOW - 5 * MINUTE }],
        ]),
      },
    }),
    actions: ["balancing Migrate default/c@h2"],
    also: (plan) => {
      assert.deepEqual(plan.holdDowns?.get("default/c"), { moves: 2, lastMoveAt: NOW, until: NOW + 2 * HOLD_DOWN_MS }, "moved again within 24 h: held twice as long");
      assert.equal(plan.holdDowns?.get("default/a")?.until, NOW + 5 * MINUTE, "the others' hold-downs are remembered as they were");
    },
  },
  {
    name: "VMs migrating now are left alone, and count on their target already",
    // a migrates to h3: h1 keeps b, c and d, and the one move that helps sends one of them to h2.
    world: () => ({
      hosts: hosts("h1", "h2", "h3"),
      vms: on("h1", vm("a"), vm("b"), vm("c"), vm("d")),
      cluster: balancingCluster({ mode: "Automatic" }, undefined, { parallelOutboundPerHost: 4 }),
      migrations: [underWay("default/a", "h1", "h3")],
    }),
    actions: [/^balancing Migrate default\/[bcd]@h2$/],
  },
  {
    name: "a move that would break required VM anti-affinity is never made, however it would balance",
    // h1 runs x (8 GiB, Never) and a1; a2 and a3 of a1's group fill the other hosts: a1 has nowhere to go.
    world: () => ({
      hosts: hosts("h1", "h2", "h3"),
      vms: [...on("h1", withPolicy(vm("x", 8), "Never"), spread(vm("a1"), "required")), ...on("h2", spread(vm("a2"), "required")), ...on("h3", spread(vm("a3"), "required"))],
    }),
    actions: [],
    also: (plan, s) => {
      assert.match(plan.balancing?.reason ?? "", /^no move is allowed and worth its cost/);
      const free = balancingSituation({ cluster: s.cluster, hosts: hosts("h1", "h2", "h3"), vms: [...on("h1", withPolicy(vm("x", 8), "Never"), vm("a1")), ...on("h2", vm("a2")), ...on("h3", vm("a3"))] });
      assert.equal(planCluster(free).actions.length, 1, "without the rule, a1 moves");
    },
  },
  {
    name: "admission control keeps holding: no move leaves the cluster unable to restart a failed host's VMs",
    // big (14 GiB) needs a host with 14 GiB free should h1 fail: after one small VM moves from h2 to h3 one
    // still has; after a second, neither would. Without admission control, the second move is made.
    world: () => admissionWorld(),
    actions: [/^balancing Migrate default\/s\d@h3$/],
    also: () => {
      const plan = planCluster(balancingSituation({ ...admissionWorld(), cluster: balancingCluster({ mode: "Automatic" }, { policy: "Disabled" }) }));
      assert.deepEqual(migrations(plan).map((a) => a.replace(/s\d/, "s")), ["balancing Migrate default/s@h3", "balancing Migrate default/s@h3"]);
    },
  },
  {
    name: "the migration limits hold: two leaving a host at once, and migrations under way count",
    world: () => ({ hosts: hosts("h1", "h2", "h3", "h4"), vms: on("h1", ...["a", "b", "c", "d", "e", "f"].map((n) => vm(n, 2))) }),
    actions: [/^balancing Migrate/, /^balancing Migrate/],
    also: (_, s) => {
      const busy = planCluster({ ...s, migrations: [underWay("default/a", "h1", "h4")] });
      assert.equal(busy.actions.length, 1, "one more may leave h1 while a migrates from it");
      const one = planCluster({ ...s, cluster: balancingCluster({ mode: "Automatic" }, undefined, { parallelMigrations: 1 }) });
      assert.equal(one.actions.length, 1, "one at a time in the cluster");
    },
  },
  {
    name: "threshold 1 takes mandatory moves only: balancing moves nothing, however skewed the cluster",
    world: () => skewed({ cluster: balancingCluster({ mode: "Automatic", threshold: 1 }) }),
    actions: [],
    also: (plan) => {
      assert.match(plan.balancing?.reason ?? "", /^threshold 1/);
      assert.ok(plan.balancing!.imbalance > 0.3);
    },
  },
  {
    name: "threshold 5 moves for even slight gains; the default, 3, tolerates them",
    world: () => ({
      hosts: hosts("h1", "h2", "h3"),
      vms: [...on("h1", vm("a"), vm("b", 1), vm("e", 1)), ...on("h2", vm("c")), ...on("h3", vm("d"))],
      cluster: balancingCluster({ mode: "Automatic", threshold: 5 }),
    }),
    actions: [/^balancing Migrate default\/[be]@h[23]$/],
    also: (plan, s) => {
      assert.ok(plan.balancing!.imbalance < 0.06, `a slight imbalance: ${plan.balancing!.imbalance}`);
      assert.equal(planCluster({ ...s, cluster: balancingCluster({ mode: "Automatic", threshold: 3 }) }).actions.length, 0);
    },
  },
  {
    name: "no pass before the interval is over: nothing planned, and the plan wakes at the next pass",
    world: () => skewed({ balancing: { lastPassAt: NOW - 100_000, holdDowns: new Map() } }),
    actions: [],
    also: (plan) => {
      assert.equal(plan.balancing, undefined);
      assert.equal(plan.wakeAt, NOW + 200_000);
    },
  },
  {
    name: "no pass while a host of the cluster is down: the report says why, and the next round tries again",
    world: () => skewed({ hosts: hosts("h1", "h2", "h3", "h4"), reports: { h4: { at: NOW - 120_000 } } }),
    actions: [],
    also: (plan) => {
      assert.equal(plan.balancing?.passAt, undefined);
      assert.equal(plan.balancing?.reason, "no balancing pass while h4 is Failed");
      assert.equal(plan.status.balancing?.message, "no balancing pass while h4 is Failed");
    },
  },
  {
    name: "a broken preferred anti-affinity is repaired even in a balanced cluster, by a move that keeps it within its target",
    world: () => ({ hosts: hosts("h1", "h2", "h3"), vms: [...on("h1", spread(vm("p1", 2), "preferred"), spread(vm("p2", 2), "preferred")), ...on("h2", vm("x")), ...on("h3", vm("y"))] }),
    actions: [/^balancing Migrate default\/p[12]@h[23]$/],
    also: (plan) => {
      assert.equal(plan.balancing?.imbalance, 0);
      assert.ok(projected(plan) <= plan.balancing!.target);
      assert.match((plan.actions[0]!.action as { reason: string }).reason, /its preferred rules hold better on h[23] \(\+100\)/);
    },
  },
  {
    name: "of two moves that gain as much, the VM of lower restart priority goes: higher priorities are moved last",
    world: () => ({
      cluster: balancingCluster({ mode: "Automatic" }, { policy: "Disabled" }),
      policies: [haPolicyObject("gold", "Highest", { tier: "gold" }), haPolicyObject("bronze", "Lowest", { tier: "bronze" })],
      hosts: hosts("h1", "h2"),
      vms: on("h1", vmObject("gold", { labels: { tier: "gold" } }), vmObject("bronze", { labels: { tier: "bronze" } })),
    }),
    actions: ["balancing Migrate default/bronze@h2"],
  },
  {
    name: "of two moves that gain as much, the cheaper copy goes: a guest that dirties its memory slowly",
    world: () => ({
      hosts: hosts("h1", "h2"),
      cluster: balancingCluster({ mode: "Automatic" }, { policy: "Disabled" }),
      vms: on("h1", vm("busy", 4, { workload: { profile: "Bursty", cpuPercent: 0 } }), vm("quiet", 4, { workload: { profile: "Idle", cpuPercent: 0 } })),
    }),
    actions: ["balancing Migrate default/quiet@h2"],
  },
];

/** h1 runs big (14 GiB), h2 four small VMs of 2 GiB, h3 nothing; HostFailuresToTolerate 1. */
function admissionWorld(): BalancingWorld {
  return { hosts: hosts("h1", "h2", "h3"), vms: [...on("h1", vm("big", 14)), ...on("h2", vm("s1", 2), vm("s2", 2), vm("s3", 2), vm("s4", 2))] };
}

function underWay(vmId: string, source: string, target: string): MigrationObservation {
  return { vm: vmId, key: `balance/${vmId}/${NOW - 5_000}`, source, target, phase: "PreCopy", startedAt: NOW - 5_000, rounds: 1, transferredMiB: 100, remainingMiB: 2000, bandwidthMiBps: 128, dirtyRateMiBps: 2, throttlePercent: 0 };
}

for (const c of cases) {
  test(c.name, () => {
    const s = balancingSituation(c.world());
    const plan = planCluster(s);
    const actions = migrations(plan);
    assert.equal(actions.length, c.actions.length, `actions: ${JSON.stringify(actions)}`);
    c.actions.forEach((want, i) => (want instanceof RegExp ? assert.match(actions[i]!, want) : assert.equal(actions[i], want)));
    c.also?.(plan, s);
  });
}

test("Manual: an approved recommendation is made once it is still allowed and still helps; an unknown id is ignored", () => {
  const world = skewed({ cluster: balancingCluster({ mode: "Manual" }) });
  const first = planCluster(balancingSituation(world));
  const [chosen] = first.balancing!.recommendations;
  assert.ok(chosen);
  const cluster = { ...world.cluster!, status: first.status };
  const later = { ...world, cluster, now: NOW + 30_000, balancing: { lastPassAt: NOW, holdDowns: new Map() } };
  const approved = planCluster(balancingSituation({ ...later, approved: [chosen.id, "000000000000"] }));
  assert.deepEqual(migrations(approved), [`balancing Migrate ${chosen.vm}@${chosen.to}`]);
  assert.match((approved.actions[0]!.action as { reason: string }).reason, new RegExp(`^approved recommendation ${chosen.id}: balancing h1 → `));
  assert.equal(approved.balancing, undefined, "no pass is due: only the approval is acted on");
  assert.equal(approved.holdDowns?.get(chosen.vm)?.moves, 1);
  assert.equal(planCluster(balancingSituation(later)).actions.length, 0, "nothing is made without the approval");
});

test("the hold-down lasts 15 min, doubles for each further move within 24 h, and is at most 6 h", () => {
  const first = holdDownAfterMove(undefined, NOW);
  assert.deepEqual(first, { moves: 1, lastMoveAt: NOW, until: NOW + 15 * MINUTE });
  const second = holdDownAfterMove(first, NOW + 60 * MINUTE);
  assert.equal(second.until - second.lastMoveAt, 30 * MINUTE);
  let record = second;
  for (let i = 0; i < 10; i++) record = holdDownAfterMove(record, record.until);
  assert.equal(record.until - record.lastMoveAt, HOLD_DOWN_MAX_MS);
  const dayLater = holdDownAfterMove(record, record.lastMoveAt + 25 * 60 * MINUTE);
  assert.deepEqual(dayLater.moves, 1, "a move more than 24 h after the last starts afresh");
});
