// The live-migration metrics: the reason a host gives for a failed or cancelled migration maps to a small
// fixed set; each migration that ends is counted once, with its duration and downtime, however many
// observations report it, and a restarted controller does not count again what had ended before it began;
// in-flight migrations are gauged with their age. Through the whole controller on the virtual clock, as
// are the gauges read from status: a host whose evacuation is blocked, a cluster's imbalance.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { MigrationObservation } from "../../controller/core/migration.ts";
import { ControllerMetrics, attachStoreGauges } from "../../controller/observe/metrics.ts";
import { MIGRATION_REASONS, MigrationRecorder, migrationReason } from "../../controller/observe/migrations.ts";
import type { VirtualMachineMigration } from "../../controller/api/types.ts";
import { objectKey } from "../../controller/api/types.ts";
import { Scenario, clusterYaml, hostYaml, vmYaml } from "../support/scenario.ts";

type Labels = Partial<Record<string, string | number>>;

async function values(metric: { get(): Promise<{ values: { labels: Labels; value: number; metricName?: string }[] }> }): Promise<{ labels: Labels; value: number; metricName?: string }[]> {
  return (await metric.get()).values;
}

async function counted(metrics: ControllerMetrics, result: string, reason: string): Promise<number> {
  return (await values(metrics.migrations)).find((v) => v.labels["result"] === result && v.labels["reason"] === reason)?.value ?? 0;
}

async function total(metrics: ControllerMetrics): Promise<number> {
  return (await values(metrics.migrations)).reduce((sum, v) => sum + v.value, 0);
}

