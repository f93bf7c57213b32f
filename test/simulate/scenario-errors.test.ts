// A scenario that cannot be run as written is refused before anything runs, and each problem is said at its
// file, line and field: a bad fault, a host or VM that is not in the fleet, a bad manifest inline or in a
// file the scenario names, an unknown field, broken YAML.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseScenario, loadScenario } from "../../controller/simulate/scenario.ts";
import { ScenarioError, formatProblem } from "../../controller/simulate/problems.ts";
import { simulate } from "../../controller/cli/simulate.ts";
import { tempDir } from "../support/process.ts";

const FLEET = `fleet:
  objects:
    - apiVersion: vireo.dev/v1alpha1
      kind: Host
      metadata: {name: esx-01, labels: {vireo.dev/cluster: prod, topology.vireo.dev/rack: r1}}
      spec: {hypervisor: esx, cpu: {cores: 16, vendor: intel, features: [avx2], overcommitRatio: 4}, memoryMiB: 65536, datastores: [shared], networks: [prod]}
    - apiVersion: vireo.dev/v1alpha1
      kind: Host
      metadata: {name: esx-02, labels: {vireo.dev/cluster: prod, topology.vireo.dev/rack: r2}}
      spec: {hypervisor: esx, cpu: {cores: 16, vendor: intel, features: [avx2], overcommitRatio: 4}, memoryMiB: 65536, datastores: [shared], networks: [prod]}
    - apiVersion: vireo.dev/v1alpha1
      kind: HostCluster
      metadata: {name: prod}
      spec: {hostSelector: {matchLabels: {vireo.dev/cluster: prod}}}
    - apiVersion: vireo.dev/v1alpha1
      kind: VirtualMachine
      metadata: {name: web-1, namespace: shop}
      spec: {cpu: 2, memoryMiB: 4096, disks: [{name: root, sizeGiB: 20, datastore: shared}], networks: [{name: prod}], placement: {cluster: prod}}
`;

function problemsOf(text: string, file = "scenario.yaml"): string[] {
  try {
    parseScenario(file, text);
  } catch (error) {
    assert.ok(error instanceof ScenarioError, String(error));
    return error.problems.map(formatProblem);
  }
  return assert.fail("the scenario was accepted");
}

/** The 1-based line of the first line of `text` that contains `needle`. */
function lineOf(text: string, needle: string): number {
  return text.split("\n").findIndex((l) => l.includes(needle)) + 1;
}

test("a fault on a host that is not in the fleet is refused at its file, line and field", () => {
  const text = `name: typo\nduration: 1h\n${FLEET}timeline:\n  - at: 10m\n    fault: {type: HostCrash, host: esx-01}\n  - at: 20m\n    fault:\n      type: HostCrash\n      host: esx-99\n`;
  assert.deepEqual(problemsOf(text), [`scenario.yaml:${lineOf(text, "esx-99")}: timeline[1].fault.host: host "esx-99" is not in the fleet`]);
});

test("one unknown host in a list is named by its index", () => {
  const text = `name: rack\nduration: 1h\n${FLEET}timeline:\n  - at: 10m\n    fault:\n      type: NetworkPartition\n      hosts:\n        - esx-01\n        - esx-98\n`;
  assert.deepEqual(problemsOf(text), [`scenario.yaml:${lineOf(text, "esx-98")}: timeline[0].fault.hosts[1]: host "esx-98" is not in the fleet`]);
});

test("a fault of an unknown type is refused with the types there are", () => {
  const text = `name: bad-type\nduration: 1h\n${FLEET}timeline:\n  - at: 10m\n    fault: {type: HostExplode, host: esx-01}\n`;
  const [problem, ...rest] = problemsOf(text);
  assert.deepEqual(rest, []);
  assert.match(problem!, new RegExp(`^scenario\\.yaml:${lineOf(text, "HostExplode")}: timeline\\[0\\]\\.fault\\.type: must be one of HostCrash, NetworkIsolation, NetworkPartition, StoragePathLoss, GuestHang, SlowHost$`));
});

test("a fault the Fault CRD refuses is refused at the scenario's field, with the CRD's words", () => {
  const text = `name: apd\nduration: 1h\n${FLEET}timeline:\n  - at: 10m\n    fault:\n      type: StoragePathLoss\n      host: esx-01\n`;
  // The field is missing, so its line is the fault's.
  assert.deepEqual(problemsOf(text), [`scenario.yaml:${lineOf(text, "    fault:")}: timeline[0].fault.datastore: Required value: target.datastore is required for StoragePathLoss`]);
});

