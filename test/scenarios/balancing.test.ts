// Balancing through the controller on the virtual clock: hosts back from maintenance take their share of the
// load by live migration (no reboot, every VM Migrating while it moves, each moved once), and a Manual
// cluster only recommends, in its status.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Scenario, clusterYaml, hostYaml, vmYaml } from "../support/scenario.ts";

const SMALL = 32_768;

function balancedCluster(mode: "Automatic" | "Manual"): string {
  return clusterYaml().replace("  placement: {strategy: Spread}\n", `  placement: {strategy: Spread}\n  balancing: {mode: ${mode}, threshold: 3, intervalSeconds: 60}\n`);
}

/** h1 runs four quiet VMs; h2 and h3 come out of maintenance once they run. */
async function skewed(mode: "Automatic" | "Manual"): Promise<Scenario> {
  let yaml = balancedCluster(mode) + hostYaml("h1", { memoryMiB: SMALL }) + hostYaml("h2", { memoryMiB: SMALL, maintenance: true }) + hostYaml("h3", { memoryMiB: SMALL, maintenance: true });
  for (const name of ["a", "b", "c", "d"]) yaml += vmYaml(name, { memoryMiB: 4096, extra: "  workload: {profile: Idle, cpuPercent: 10}\n" });
  const s = await Scenario.start(yaml);
  await s.until(() => ["a", "b", "c", "d"].every((n) => s.vm(n).status?.phase === "Running"));
  assert.deepEqual(["a", "b", "c", "d"].map((n) => s.vm(n).status?.host), ["h1", "h1", "h1", "h1"]);
  s.apply(hostYaml("h2", { memoryMiB: SMALL }) + hostYaml("h3", { memoryMiB: SMALL }));
  return s;
}

test("hosts back from maintenance take their share by live migration: no reboot, Migrating while it moves, each VM moved once", async () => {
  const s = await skewed("Automatic");
  const booted = new Map(["a", "b", "c", "d"].map((n) => [n, s.vm(n).status?.startedAt]));
  const phases = new Set<string>();
  const hostsOf = new Map<string, Set<string>>();
  s.onStatus = (key, status) => {
    const vm = /^VirtualMachine\/default\/(\w+)$/.exec(key)?.[1];
    if (!vm) return;
    const st = status as { phase?: string; host?: string };
    phases.add(st.phase ?? "");
    if (st.host) hostsOf.set(vm, new Set([...(hostsOf.get(vm) ?? []), st.host]));
  };
  const spread = () => new Set(["a", "b", "c", "d"].map((n) => s.vm(n).status?.host)).size === 3;
  await s.until(() => spread() && ["a", "b", "c", "d"].every((n) => s.vm(n).status?.phase === "Running"), 900_000);
  await s.advance(600_000);
  const where = ["a", "b", "c", "d"].map((n) => s.vm(n).status?.host ?? "");
  assert.equal(new Set(where).size, 3, `the VMs run on every host: ${where.join(", ")}`);
  assert.ok(phases.has("Migrating"), `a VM said Migrating while it moved: ${[...phases].join(", ")}`);
  for (const n of ["a", "b", "c", "d"]) {
    assert.equal(s.vm(n).status?.startedAt, booted.get(n), `${n} was not rebooted`);
    assert.ok((hostsOf.get(n)?.size ?? 1) <= 2, `${n} moved once at most: ${[...(hostsOf.get(n) ?? [])].join(" → ")}`);
  }
  const balancing = s.cluster("prod").status?.balancing;
  assert.ok(balancing?.lastPassTime, "the last pass is in status");
  assert.ok(balancing.imbalance <= balancing.target, `balanced within the target: ${balancing.imbalance} ≤ ${balancing.target}`);
  assert.equal(s.sim.splitBrainAttempts(), 0);
  await s.stop();
});

test("a Manual cluster recommends the moves in its status and makes none", async () => {
  const s = await skewed("Manual");
  await s.until(() => (s.cluster("prod").status?.balancing?.recommendations?.length ?? 0) > 0, 300_000);
  await s.advance(300_000);
  const recommendations = s.cluster("prod").status?.balancing?.recommendations ?? [];
  assert.ok(recommendations.length >= 2, `moves are recommended: ${JSON.stringify(recommendations)}`);
  assert.ok(recommendations.every((r) => r.from === "h1" && (r.to === "h2" || r.to === "h3")));
  assert.deepEqual(["a", "b", "c", "d"].map((n) => s.vm(n).status?.host), ["h1", "h1", "h1", "h1"], "nothing moved");
  await s.stop();
});
