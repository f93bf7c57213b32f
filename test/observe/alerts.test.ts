// Vireo's alert rules: the plain rules file is the Helm chart's PrometheusRule rendered with the default
// values; promtool checks it and runs its unit tests (every alert, firing and not firing); and a real
// Prometheus scraping a real `vireo run` sees alerts go pending and firing: a broken manifest, an
// unschedulable VM, and drift made behind Vireo's back with `vireo sim` that Vireo cannot heal for lack of
// capacity, which resolves once capacity is freed.
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
import type { TestContext } from "node:test";
import type { VirtualMachine } from "../../controller/api/types.ts";
import type { StateSnapshot } from "../../controller/state/state-dir.ts";
import { REPO, VireoProcess, WAIT_MS, tempDir, vireoCommand, waitForState } from "../support/process.ts";
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

type Defer = (cleanup: () => unknown) => void;

/** Cleanups run when the test ends, last deferred first: processes stop before the directory they use goes. */
function cleanups(t: TestContext): Defer {
  const pending: (() => unknown)[] = [];
  t.after(async () => {
    for (const cleanup of pending.reverse()) await cleanup();
  });
  return (cleanup) => { pending.push(cleanup); };
}

/**
 * A real Prometheus on a free loopback port, scraping `target` every second and evaluating the chart's rules
 * (rendered with `set`) every second; killed when the test ends (before its directory is removed, which
 * was deferred earlier).
 */
async function startPrometheus(defer: Defer, dir: string, target: string, ...set: string[]): Promise<{ address: string; logs: () => string }> {
  const rules = helmRendering(helmBin, ...set).spec;
  writeFileSync(join(dir, "rules.yaml"), dump(rules));
  writeFileSync(join(dir, "prometheus.yml"), dump({
    global: { scrape_interval: "1s", evaluation_interval: "1s" },
    rule_files: [join(dir, "rules.yaml")],
    scrape_configs: [{ job_name: "vireo", static_configs: [{ targets: [target] }] }],
  }));
  const address = `127.0.0.1:${await freePort()}`;
  let logs = "";
  const prometheus = spawn(commandPath("prometheus")!, [`--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir, "tsdb")}`, `--web.listen-address=${address}`], { stdio: ["ignore", "pipe", "pipe"] });
  prometheus.stdout.on("data", (d: Buffer) => { logs += d.toString(); });
  prometheus.stderr.on("data", (d: Buffer) => { logs += d.toString(); });
  const exited = new Promise((resolve) => prometheus.once("exit", resolve));
  defer(async () => {
    if (prometheus.exitCode === null && prometheus.signalCode === null) prometheus.kill("SIGKILL");
    await exited;
  });
  return { address, logs: () => logs };
}

/** An instant query through Prometheus's HTTP API: the result vector, or undefined while it cannot answer. */
async function query(prometheus: string, expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[] | undefined> {
  const r = await fetch(`http://${prometheus}/api/v1/query?query=${encodeURIComponent(expr)}`).catch(() => undefined);
  if (!r?.ok) return undefined;
  return ((await r.json()) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } }).data.result;
}

/**
 * Whether Prometheus recorded the alert as pending: its own ALERTS series, kept for every evaluation, so a
 * pending spell shorter than the test's polling is not missed.
 */