/** A histogram's _count and _sum for the labels given. */
async function histogram(metric: ControllerMetrics["migrationDuration"] | ControllerMetrics["migrationDowntime"], labels: Labels = {}): Promise<{ count: number; sum: number }> {
  const all = await values(metric);
  const pick = (suffix: string) => all.find((v) => v.metricName?.endsWith(suffix) && Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value ?? 0;
  return { count: pick("_count"), sum: pick("_sum") };
}

describe("the reason label of an ended migration", () => {
  // The hosts' own words, as the simulator's tests pin them (test/provider/sim/migration*.test.ts).
  const cases: [Pick<MigrationObservation, "phase" | "reason">, string][] = [
    [{ phase: "Succeeded" }, "Completed"],
    [{ phase: "Failed", reason: "did not converge in 3 rounds: 61.2 MiB still dirty, more than the 300 ms downtime limit allows at 128 MiB/s (38.4 MiB); the VM stays on host h1" }, "RoundLimit"],
    [{ phase: "Failed", reason: "no progress for 150 s: 4096 MiB still to send; the guest dirties 150 MiB/s, the link gives 128 MiB/s; auto-converge is off; the VM stays on host h1" }, "NoProgress"],
    [{ phase: "Failed", reason: "not done within the completion timeout of 40 s (5 s per GiB of 8 GiB): 2048 MiB still to send; the VM stays on host h1" }, "CompletionTimeout"],
    [{ phase: "Failed", reason: "the connection to source host h1 was lost" }, "SourceFailed"],
    [{ phase: "Failed", reason: "the connection to target host h2 was lost; the VM stays on host h1" }, "TargetFailed"],
    [{ phase: "Failed", reason: "host h1 lost its network; the VM stays on host h1" }, "SourceFailed"],
    [{ phase: "Failed", reason: "host h2 lost its network; the VM stays on host h1" }, "TargetFailed"],
    [{ phase: "Failed", reason: "host h2 cannot reach datastore shared to open disk root; the VM resumes on host h1" }, "TargetFailed"],
    [{ phase: "Failed", reason: "the hypervisor said no" }, "Other"],
    [{ phase: "Failed" }, "Other"],
    [{ phase: "Cancelled", reason: "cancelled on request; the VM stays on host h1" }, "Requested"],
    [{ phase: "Cancelled", reason: "the VM left host h1" }, "VmStopped"],
    [{ phase: "Cancelled", reason: "the VM was powered off (Crashed) on host h1" }, "VmStopped"],
    [{ phase: "Cancelled", reason: "the VM was reset on host h1" }, "VmStopped"],
    [{ phase: "Cancelled", reason: "something else" }, "Other"],
  ];
  for (const [m, reason] of cases) {
    test(`${m.phase}: ${m.reason ?? "(no reason)"} → ${reason}`, () => {
      assert.equal(migrationReason({ ...m, source: "h1", target: "h2" }), reason);
      assert.ok(MIGRATION_REASONS[m.phase as keyof typeof MIGRATION_REASONS].includes(reason), `${reason} is in the documented set for ${m.phase}`);
    });
  }
});

/** A migration of `vm` under `key` from h1 to h2, begun at `startedAt`, as a host reports it. */
function observed(vm: string, key: string, phase: MigrationObservation["phase"], more: Partial<MigrationObservation> & { startedAt: number }): MigrationObservation {
  return { vm, key, source: "h1", target: "h2", phase, rounds: 1, transferredMiB: 0, remainingMiB: 0, bandwidthMiBps: 128, dirtyRateMiBps: 2, throttlePercent: 0, ...more };
}

test("each migration is counted once, when this process sees it end; what had ended before its first observation is never counted", async () => {
  const metrics = new ControllerMetrics();
  const recorder = new MigrationRecorder(metrics);
  // The first observation: a migration long over, and one under way.
  recorder.record([observed("a/old", "k0", "Succeeded", { startedAt: 0, endedAt: 5_000, downtimeMs: 40 }), observed("a/web", "k1", "PreCopy", { startedAt: 8_000 })], 10_000);
  assert.equal(await total(metrics), 0);
  assert.equal((await values(metrics.migrationsInFlight))[0]?.value, 1);
  assert.deepEqual((await values(metrics.migrationInProgress)).map((v) => [v.labels, v.value]), [[{ namespace: "a", name: "web", source: "h1", target: "h2" }, 2]]);

  // web ends; db begins and fails between two observations.
  recorder.record([observed("a/old", "k0", "Succeeded", { startedAt: 0, endedAt: 5_000, downtimeMs: 40 }), observed("a/web", "k1", "Succeeded", { startedAt: 8_000, endedAt: 14_000, downtimeMs: 120 }), observed("a/db", "k2", "Failed", { startedAt: 11_000, endedAt: 13_000, reason: "no progress for 150 s" })], 15_000);
  assert.equal(await counted(metrics, "Succeeded", "Completed"), 1);
  assert.equal(await counted(metrics, "Failed", "NoProgress"), 1);
  assert.equal(await total(metrics), 2);
  assert.deepEqual(await histogram(metrics.migrationDuration, { result: "Succeeded" }), { count: 1, sum: 6 });
  assert.deepEqual(await histogram(metrics.migrationDuration, { result: "Failed" }), { count: 1, sum: 2 });
  assert.deepEqual(await histogram(metrics.migrationDowntime), { count: 1, sum: 0.12 }, "downtime of successful switch-overs only");
  assert.equal((await values(metrics.migrationsInFlight))[0]?.value, 0);
  assert.deepEqual(await values(metrics.migrationInProgress), []);

  // The same reports again, and again: nothing more. Then web migrates anew under another key.
  for (const at of [16_000, 17_000]) recorder.record([observed("a/web", "k1", "Succeeded", { startedAt: 8_000, endedAt: 14_000 }), observed("a/db", "k2", "Failed", { startedAt: 11_000, endedAt: 13_000 })], at);
  assert.equal(await total(metrics), 2);
  recorder.record([observed("a/web", "k3", "PreCopy", { startedAt: 17_500 })], 18_000);
  recorder.record([observed("a/web", "k3", "Cancelled", { startedAt: 17_500, endedAt: 18_500, reason: "cancelled on request; the VM stays on host h1" })], 19_000);
  assert.equal(await counted(metrics, "Cancelled", "Requested"), 1);
  assert.equal(await total(metrics), 3);

  // A new recorder (a restarted controller) sees the same ended migrations: its first observation counts none.
  const after = new ControllerMetrics();
  const restarted = new MigrationRecorder(after);
  for (const at of [20_000, 21_000]) restarted.record([observed("a/web", "k3", "Cancelled", { startedAt: 17_500, endedAt: 18_500 }), observed("a/db", "k2", "Failed", { startedAt: 11_000, endedAt: 13_000 })], at);
  assert.equal(await total(after), 0);
});

test("every result and reason is exposed at 0 from the start, so the first migration of each is an increase", async () => {
  const text = await new ControllerMetrics().registry.metrics();
  for (const [result, reasons] of Object.entries(MIGRATION_REASONS)) {
    for (const reason of reasons) assert.match(text, new RegExp(`^vireo_migrations_total\\{result="${result}",reason="${reason}"\\} 0$`, "m"));
    assert.match(text, new RegExp(`^vireo_migration_duration_seconds_count\\{result="${result}"\\} 0$`, "m"));
  }
  assert.match(text, /^vireo_migrations_in_flight 0$/m);
});

function migrationYaml(name: string, vm: string, extra = ""): string {
  return `apiVersion: vireo.dev/v1alpha1\nkind: VirtualMachineMigration\nmetadata: {name: ${name}, namespace: default}\nspec: {vmName: ${vm}${extra}}\n---\n`;
}

function request(s: Scenario, name: string): VirtualMachineMigration | undefined {
  return s.store.get(objectKey("VirtualMachineMigration", name, "default")) as VirtualMachineMigration | undefined;
}

const phaseOf = (s: Scenario, name: string) => request(s, name)?.status?.phase ?? "";

test("through the controller: a migration in flight is gauged with its age; it is counted once when it succeeds, with its duration and downtime; a restarted controller does not count it again", async () => {
  const s = await Scenario.start(clusterYaml() + hostYaml("h1") + hostYaml("h2") + vmYaml("web", { memoryMiB: 16384, extra: "  workload: {profile: Idle}\n" }));
  await s.until(() => s.vm("web").status?.phase === "Running");
  const from = s.vm("web").status!.host!;
  const to = from === "h1" ? "h2" : "h1";
  const metrics = () => s.controller.ctx.metrics;
  s.apply(migrationYaml("move-web", "web", `, targetHost: ${to}`));
  await s.until(() => phaseOf(s, "move-web") === "PreCopy", 60_000);
  await s.advance(5_000);
  assert.equal((await values(metrics().migrationsInFlight))[0]?.value, 1);
  const age = await values(metrics().migrationInProgress);
  assert.deepEqual(age.map((v) => v.labels), [{ namespace: "default", name: "web", source: from, target: to }]);
  assert.ok(age[0]!.value >= 5 && age[0]!.value < 60, `in progress for ${age[0]!.value} s`);

  await s.until(() => phaseOf(s, "move-web") === "Succeeded", 600_000);
  await s.advance(10_000);
  const done = request(s, "move-web")!.status!;
  assert.equal(await counted(metrics(), "Succeeded", "Completed"), 1);
  assert.equal(await total(metrics()), 1);
  const duration = await histogram(metrics().migrationDuration, { result: "Succeeded" });
  assert.equal(duration.count, 1);
  assert.ok(Math.abs(duration.sum - (Date.parse(done.completionTime!) - Date.parse(done.startTime!)) / 1000) < 0.01, `duration ${duration.sum} s`);
  const downtime = await histogram(metrics().migrationDowntime);
  assert.equal(downtime.count, 1);
  assert.ok(Math.abs(downtime.sum * 1000 - done.downtimeMs!) <= 0.5, `downtime ${downtime.sum} s, status says ${done.downtimeMs} ms`);
  assert.equal((await values(metrics().migrationsInFlight))[0]?.value, 0);
  assert.deepEqual(await values(metrics().migrationInProgress), []);

  await s.restartController();
  await s.advance(10_000);
  assert.ok(s.controller.ctx.observed.migration("default/web")?.phase === "Succeeded", "the hosts still report the ended migration");
  assert.equal(await total(metrics()), 0, "the restarted controller counts nothing it did not see end");
  await s.stop();
});

test("through the controller: a cancelled migration and a failed one are counted by their reason", async () => {
  const s = await Scenario.start(clusterYaml("prod", "Pack") + hostYaml("h1") + hostYaml("h2")
    + vmYaml("db", { memoryMiB: 32768, extra: "  workload: {profile: Steady, dirtyRateMiBps: 60}\n" })
    + vmYaml("hot", { memoryMiB: 8192, extra: "  workload: {profile: Bursty, dirtyRateMiBps: 400}\n" }));
  await s.until(() => s.vm("db").status?.phase === "Running" && s.vm("hot").status?.phase === "Running");
  const metrics = () => s.controller.ctx.metrics;
  s.apply(migrationYaml("move-db", "db") + migrationYaml("move-hot", "hot"));
  await s.until(() => phaseOf(s, "move-db") === "PreCopy" && phaseOf(s, "move-hot") === "PreCopy", 60_000);
  assert.equal((await values(metrics().migrationsInFlight))[0]?.value, 2);
  s.delete("VirtualMachineMigration", "move-db", "default");
  await s.until(() => s.controller.ctx.observed.migration("default/db")?.phase === "Cancelled", 120_000);
  await s.until(() => phaseOf(s, "move-hot") === "Failed", 600_000);
  await s.advance(10_000);
  assert.equal(await counted(metrics(), "Cancelled", "Requested"), 1);
  assert.equal(await counted(metrics(), "Failed", "NoProgress"), 1, request(s, "move-hot")!.status!.failureReason);
  assert.equal(await total(metrics()), 2);
  assert.equal((await histogram(metrics().migrationDuration, { result: "Failed" })).count, 1);
  assert.equal((await histogram(metrics().migrationDowntime)).count, 0);
  await s.stop();
});

test("through the controller: a migration that begins and ends between two observations is counted once", async () => {
  const s = await Scenario.start(clusterYaml() + hostYaml("h1") + hostYaml("h2") + vmYaml("tiny", { memoryMiB: 512, extra: "  workload: {profile: Idle}\n" }), { observeIntervalMs: 30_000 });
  await s.until(() => s.vm("tiny").status?.phase === "Running", 600_000);
  const metrics = () => s.controller.ctx.metrics;
  s.apply(migrationYaml("move-tiny", "tiny"));
  await s.until(() => phaseOf(s, "move-tiny") === "Succeeded", 600_000);
  await s.advance(90_000);
  assert.equal(await counted(metrics(), "Succeeded", "Completed"), 1);
  assert.equal(await total(metrics()), 1);
  await s.stop();
});

/** The sample `name{labels}` of a registry's exposition, labels in any order. */
async function scraped(metrics: ControllerMetrics, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const text = await metrics.registry.metrics();
  for (const m of text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, "gm"))) {
    const got = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1]!, l[2]!]));
    if (Object.keys(got).length === Object.keys(labels).length && Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[2]);
  }
  return undefined;
}

