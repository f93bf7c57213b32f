// RecoveryPlans on the virtual clock: a planned migration that loses nothing, a test that leaves production
// alone and cleans up after itself, a failback home once the primary site returns, and plans refused
// before anything starts.

import { test } from "node:test";
import assert from "node:assert/strict";
import { condition } from "../support/scenario.ts";
import type { Scenario } from "../support/scenario.ts";
import type { RecoveryPlan } from "../../controller/api/types.ts";
import { objectKey } from "../../controller/api/types.ts";
import { allReplicated, DR_HOSTS, PROD_HOSTS, ready, recoveryPlanYaml, startDrFleet } from "../support/dr-fleet.ts";

const NAMES = ["db-0", "app-0", "web-0"];

function plan(s: Scenario, name: string): RecoveryPlan {
  const found = s.store.get(objectKey("RecoveryPlan", name, "default")) as RecoveryPlan | undefined;
  assert.ok(found, `no RecoveryPlan ${name}`);
  return found;
}

async function replicatedFleet(): Promise<Scenario> {
  const s = await startDrFleet([{ name: "db-0", tier: "db" }, { name: "app-0", tier: "app" }, { name: "web-0", tier: "web" }]);
  await s.until(() => NAMES.every((n) => ready(s.vm(n))));
  await s.until(() => allReplicated(s, NAMES), 3_600_000, 10_000);
  return s;
}

function inDr(s: Scenario, name: string): boolean {
  return ready(s.vm(name)) && DR_HOSTS.includes(s.vm(name).status!.host!);
}

test("a planned Migrate shuts the VMs down, syncs a last time and starts them in dr: nothing is lost", async () => {
  const s = await replicatedFleet();
  try {
    const macs = new Map(NAMES.map((n) => [n, s.vm(n).status!.networks![0]!.macAddress]));
    s.apply(recoveryPlanYaml("move-to-dr", "Migrate"));
    const steps = new Set<string>();
    await s.until(() => {
      const p = plan(s, "move-to-dr");
      if (p.status?.step) steps.add(p.status.step);
      // Never Succeeded while a step still runs.
      if (p.status?.phase === "Succeeded") assert.equal(p.status.step, undefined);
      return p.status?.phase === "Succeeded";
    }, 1_800_000);
    assert.ok(steps.has("FinalSync") && steps.has("Starting"), `steps seen: ${[...steps].join(", ")}`);
    for (const name of NAMES) {
      assert.ok(inDr(s, name), `${name} runs in dr`);
      assert.equal(s.sim.observeVm(`default/${name}`)!.config.nics[0]!.macAddress, macs.get(name));
      const result = plan(s, "move-to-dr").status!.vms!.find((v) => v.vm === `default/${name}`)!;
      assert.equal(result.result, "Recovered");
      assert.equal(result.dataLossSeconds, 0);
      assert.ok(result.recoveryTimeSeconds! > 0);
      const truth = s.sim.groundTruth().recoveries.find((r) => r.vm === `default/${name}`)!;
      assert.equal(truth.lostMiB, 0, `${name}: the hosts lost nothing`);
    }
    assert.equal(condition(plan(s, "move-to-dr"), "Ready")?.status, "True");
    assert.equal(s.sim.splitBrainAttempts(), 0);
  } finally {
    await s.stop();
  }
});

test("a Test plan starts copies on the test network with other MACs while production runs on, then cleans up completely", async () => {
  const s = await replicatedFleet();
  try {
    const production = new Map(NAMES.map((n) => [n, s.sim.observeVm(`default/${n}`)!]));
    s.apply(recoveryPlanYaml("drill", "Test", "  testNetwork: dr-test\n  testDurationSeconds: 600\n"));
    await s.until(() => plan(s, "drill").status?.phase === "Succeeded" && plan(s, "drill").status!.vms!.every((v) => v.result === "Recovered"), 600_000);
    for (const name of NAMES) {
      const copy = s.sim.observeVm(`default/${name}-test`)!;
      assert.ok(DR_HOSTS.includes(copy.host));
      assert.deepEqual(copy.config.nics.map((n) => n.network), ["dr-test"]);
      assert.notEqual(copy.config.nics[0]!.macAddress, production.get(name)!.config.nics[0]!.macAddress);
      const original = s.sim.observeVm(`default/${name}`)!;
      assert.equal(original.host, production.get(name)!.host, `${name} stays where it ran`);
      assert.equal(original.power, "Running");
      assert.ok(ready(s.vm(name)));
    }
    assert.ok(s.store.list("Host").every((h) => condition(h, "Drifted")?.status !== "True"), "test copies are no unknown VMs");
    const copyHosts = new Set(NAMES.map((n) => s.sim.observeVm(`default/${n}-test`)!.host));
    assert.equal(copyHosts.size, NAMES.length, "the copies spread as placement spreads any VM, each counted beside the others");
    await s.until(() => plan(s, "drill").status!.vms!.every((v) => v.result === "CleanedUp"), 1_200_000);
    for (const name of NAMES) assert.equal(s.sim.observeVm(`default/${name}-test`), undefined);
    assert.ok(allReplicated(s, NAMES), "replication went on through the test");
    assert.equal(s.sim.splitBrainAttempts(), 0);
  } finally {
    await s.stop();
  }
});

