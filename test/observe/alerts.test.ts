// Vireo's alert rules: the plain rules file is the Helm chart's PrometheusRule rendered with the default
// values; promtool checks it and runs its unit tests (every alert, firing and not firing); and a real
// Prometheus scraping a real `vireo run` sees an alert go pending and firing.
//
// After changing helm/vireo/templates/prometheusrule.yaml or the alerts values, regenerate the plain file:
//   VIREO_REGENERATE_ALERTS=1 node --test test/observe/alerts.test.ts

import { before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { dump, load } from "js-yaml";
import { REPO, VireoProcess, tempDir, waitForState } from "../support/process.ts";
import { clusterYaml, hostYaml, vmYaml } from "../support/scenario.ts";
import { ensureControlPlaneBinaries } from "../envtest/setup.ts";
import { commandPath, ensureDebianPackages } from "../tools/setup.ts";

const RULES = join(REPO, "deploy", "prometheus", "vireo-alerts.yaml");
const RULE_TESTS = join(REPO, "deploy", "prometheus", "vireo-alerts.test.yaml");
const HEADER = "# Vireo's alerts for a plain Prometheus (rule_files). Generated from the Helm chart's PrometheusRule with\n"
  + "# the default values (helm/vireo/templates/prometheusrule.yaml): change the chart, then regenerate with\n"
  + "#   VIREO_REGENERATE_ALERTS=1 node --test test/observe/alerts.test.ts\n"
  + "# Every alert is explained in docs/runbooks.md.\n";

interface RuleGroup { name: string; rules: { alert: string; expr: string; for: string; labels: Record<string, string>; annotations: Record<string, string> }[] }

function helmRendering(helmBin: string, ...set: string[]): { spec: { groups: RuleGroup[] } } {
  const home = tempDir("helm-home");
  try {
    const env = { ...process.env, HELM_CACHE_HOME: join(home.path, "c"), HELM_CONFIG_HOME: join(home.path, "f"), HELM_DATA_HOME: join(home.path, "d") };
    const args = ["template", "vireo", join(REPO, "helm", "vireo"), "--show-only", "templates/prometheusrule.yaml", "--set", "alerts.enabled=true", ...set.flatMap((s) => ["--set", s])];
    const r = spawnSync(helmBin, args, { encoding: "utf8", env });
    assert.equal(r.status, 0, `helm template failed:\n${r.stderr}`);
    return load(r.stdout) as { spec: { groups: RuleGroup[] } };
  } finally {
    home.remove();
  }
}

let helmBin: string;
before(async () => {
  await ensureDebianPackages({ prometheus: "promtool" });
  const dir = await ensureControlPlaneBinaries();
  helmBin = existsSync(join(dir, "helm")) ? join(dir, "helm") : "helm";
});

test("the plain rules file is the chart's PrometheusRule rendered with the default values", () => {
  const rendered = helmRendering(helmBin).spec;
  const text = HEADER + dump(rendered, { lineWidth: -1, noRefs: true });
  if (process.env["VIREO_REGENERATE_ALERTS"]) writeFileSync(RULES, text);
  assert.deepEqual(load(readFileSync(RULES, "utf8")), rendered, "deploy/prometheus/vireo-alerts.yaml is stale: regenerate it (see the top of this file)");
});

test("every alert has a severity, a summary and description, and a runbook_url naming a section of docs/runbooks.md", () => {
  const { groups } = load(readFileSync(RULES, "utf8")) as { groups: RuleGroup[] };
  const runbooks = readFileSync(join(REPO, "docs", "runbooks.md"), "utf8");
  const anchors = new Set([...runbooks.matchAll(/^## (\S+)/gm)].map((m) => m[1]!.toLowerCase()));
  for (const rule of groups.flatMap((g) => g.rules)) {
    assert.ok(["critical", "warning", "info"].includes(rule.labels.severity!), `${rule.alert} severity`);
    assert.ok(rule.annotations["summary"] && rule.annotations["description"], `${rule.alert} annotations`);
    const anchor = /docs\/runbooks\.md#(\S+)$/.exec(rule.annotations["runbook_url"] ?? "")?.[1];
    assert.ok(anchor && anchors.has(anchor), `${rule.alert}: runbook_url ${rule.annotations["runbook_url"]} has no section in docs/runbooks.md`);
  }
});

test("the chart's values switch alerts off, add labels and tune thresholds", () => {
  const tuned = helmRendering(helmBin, "alerts.rules.VireoObjectDrifted.for=1h", "alerts.rules.VireoHostIsolated.enabled=false", "alerts.ruleLabels.team=platform", "alerts.rules.VireoReconcileErrors.ratePerSecond=2").spec.groups[0]!.rules;
  const drifted = tuned.find((r) => r.alert === "VireoObjectDrifted")!;
  assert.equal(drifted.for, "1h");
  assert.equal(drifted.labels["team"], "platform");
  assert.equal(tuned.some((r) => r.alert === "VireoHostIsolated"), false);
  assert.match(tuned.find((r) => r.alert === "VireoReconcileErrors")!.expr, /> 2$/);
});

test("promtool checks the rules and their unit tests pass, each alert firing and not firing", () => {
  const check = spawnSync(commandPath("promtool")!, ["check", "rules", RULES], { encoding: "utf8" });
  assert.equal(check.status, 0, `promtool check rules:\n${check.stdout}${check.stderr}`);
  const unit = spawnSync(commandPath("promtool")!, ["test", "rules", RULE_TESTS], { encoding: "utf8" });
  assert.equal(unit.status, 0, `promtool test rules:\n${unit.stdout}${unit.stderr}`);
  // Every alert has a test where it fires and one where it does not.
  const { tests } = load(readFileSync(RULE_TESTS, "utf8")) as { tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[] };
  const cases = tests.flatMap((t) => t.alert_rule_test ?? []);
  const { groups } = load(readFileSync(RULES, "utf8")) as { groups: RuleGroup[] };
  for (const rule of groups.flatMap((g) => g.rules)) {
    assert.ok(cases.some((c) => c.alertname === rule.alert && (c.exp_alerts?.length ?? 0) > 0), `${rule.alert} has no firing test case`);
    assert.ok(cases.some((c) => c.alertname === rule.alert && (c.exp_alerts?.length ?? 0) === 0), `${rule.alert} has no not-firing test case`);
  }
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

interface PromAlert { labels: Record<string, string>; annotations: Record<string, string>; state: string }

async function alerts(prometheus: string): Promise<PromAlert[]> {
  const r = await fetch(`http://${prometheus}/api/v1/alerts`).catch(() => undefined);
  if (!r?.ok) return [];
  return ((await r.json()) as { data: { alerts: PromAlert[] } }).data.alerts;
}

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>, describe: () => string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`${what} not seen within ${ms} ms\n${describe()}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

test("a real Prometheus scraping `vireo run` sees a broken manifest and an unschedulable VM alert, pending then firing", async (t) => {
  const dir = tempDir("prometheus");
  t.after(() => dir.remove());
  const manifests = join(dir.path, "manifests");
  mkdirSync(manifests);
  // Two hosts, so the cluster tolerates the host failure HA admission control asks for by default.
  writeFileSync(join(manifests, "fleet.yaml"), clusterYaml() + hostYaml("h1") + hostYaml("h2") + vmYaml("web-1"));
  const vireo = new VireoProcess(["run", "--manifests", manifests, "--state-dir", join(dir.path, "state"), "--metrics-addr", "127.0.0.1:0", "--time-scale", "50"]);
  t.after(() => vireo.stop("SIGKILL"));
  const target = (await vireo.waitForLog(/metrics on http:\/\/([^/\s"]+)\/metrics/))[1]!;
  await waitForState(join(dir.path, "state"), (s) => s.objects.some((o) => o.object.metadata.name === "web-1" && (o.object.status as { phase?: string } | undefined)?.phase === "Running"), 60_000, () => vireo.logs());

  // The chart's rules with short `for`s, so the test sees pending, then firing.
  const rules = helmRendering(helmBin, "alerts.rules.VireoManifestErrors.for=5s", "alerts.rules.VireoVMUnschedulable.for=5s").spec;
  writeFileSync(join(dir.path, "rules.yaml"), dump(rules));
  writeFileSync(join(dir.path, "prometheus.yml"), dump({
    global: { scrape_interval: "1s", evaluation_interval: "1s" },
    rule_files: [join(dir.path, "rules.yaml")],
    scrape_configs: [{ job_name: "vireo", static_configs: [{ targets: [target] }] }],
  }));
  const address = `127.0.0.1:${await freePort()}`;
  let promLogs = "";
  const prometheus = spawn(commandPath("prometheus")!, [`--config.file=${join(dir.path, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir.path, "tsdb")}`, `--web.listen-address=${address}`], { stdio: ["ignore", "pipe", "pipe"] });
  prometheus.stdout.on("data", (d: Buffer) => { promLogs += d.toString(); });
  prometheus.stderr.on("data", (d: Buffer) => { promLogs += d.toString(); });
  const promExited = new Promise((resolve) => prometheus.once("exit", resolve));
  t.after(async () => {
    if (prometheus.exitCode === null && prometheus.signalCode === null) prometheus.kill("SIGKILL");
    await promExited;
  });

  // Nothing wrong yet: the controller is scraped and no alert fires (VireoControllerAbsent may have gone
  // pending before the first scrape; it clears).
  let pendingAtStart: PromAlert[] = [];
  await until("the vireo target scraped, and no alert", 60_000, async () => {
    const r = await fetch(`http://${address}/api/v1/query?query=${encodeURIComponent("vireo_build_info")}`).catch(() => undefined);
    if (!r?.ok) return undefined;
    const scraped = ((await r.json()) as { data: { result: unknown[] } }).data.result.length > 0;
    pendingAtStart = await alerts(address);
    return scraped && pendingAtStart.length === 0 ? true : undefined;
  }, () => `alerts: ${JSON.stringify(pendingAtStart)}\n${promLogs.slice(-2000)}`);

  // A broken manifest, and a VM no host can take.
  writeFileSync(join(manifests, "broken.yaml"), "kind: VirtualMachine\nmetadata: {name: [oops\n");
  writeFileSync(join(manifests, "huge.yaml"), vmYaml("huge", { namespace: "shop", memoryMiB: 1_048_576 }));
  const seen = new Map<string, Set<string>>();
  const observe = async () => {
    for (const a of await alerts(address)) {
      const name = a.labels["alertname"]!;
      seen.set(name, (seen.get(name) ?? new Set()).add(a.state));
    }
  };
  const both = ["VireoManifestErrors", "VireoVMUnschedulable"];
  await until("both alerts firing", 120_000, async () => {
    await observe();
    return both.every((n) => seen.get(n)?.has("firing")) ? true : undefined;
  }, () => `${JSON.stringify([...seen].map(([k, v]) => [k, [...v]]))}\n${vireo.logs().slice(-2000)}\n${promLogs.slice(-2000)}`);
  for (const name of both) assert.ok(seen.get(name)!.has("pending"), `${name} was firing without being pending first`);
  const unschedulable = (await alerts(address)).find((a) => a.labels["alertname"] === "VireoVMUnschedulable")!;
  assert.equal(unschedulable.labels["namespace"], "shop");
  assert.equal(unschedulable.labels["name"], "huge");
  assert.match(unschedulable.annotations["summary"]!, /shop\/huge/);
  assert.match(unschedulable.annotations["runbook_url"]!, /docs\/runbooks\.md#vireovmunschedulable$/);
});
