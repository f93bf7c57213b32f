// docs/metrics.md against real scrapes: every metric a `vireo run` exposes is documented there, and every
// metric documented there, or used by an alert rule, is exposed — in file mode by a process running the
// example fleet, in API mode (the metrics marked "api") by a process against a real control plane.
// Per-object series (drifted, stalled) exist only while something is wrong; the file-mode fleet is given
// a VM started behind Vireo's back (`vireo sim create`), an orphan it reports and never heals, so the drift
// series are really in the scrape, not only their # HELP and # TYPE lines. It also live-migrates a VM
// (`vireo migrate`), so the migration counter and histograms hold a real migration, and its clusters
// balance (Manual, the default), so their imbalance series are there too. Four of its VMs replicate to
// cluster dr, so the sync counters hold real syncs over the prod->dr link. Its two labs (examples/labs/)
// give the owner and lab series real values: qa-team's five VMs, interop-team's twelve, two labs Running,
// each with its next expiry.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { load } from "js-yaml";
import type { Host } from "../../controller/api/types.ts";
import { REPO, VireoProcess, WAIT_MS, tempDir, vireoCommand, waitForState } from "../support/process.ts";
import { ControlPlane, kubectlOk, vireoApiMode } from "../support/cluster.ts";

interface Documented { name: string; mode: string }

function catalogue(): Documented[] {
  const doc = readFileSync(join(REPO, "docs", "metrics.md"), "utf8");
  return [...doc.matchAll(/^\| `(vireo_[a-z0-9_]+)` \| [^|]+\| [^|]+\| ([^|]+)\|/gm)].map((m) => ({ name: m[1]!, mode: m[2]!.trim().split(" ")[0]! }));
}

/** The metric names the alert rules use. */
function alertMetrics(): Set<string> {
  const { groups } = load(readFileSync(join(REPO, "deploy", "prometheus", "vireo-alerts.yaml"), "utf8")) as { groups: { rules: { expr: string }[] }[] };
  return new Set(groups.flatMap((g) => g.rules).flatMap((r) => [...r.expr.matchAll(/\b(vireo_[a-z0-9_]+)/g)].map((m) => m[1]!)));
}

/** Metric families in a scrape, from its # TYPE lines (histograms by their base name). */
async function scrape(address: string): Promise<Set<string>> {
  return families(await exposition(address));
}

async function exposition(address: string): Promise<string> {
  return (await fetch(`http://${address}/metrics`)).text();
}