async function wasPending(prometheus: string, labels: Record<string, string>): Promise<boolean> {
  const selector = Object.entries({ ...labels, alertstate: "pending" }).map(([k, v]) => `${k}="${v}"`).join(", ");
  return ((await query(prometheus, `count_over_time(ALERTS{${selector}}[1h])`))?.length ?? 0) > 0;
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
  const defer = cleanups(t);
  const dir = tempDir("prometheus");
  defer(() => dir.remove());
  const manifests = join(dir.path, "manifests");
  mkdirSync(manifests);
  // Two hosts, so the cluster tolerates the host failure HA admission control asks for by default.
  writeFileSync(join(manifests, "fleet.yaml"), clusterYaml() + hostYaml("h1") + hostYaml("h2") + vmYaml("web-1"));
  const vireo = new VireoProcess(["run", "--manifests", manifests, "--state-dir", join(dir.path, "state"), "--metrics-addr", "127.0.0.1:0", "--time-scale", "50"]);
  defer(() => vireo.stop("SIGKILL"));
  const target = (await vireo.waitForLog(/metrics on http:\/\/([^/\s"]+)\/metrics/))[1]!;
  await waitForState(join(dir.path, "state"), (s) => s.objects.some((o) => o.object.metadata.name === "web-1" && (o.object.status as { phase?: string } | undefined)?.phase === "Running"), WAIT_MS, () => vireo.logs());

  // The chart's rules with short `for`s, so the test sees pending, then firing.
  const { address, logs: promLogs } = await startPrometheus(defer, dir.path, target, "alerts.rules.VireoManifestErrors.for=5s", "alerts.rules.VireoVMUnschedulable.for=5s");

  // Nothing wrong yet: the controller is scraped and no alert fires (VireoControllerAbsent may have gone
  // pending before the first scrape; it clears).
  let pendingAtStart: PromAlert[] = [];
  await until("the vireo target scraped, and no alert", WAIT_MS, async () => {
    const scraped = ((await query(address, "vireo_build_info"))?.length ?? 0) > 0;
    pendingAtStart = await alerts(address);
    return scraped && pendingAtStart.length === 0 ? true : undefined;
  }, () => `alerts: ${JSON.stringify(pendingAtStart)}\n${promLogs().slice(-2000)}`);

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
  await until("both alerts firing", WAIT_MS, async () => {
    await observe();
    return both.every((n) => seen.get(n)?.has("firing")) ? true : undefined;
  }, () => `${JSON.stringify([...seen].map(([k, v]) => [k, [...v]]))}\n${vireo.logs().slice(-2000)}\n${promLogs().slice(-2000)}`);
  for (const name of both) assert.ok(seen.get(name)!.has("pending") || await wasPending(address, { alertname: name }), `${name} was firing without being pending first`);
  const unschedulable = (await alerts(address)).find((a) => a.labels["alertname"] === "VireoVMUnschedulable")!;
  assert.equal(unschedulable.labels["namespace"], "shop");
  assert.equal(unschedulable.labels["name"], "huge");
  assert.match(unschedulable.annotations["summary"]!, /shop\/huge/);
  assert.match(unschedulable.annotations["runbook_url"]!, /docs\/runbooks\.md#vireovmunschedulable$/);
});

function vm(s: StateSnapshot, name: string): VirtualMachine | undefined {
  return s.objects.find((o) => o.object.kind === "VirtualMachine" && o.object.metadata.name === name)?.object as VirtualMachine | undefined;
}

function drifted(object: VirtualMachine | undefined): { status: string; message?: string } | undefined {
  return object?.status?.conditions?.find((c) => c.type === "Drifted");
}

/** `vireo sim` against the running `vireo run`, without blocking this process, which reads the run's logs meanwhile. */
async function sim(state: string, ...args: string[]): Promise<void> {
  const r = await vireoCommand(["sim", ...args, "--state-dir", state]);
  assert.equal(r.code, 0, `vireo sim ${args.join(" ")}:\n${r.stderr}`);
}

test("a real Prometheus scraping `vireo run` sees the drift alert for a change made with `vireo sim` that Vireo cannot heal, pending then firing, then resolved once capacity returns", async (t) => {
  const defer = cleanups(t);
  const dir = tempDir("prometheus-drift");
  defer(() => dir.remove());
  const manifests = join(dir.path, "manifests");
  const state = join(dir.path, "state");
  mkdirSync(manifests);
  // Two hosts of 64 GiB; web-1 wants 16 GiB. At 2x a guest shutdown (10 s simulated) takes 5 s.
  writeFileSync(join(manifests, "fleet.yaml"), clusterYaml() + hostYaml("h1") + hostYaml("h2") + vmYaml("web-1", { memoryMiB: 16384 }));
  const vireo = new VireoProcess(["run", "--manifests", manifests, "--state-dir", state, "--metrics-addr", "127.0.0.1:0", "--time-scale", "2"]);
  defer(() => vireo.stop("SIGKILL"));
  const target = (await vireo.waitForLog(/metrics on http:\/\/([^/\s"]+)\/metrics/))[1]!;
  const running = await waitForState(state, (s) => vm(s, "web-1")?.status?.phase === "Running", WAIT_MS, () => vireo.logs());
  const home = vm(running, "web-1")!.status!.host!;
  const other = home === "h1" ? "h2" : "h1";

  const { address, logs: promLogs } = await startPrometheus(defer, dir.path, target, "alerts.rules.VireoObjectDrifted.for=5s");
  const driftAlerts = async () => (await alerts(address)).filter((a) => a.labels["alertname"] === "VireoObjectDrifted");
  const forWeb1 = (a: PromAlert) => a.labels["kind"] === "VirtualMachine" && a.labels["namespace"] === "default" && a.labels["name"] === "web-1";
  await until("the vireo target scraped, with no drift alert", WAIT_MS, async () => {
    const scraped = ((await query(address, "vireo_build_info"))?.length ?? 0) > 0;
    return scraped && (await driftAlerts()).length === 0 ? true : undefined;
  }, () => promLogs().slice(-2000));

  // Behind Vireo's back: a VM nobody declared fills the other host; web-1 is shrunk to 8 GiB in place, and
  // at once a second undeclared VM takes the rest of web-1's host. Vireo power-cycles web-1 to give it its
  // 16 GiB again, and then no host can take it: the drift stays, with the reason.
  // The fill of web-1's host must land before web-1's power cycle ends (at least 5 s after the shrink), so it
  // takes the route `vireo sim create` takes without a process start, with the endpoint read beforehand.
  const endpoint = JSON.parse(readFileSync(join(state, "sim-endpoint.json"), "utf8")) as { url: string; token: string };
  await sim(state, "create", "ops/rogue-a", "--host", other, "--cpu", "1", "--memory", "65536");
  await sim(state, "set-memory", "default/web-1", "8192");
  const filled = await fetch(`${endpoint.url}/v1/sim/vms/ops/rogue-b/create`, {
    method: "POST",
    headers: { authorization: `Bearer ${endpoint.token}`, "content-type": "application/json" },
    body: JSON.stringify({ host: home, cpu: 1, memoryMiB: 65536 - 8192 }),
  });
  assert.equal(filled.status, 204, `filling ${home}: ${await filled.text()}`);

  const stuck = await waitForState(state, (s) => /cannot correct yet: .*hosts fit/.test(drifted(vm(s, "web-1"))?.message ?? ""), WAIT_MS, () => vireo.logs().slice(-3000));
  const since = vm(stuck, "web-1")!.status!.drift!.since;

  // Pending, then firing, through Prometheus's own API, naming the VM.
  const states = new Set<string>();
  const firing = await until("VireoObjectDrifted firing for default/web-1", WAIT_MS, async () => {
    const alert = (await driftAlerts()).find(forWeb1);
    if (alert) states.add(alert.state);
    return alert?.state === "firing" ? alert : undefined;
  }, () => `states: ${[...states].join(", ")}\n${vireo.logs().slice(-2000)}\n${promLogs().slice(-2000)}`);
  assert.ok(states.has("pending") || await wasPending(address, { alertname: "VireoObjectDrifted", name: "web-1" }), "VireoObjectDrifted was firing without being pending first");
  assert.equal(firing.labels["severity"], "warning");
  assert.equal(firing.annotations["summary"], "VirtualMachine default/web-1 has drifted from its spec.");
  assert.match(firing.annotations["description"]!, /VirtualMachine default\/web-1 has differed from its spec for 5s/);
  assert.match(firing.annotations["runbook_url"]!, /docs\/runbooks\.md#vireoobjectdrifted$/);
  // The hosts running VMs nobody declared are drifted too, named without a namespace.
  let found: PromAlert[] = [];
  const hosts = await until("VireoObjectDrifted for both hosts", WAIT_MS, async () => {
    found = (await driftAlerts()).filter((a) => a.labels["kind"] === "Host");
    return found.length === 2 ? found : undefined;
  }, () => JSON.stringify(found));
  assert.deepEqual(hosts.map((a) => a.annotations["summary"]).sort(), ["Host h1 has drifted from its spec.", "Host h2 has drifted from its spec."]);
  // When the drift began, as Prometheus has it: status.drift.since, on Vireo's clock (simulated time, which
  // runs twice as fast as Prometheus's time() here), and before that clock's now.
  const began = await query(address, `vireo_object_drifted_since_seconds{kind="VirtualMachine", namespace="default", name="web-1"}`);
  assert.equal(Number(began?.[0]?.value[1]), Date.parse(since) / 1000);
  const clock = (await (await fetch(`${endpoint.url}/v1/clock`, { headers: { authorization: `Bearer ${endpoint.token}` } })).json()) as { now: number };
  assert.ok(clock.now > Date.parse(since), `drift since ${since}, simulated clock at ${new Date(clock.now).toISOString()}`);

  // Capacity comes back (the undeclared VMs are powered off): Vireo starts web-1 with its 16 GiB, the
  // drift clears and the alert resolves.
  await sim(state, "power-off", "ops/rogue-b");
  await sim(state, "power-off", "ops/rogue-a");
  await waitForState(state, (s) => vm(s, "web-1")?.status?.drift === undefined && drifted(vm(s, "web-1")) === undefined, WAIT_MS, () => vireo.logs().slice(-3000));
  await until("VireoObjectDrifted for default/web-1 resolved", WAIT_MS, async () => {
    const series = await query(address, `vireo_object_drifted{name="web-1"}`);
    return series?.length === 0 && !(await driftAlerts()).some(forWeb1) ? true : undefined;
  }, () => `${vireo.logs().slice(-2000)}\n${promLogs().slice(-2000)}`);
});