test("a selector that matches no host, a VM not in the fleet and a time after the end are each refused", () => {
  const text = `name: several\nduration: 1h\n${FLEET}timeline:
  - at: 10m
    fault: {type: HostCrash, hostSelector: {matchLabels: {topology.vireo.dev/rack: r9}}}
  - at: 20m
    migrate: {vm: shop/web-9, to: esx-02}
  - at: 2h
    maintenance: {host: esx-01, enabled: true}
`;
  assert.deepEqual(problemsOf(text), [
    `scenario.yaml:${lineOf(text, "r9")}: timeline[0].fault.hostSelector: matches no host in the fleet`,
    `scenario.yaml:${lineOf(text, "web-9")}: timeline[1].migrate.vm: VM "shop/web-9" is not in the fleet`,
    `scenario.yaml:${lineOf(text, "at: 2h")}: timeline[2].at: is after the end of the run (duration 1h)`,
  ]);
});

test("an unknown field, a bad duration and an entry with two actions are refused where they are", () => {
  const text = `name: fields\nduration: soon\n${FLEET}timeline:
  - at: 10m
    fault: {type: HostCrash, host: esx-01, hots: [esx-02]}
  - at: 20m
    maintenance: {host: esx-01, enabled: true}
    migrate: {vm: shop/web-1}
`;
  assert.deepEqual(problemsOf(text), [
    `scenario.yaml:${lineOf(text, "hots")}: timeline[0].fault.hots: unknown field`,
  ]);
  const second = problemsOf(text.replace(", hots: [esx-02]", ""));
  assert.deepEqual(second, [
    "scenario.yaml:2: duration: must be a positive duration such as 30m or 2h, got \"soon\"",
    `scenario.yaml:${lineOf(text, "at: 20m")}: timeline[1]: an entry does exactly one of fault, maintenance, rollingMaintenance, migrate, workload, apply, delete; this one has maintenance, migrate`,
  ]);
});

test("an inline manifest the CRD refuses is refused at its field inside the scenario", () => {
  const text = `name: inline\nduration: 1h\n${FLEET.replace("cpu: 2, memoryMiB: 4096", "cpu: 0, memoryMiB: 4096")}`;
  const problems = problemsOf(text);
  assert.equal(problems.length, 1);
  assert.match(problems[0]!, new RegExp(`^scenario\\.yaml:${lineOf(text, "cpu: 0")}: fleet\\.objects\\[3\\]\\.spec\\.cpu: Invalid value: 0: spec\\.cpu in body should be greater than or equal to 1$`));
});

test("a bad manifest in a file the scenario names is refused at that file's own line", (t) => {
  const dir = tempDir("simulate-errors");
  t.after(() => dir.remove());
  mkdirSync(join(dir.path, "fleet"));
  writeFileSync(join(dir.path, "fleet", "hosts.yaml"), `apiVersion: vireo.dev/v1alpha1
kind: Host
metadata: {name: esx-01}
spec:
  hypervisor: esx
  cpu: {cores: 16, vendor: intel, features: [], overcommitRatio: 4}
  memoryMiB: lots
  datastores: [shared]
  networks: [prod]
`);
  const scenario = join(dir.path, "what-if.yaml");
  writeFileSync(scenario, "name: from-files\nduration: 1h\nfleet: {manifests: fleet}\n");
  assert.throws(() => loadScenario(scenario), (error: unknown) => {
    assert.ok(error instanceof ScenarioError);
    // As from the API server, the CEL rules left unchecked are mentioned after the schema's error.
    assert.match(formatProblem(error.problems[0]!), new RegExp(`^${join(dir.path, "fleet", "hosts.yaml").replaceAll(/[.]/g, "\\.")}:7: spec\\.memoryMiB: Invalid value: "string": spec\\.memoryMiB in body must be of type integer: "string"$`));
    return true;
  });
  writeFileSync(scenario, "name: from-files\nduration: 1h\nfleet: {manifests: [fleet, missing]}\n");
  assert.throws(() => loadScenario(scenario), (error: unknown) => error instanceof ScenarioError && error.problems.some((p) => formatProblem(p) === `${scenario}:3: fleet.manifests[1]: ${join(dir.path, "missing")}: no such file or directory`));
});

test("broken YAML is refused at its line", () => {
  assert.deepEqual(problemsOf("name: broken\nduration: 1h\nfleet:\n  objects: [\n"), ["scenario.yaml:5: YAML syntax error: deficient indentation in \"scenario.yaml\" (5:1)"]);
});

test("vireo simulate refuses such a scenario with exit code 2 and every problem on stderr, running nothing", async (t) => {
  const dir = tempDir("simulate-cli");
  t.after(() => dir.remove());
  const file = join(dir.path, "scenario.yaml");
  writeFileSync(file, `name: typo\nduration: 1h\n${FLEET}timeline:\n  - at: 10m\n    fault: {type: HostCrash, host: esx-99}\n`);
  const out: string[] = [];
  const err: string[] = [];
  const code = await simulate([file, "--report", join(dir.path, "report.html")], { out: (s) => out.push(s), err: (s) => err.push(s) });
  assert.equal(code, 2);
  assert.deepEqual(out, []);
  assert.equal(err.join("\n"), `error: the scenario is refused:\n${file}:${5 + FLEET.split("\n").length - 1}: timeline[0].fault.host: host "esx-99" is not in the fleet`);
});