/** Families declared with both a # HELP and a # TYPE line. */
function families(text: string): Set<string> {
  const helped = new Set([...text.matchAll(/^# HELP (\S+) /gm)].map((m) => m[1]!));
  return new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!).filter((n) => helped.has(n)));
}

/** The value of the sample `name{labels}` (labels in any order; `{}` for a sample without labels), if the exposition has it. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{([^}]*)\\})? (\\S+)$`, "gm"))) {
    const got = Object.fromEntries([...(m[1] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[2]);
  }
  return undefined;
}

async function metricsAddress(vireo: VireoProcess): Promise<string> {
  return (await vireo.waitForLog(/metrics on http:\/\/([^/\s"]+)\/metrics/))[1]!;
}

test("every metric the example fleet's file-mode process exposes is in docs/metrics.md, and every documented or alerted metric is exposed", async (t) => {
  const dir = tempDir("metrics");
  const state = join(dir.path, "state");
  const vireo = new VireoProcess(["run", "--manifests", join(REPO, "manifests", "examples"), "--state-dir", state, "--metrics-addr", "127.0.0.1:0", "--time-scale", "50"]);
  // Stop the process before removing its directory, or its last save would write it again.
  t.after(async () => { await vireo.stop("SIGKILL"); dir.remove(); });
  const address = await metricsAddress(vireo);
  await waitForState(state, (s) => {
    const vms = s.objects.filter((o) => o.object.kind === "VirtualMachine");
    return vms.length > 0 && vms.every((o) => ["Running", "Stopped"].includes((o.object.status as { phase?: string } | undefined)?.phase ?? ""));
  }, WAIT_MS, () => vireo.logs());

  // A VM nobody declared, started on esx-01 behind Vireo's back: the host is drifted for as long as it runs.
  const created = await vireoCommand(["sim", "create", "ops/rogue", "--host", "esx-01", "--cpu", "1", "--memory", "512", "--state-dir", state]);
  assert.equal(created.code, 0, created.stderr);
  const drifted = await waitForState(state, (s) => s.objects.some((o) => o.object.kind === "Host" && o.object.metadata.name === "esx-01" && (o.object as Host).status?.drift !== undefined), WAIT_MS, () => vireo.logs());
  const since = (drifted.objects.find((o) => o.object.kind === "Host" && o.object.metadata.name === "esx-01")!.object as Host).status!.drift!.since;
  const esx01 = { kind: "Host", namespace: "", name: "esx-01" };
  let text = await exposition(address);
  const deadline = Date.now() + WAIT_MS;
  while (sample(text, "vireo_object_drifted", esx01) === undefined && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    text = await exposition(address);
  }
  assert.equal(sample(text, "vireo_object_drifted", esx01), 1, `no drift series for esx-01 in the scrape:\n${text.split("\n").filter((l) => l.includes("drift")).join("\n")}`);
  assert.equal(sample(text, "vireo_object_drifted_since_seconds", esx01), Date.parse(since) / 1000, "the drift began when status.drift.since says");
  assert.ok(sample(text, "vireo_objects_drifted", { kind: "Host" })! >= 1);

  // A live migration, followed to its end: counted once it ends, with its duration and downtime.
  const migrated = await vireoCommand(["migrate", "shop/web-1", "--state-dir", state]);
  assert.equal(migrated.code, 0, `vireo migrate shop/web-1:\n${migrated.stdout}${migrated.stderr}`);
  const succeeded = { result: "Succeeded", reason: "Completed" };
  const migrationDeadline = Date.now() + WAIT_MS;
  text = await exposition(address);
  while (!(sample(text, "vireo_migrations_total", succeeded)! >= 1) && Date.now() < migrationDeadline) {
    await new Promise((r) => setTimeout(r, 500));
    text = await exposition(address);
  }
  assert.equal(sample(text, "vireo_migrations_total", succeeded), 1, `the migration is counted once:\n${text.split("\n").filter((l) => l.includes("migration")).join("\n")}`);
  assert.equal(sample(text, "vireo_migration_duration_seconds_count", { result: "Succeeded" }), 1);
  assert.equal(sample(text, "vireo_migration_downtime_seconds_count", {}), 1);
  assert.equal(sample(text, "vireo_migrations_in_flight", {}), 0);
  for (const cluster of ["prod", "dr", "lab"]) {
    assert.ok(sample(text, "vireo_cluster_imbalance", { cluster }) !== undefined, `no imbalance series for ${cluster}`);
    assert.ok(sample(text, "vireo_cluster_imbalance_target", { cluster }) !== undefined, `no imbalance target series for ${cluster}`);
    assert.ok(sample(text, "vireo_balancing_recommendations", { cluster }) !== undefined, `no recommendations series for ${cluster}`);
  }

  // The replicated VMs' first full syncs (what the example disks hold, over one shared link), then one more.
  const link = { link: "prod->dr" };
  const replicationDeadline = Date.now() + WAIT_MS;
  while (!(sample(text, "vireo_replication_vms", { state: "Replicating" }) === 4 && sample(text, "vireo_replication_syncs_total", link)! >= 5) && Date.now() < replicationDeadline) {
    await new Promise((r) => setTimeout(r, 500));
    text = await exposition(address);
  }
  assert.equal(sample(text, "vireo_replication_vms", { state: "Replicating" }), 4, `every replicated VM replicates:\n${text.split("\n").filter((l) => l.includes("replica")).join("\n")}`);
  assert.ok(sample(text, "vireo_replication_syncs_total", link)! >= 5, "syncs over the prod->dr link are counted");
  assert.ok(sample(text, "vireo_replication_synced_bytes_total", link)! >= 4 * 20 * 1024 ** 3, "the first full syncs shipped the whole disks");
  assert.equal(sample(text, "vireo_replication_vms", { state: "Error" }), 0);
  assert.equal(sample(text, "vireo_replica_failovers_total", { kind: "Automatic", result: "Started" }), 0);

  // The labs, long Running by now: their VMs by owner, the example VMs without one, each lab's next expiry.
  assert.equal(sample(text, "vireo_labs", { phase: "Running" }), 2, `both example labs run:\n${text.split("\n").filter((l) => l.includes("lab") || l.includes("owner")).join("\n")}`);
  assert.equal(sample(text, "vireo_owner_vms", { owner: "qa-team" }), 5);
  assert.equal(sample(text, "vireo_owner_vcpus", { owner: "interop-team" }), 16);
  assert.equal(sample(text, "vireo_vms_without_owner", {}), 19);
  for (const lab of ["shop-stack", "interop"]) assert.ok(sample(text, "vireo_lab_lease_expiry_timestamp_seconds", { namespace: "qa", lab, action: "Stop" })! > 0, `no next expiry for ${lab}`);

  const scraped = families(text);
  const documented = catalogue();
  const names = new Set(documented.map((d) => d.name));
  assert.deepEqual([...scraped].filter((n) => !names.has(n)), [], "scraped but not in docs/metrics.md");
  assert.deepEqual(documented.filter((d) => d.mode === "all" && !scraped.has(d.name)).map((d) => d.name), [], "in docs/metrics.md (mode all) but not scraped");
  const apiOnly = new Set(documented.filter((d) => d.mode === "api").map((d) => d.name));
  assert.deepEqual([...alertMetrics()].filter((n) => !scraped.has(n) && !apiOnly.has(n)), [], "used by an alert but not scraped");
  assert.deepEqual([...alertMetrics()].filter((n) => !names.has(n)), [], "used by an alert but not in docs/metrics.md");
});

test("an API-mode process with leader election exposes the metrics docs/metrics.md marks api, and only documented ones", async (t) => {
  const cp = await ControlPlane.start({});
  const state = tempDir("metrics-api");
  let vireo: VireoProcess | undefined;
  // The controller stops before the control plane and its state directory go.
  t.after(async () => {
    await vireo?.stop("SIGKILL");
    await cp.stop();
    state.remove();
  });
  await kubectlOk(cp, ["apply", "-f", join(REPO, "manifests", "examples")]);
  vireo = vireoApiMode(cp, state.path, ["--leader-elect", "--leader-election-namespace", "default"]);
  const address = await metricsAddress(vireo);
  await vireo.waitForLog(/synced: 11 hosts in 3 clusters, 20 VMs/);
  const documented = catalogue();
  const names = new Set(documented.map((d) => d.name));
  const deadline = Date.now() + WAIT_MS;
  let scraped = await scrape(address);
  const apiOnly = documented.filter((d) => d.mode === "api").map((d) => d.name);
  while (apiOnly.some((n) => !scraped.has(n)) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    scraped = await scrape(address);
  }
  assert.deepEqual(apiOnly.filter((n) => !scraped.has(n)), [], "in docs/metrics.md (mode api) but not scraped");
  assert.deepEqual([...scraped].filter((n) => !names.has(n)), [], "scraped but not in docs/metrics.md");
});