test("deleting a Test plan removes its copies", async () => {
  const s = await replicatedFleet();
  try {
    s.apply(recoveryPlanYaml("drill", "Test", "  testNetwork: dr-test\n"));
    await s.until(() => NAMES.every((n) => s.sim.observeVm(`default/${n}-test`)?.power === "Running"), 600_000);
    s.delete("RecoveryPlan", "drill", "default");
    await s.advance(30_000);
    for (const name of NAMES) assert.equal(s.sim.observeVm(`default/${name}-test`), undefined);
  } finally {
    await s.stop();
  }
});

test("after a site loss and the site's return, a Failback plan brings the VMs home with nothing lost", async () => {
  const s = await replicatedFleet();
  try {
    for (const h of PROD_HOSTS) await s.sim.crashHost(h);
    await s.until(() => NAMES.every((n) => inDr(s, n)), 1_800_000);
    for (const h of PROD_HOSTS) await s.sim.recoverHost(h);
    await s.advance(60_000);
    assert.ok(NAMES.every((n) => inDr(s, n)), "the VMs stay in dr until someone fails them back");
    s.apply(recoveryPlanYaml("home", "Failback"));
    const steps = new Set<string>();
    await s.until(() => {
      const p = plan(s, "home");
      if (p.status?.step) steps.add(p.status.step);
      return p.status?.phase === "Succeeded";
    }, 7_200_000, 5_000);
    assert.ok(steps.has("Preparing") && steps.has("FinalSync"), `steps seen: ${[...steps].join(", ")}`);
    for (const name of NAMES) {
      const vm = s.vm(name);
      assert.ok(ready(vm) && PROD_HOSTS.includes(vm.status!.host!), `${name} runs at home`);
      const instance = s.sim.observeVm(`default/${name}`)!;
      assert.deepEqual(instance.config.nics.map((n) => n.network), ["prod"]);
      assert.equal(instance.config.disks[0]!.datastore, "prod-ds");
      assert.equal(plan(s, "home").status!.vms!.find((v) => v.vm === `default/${name}`)!.dataLossSeconds, 0);
    }
    // Home again, the VMs are protected again: a new replica in dr.
    await s.until(() => allReplicated(s, NAMES), 3_600_000, 10_000);
    assert.equal(s.sim.splitBrainAttempts(), 0);
  } finally {
    await s.stop();
  }
});

test("plans that cannot be carried out are refused before anything starts", async () => {
  const s = await replicatedFleet();
  try {
    const before = NAMES.map((n) => s.sim.observeVm(`default/${n}`)!.host);
    s.apply(recoveryPlanYaml("bad-network", "Failover", "  networkMapping: [{source: prod, target: nowhere}]\n"));
    s.apply(recoveryPlanYaml("nobody", "Migrate", "", "{matchLabels: {site: elsewhere}}"));
    await s.advance(30_000);
    const bad = plan(s, "bad-network");
    assert.equal(bad.status?.phase, "Failed");
    assert.equal(condition(bad, "Stalled")?.reason, "NetworkMappingUnmet");
    assert.match(bad.status!.message!, /network nowhere .* is on no host of cluster dr/);
    const nobody = plan(s, "nobody");
    assert.equal(nobody.status?.phase, "Failed");
    assert.equal(condition(nobody, "Stalled")?.reason, "NoVMsSelected");
    assert.deepEqual(NAMES.map((n) => s.sim.observeVm(`default/${n}`)!.host), before, "nothing moved");
    assert.ok(NAMES.every((n) => ready(s.vm(n))));
  } finally {
    await s.stop();
  }
});

test("a site lost behind a cut link waits for a person; a Failover plan is that person's word, and the VMs recover fenced", async () => {
  const s = await replicatedFleet();
  try {
    await s.sim.partitionHosts(PROD_HOSTS, { storage: true });
    await s.advance(30_000);
    for (const h of PROD_HOSTS) await s.sim.crashHost(h);
    await s.advance(300_000);
    assert.equal(condition(s.vm("db-0"), "Ready")?.reason, "WaitingForUser");
    assert.ok(NAMES.every((n) => PROD_HOSTS.includes(s.sim.observeVm(`default/${n}`)!.host)), "nothing recovered on a guess");
    s.apply(recoveryPlanYaml("site-down", "Failover"));
    await s.until(() => plan(s, "site-down").status?.phase === "Succeeded", 1_800_000);
    for (const name of NAMES) {
      assert.ok(inDr(s, name), `${name} runs in dr`);
      const result = plan(s, "site-down").status!.vms!.find((v) => v.vm === `default/${name}`)!;
      assert.ok(result.dataLossSeconds !== undefined && result.dataLossSeconds >= 0);
    }
    assert.equal(s.sim.splitBrainAttempts(), 0);
  } finally {
    await s.stop();
  }
});