test("from status: a host entering maintenance with a VM that cannot leave, while it cannot; the imbalance of clusters that balance, not of those that do not", async () => {
  const pinned = vmYaml("pinned").replace("placement: {cluster: prod}", "placement: {cluster: prod, hostAffinity: {required: [{matchLabels: {vireo.dev/host: h1}}]}}");
  const off = clusterYaml("lab").replace("placement: {strategy: Spread}", "placement: {strategy: Spread}\n  balancing: {mode: Disabled}");
  const s = await Scenario.start(clusterYaml("prod", "Pack", "{enabled: false}") + off + hostYaml("h1") + hostYaml("h2") + hostYaml("l1", { cluster: "lab" }) + hostYaml("l2", { cluster: "lab" }) + pinned);
  const metrics = s.controller.ctx.metrics;
  attachStoreGauges(metrics, s.store);
  await s.until(() => s.vm("pinned").status?.phase === "Running" && s.cluster("prod").status?.balancing !== undefined);
  assert.equal(await scraped(metrics, "vireo_host_evacuation_blocked_vms", { host: "h1" }), undefined);
  assert.equal(await scraped(metrics, "vireo_cluster_imbalance", { cluster: "prod" }), s.cluster("prod").status!.balancing!.imbalance);
  assert.equal(await scraped(metrics, "vireo_cluster_imbalance_target", { cluster: "prod" }), s.cluster("prod").status!.balancing!.target);
  assert.equal(await scraped(metrics, "vireo_balancing_recommendations", { cluster: "prod" }), s.cluster("prod").status!.balancing!.recommendations?.length ?? 0);
  assert.equal(s.cluster("lab").spec.balancing.mode, "Disabled");
  for (const name of ["vireo_cluster_imbalance", "vireo_cluster_imbalance_target", "vireo_balancing_recommendations"]) {
    assert.equal(await scraped(metrics, name, { cluster: "lab" }), undefined, `${name} for a cluster whose balancing is Disabled`);
  }

  s.apply(hostYaml("h1", { maintenance: true }));
  await s.until(() => (s.host("h1").status?.evacuationBlocked?.length ?? 0) === 1, 300_000);
  assert.equal(await scraped(metrics, "vireo_host_evacuation_blocked_vms", { host: "h1" }), 1);
  assert.equal(await scraped(metrics, "vireo_host_evacuation_blocked_vms", { host: "h2" }), undefined);
  s.apply(hostYaml("h1"));
  await s.until(() => s.host("h1").status?.evacuationBlocked === undefined, 60_000);
  assert.equal(await scraped(metrics, "vireo_host_evacuation_blocked_vms", { host: "h1" }), undefined);
  await s.stop();
});
