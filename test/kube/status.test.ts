// Status on the API server says only what is true: every status field a planner can leave out is gone from
// the object once it does, as `kubectl get -o json` shows it — not just absent from the next summary while
// the server keeps the old value. One control plane, `vireo run --kubeconfig` as a process, three clusters:
//   prod (p1–p3): a VM halted, a VM powered off behind Vireo's back, two HAPolicies over one VM, and last
//                 the cluster's failover capacity as its admission control changes and HA is turned off;
//   ha2 (x1, x2): one VM failed over twice, the second time with nowhere to go;
//   lab (l1, l2): a VM started on l1 behind Vireo's back, then declared; l2 relabelled out of the cluster.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { HAPolicy, Host, HostCluster, VirtualMachine } from "../../controller/api/types.ts";
import { ControlPlane, eventually, kubectlOk, vireoApiMode } from "../support/cluster.ts";
import { VIREO, VireoProcess, tempDir } from "../support/process.ts";
import { clusterYaml, hostYaml, vmYaml } from "../support/scenario.ts";

const HA = "{enabled: true, failureDetectionSeconds: 15}";
const FLEET = clusterYaml("prod", "Spread", HA) + ["p1", "p2", "p3"].map((h) => hostYaml(h)).join("")
  + clusterYaml("ha2", "Spread", HA) + ["x1", "x2"].map((h) => hostYaml(h, { cluster: "ha2" })).join("")
  + clusterYaml("lab", "Spread") + ["l1", "l2"].map((h) => hostYaml(h, { cluster: "lab" })).join("")
  + vmYaml("web") + vmYaml("drifty") + vmYaml("guarded", { labels: { app: "guarded" } })
  + vmYaml("failover", { cluster: "ha2" });

/** How long anything here may take: generous, because the machine may be loaded; every wait ends early. */
const WAIT_MS = 90_000;

let cp: ControlPlane;
let vireo: VireoProcess;
const state = tempDir("status");
const manifests = tempDir("status-manifests");

before(async () => {
  cp = await ControlPlane.start();
  await kubectlOk(cp, ["apply", "-f", "-"], FLEET);
  vireo = vireoApiMode(cp, state.path);
  await vireo.waitForLog(/synced: 7 hosts in 3 clusters, 4 VMs/);
  await kubectlWithin(["wait", "--for=condition=Ready", "vm", "--all", "-n", "default"]);
});

after(async () => {
  await vireo?.stop();
  await cp?.stop();
  state.remove();
  manifests.remove();
});

/** kubectl wait or delete with kubectl's own deadline of WAIT_MS, and the process given 30 s beyond it. */
async function kubectlWithin(args: string[]): Promise<string> {
  const r = await cp.kubectl([...args, `--timeout=${WAIT_MS / 1000}s`], { timeoutMs: WAIT_MS + 30_000 });
  assert.equal(r.code, 0, `kubectl ${args.join(" ")} failed:\n${r.stderr}`);
  return r.stdout;
}

/**
 * `vireo sim …` against the running controller's simulated hosts. Not spawnSync: this process must keep
 * reading the controller's logs meanwhile, or a full pipe could stall it.
 */
async function vireoSim(args: string[]): Promise<void> {
  const child = spawn(process.execPath, [VIREO, "sim", ...args, "--state-dir", state.path], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => { output += d; });
  child.stderr.setEncoding("utf8").on("data", (d: string) => { output += d; });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", resolve);
  });
  assert.equal(code, 0, `vireo sim ${args.join(" ")} failed:\n${output}`);
}

async function getJson<T>(args: string[]): Promise<T> {
  return JSON.parse(await kubectlOk(cp, ["get", ...args, "-o", "json"])) as T;
}

const vm = (name: string) => getJson<VirtualMachine>(["vm", name, "-n", "default"]);
const host = (name: string) => getJson<Host>(["host", name]);
const hostCluster = (name: string) => getJson<HostCluster>(["hostcluster", name]);
const haPolicy = (name: string) => getJson<HAPolicy>(["hapolicy", name, "-n", "default"]);

/** Reads `read` until `done` holds of it, and returns it; fails after WAIT_MS with what was last read. */
async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, what: string): Promise<T> {
  let last: T | undefined;
  await eventually(async () => done(last = await read()), WAIT_MS, () => `${what}; last read: ${JSON.stringify(last, null, 1)}\n${vireo.logs().slice(-3000)}`);
  return last!;
}

function ready(object: { status?: { conditions?: { type: string; status: string }[] } }): boolean {
  return object.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

async function mergePatch(args: string[], patch: object): Promise<void> {
  await kubectlOk(cp, ["patch", ...args, "--type", "merge", "-p", JSON.stringify(patch)]);
}

async function applyFault(name: string, target: string): Promise<void> {
  const file = join(manifests.path, `${name}.yaml`);
  writeFileSync(file, `apiVersion: vireo.dev/v1alpha1\nkind: Fault\nmetadata: {name: ${name}}\nspec: {type: HostCrash, target: {host: ${target}}}\n`);
  await kubectlOk(cp, ["apply", "-f", file]);
}

test("a running VM patched to runStrategy Halted: once stopped, status.host is gone and kubectl get vm shows no host", async () => {
  const running = await vm("web");
  const was = running.status?.host;
  assert.ok(was, "web runs on a host");
  await mergePatch(["vm", "web", "-n", "default"], { spec: { runStrategy: "Halted" } });
  const stopped = await until(() => vm("web"), (v) => v.status?.phase === "Stopped" && ready(v), "web stops");
  assert.equal(stopped.status?.host, undefined, `status.host still says ${stopped.status?.host}`);
  assert.equal(stopped.status?.conditions?.find((c) => c.type === "Placed")?.status, "False");
  const row = (await kubectlOk(cp, ["get", "vm", "web", "-n", "default", "--no-headers"])).trim();
  assert.match(row, /^web\s+Stopped\s/);
  assert.doesNotMatch(row, new RegExp(`\\b${was}\\b`), "kubectl get vm still shows the old host");
});

test("a stopped VM whose networks are removed from its spec: status.networks is gone", async () => {
  await until(() => vm("web"), (v) => v.status?.phase === "Stopped", "web is stopped");
  assert.equal((await vm("web")).status?.networks?.length, 1, "web has its network's MAC in status");
  await mergePatch(["vm", "web", "-n", "default"], { spec: { networks: [] } });
  await until(() => vm("web"), (v) => v.status?.observedGeneration === v.metadata.generation && v.status?.networks === undefined,
    "status.networks goes with the spec's networks");
});

test("a VM powered off behind Vireo's back: once healed and running again, status.drift is gone (docs/drift.md: absent once healed)", async () => {
  const before = await vm("drifty");
  assert.equal(before.status?.phase, "Running");
  await vireoSim(["power-off", "default/drifty"]);
  // The Drifted event is recorded only once a status with the drift was written to the server.
  await eventually(async () => {
    const events = await kubectlOk(cp, ["get", "events", "-n", "default", "--field-selector", "involvedObject.name=drifty"]);
    return /Drifted/.test(events) && /DriftCorrected/.test(events);
  }, WAIT_MS, () => "no Drifted and DriftCorrected events for drifty");
  const healed = await until(() => vm("drifty"), (v) => v.status?.phase === "Running" && ready(v) && !v.status.conditions?.some((c) => c.type === "Drifted" && c.status === "True"),
    "drifty runs again without a Drifted condition");
  assert.equal(healed.status?.drift, undefined, `status.drift still there: ${JSON.stringify(healed.status?.drift)}`);
  assert.notEqual(healed.status?.startedAt, before.status?.startedAt, "a new run");
});

test("a VM failed over a second time, with nowhere to go yet: status.lastFailover no longer names the first failover's target", async () => {
  const first = await vm("failover");
  const [a, b] = first.status?.host === "x1" ? ["x1", "x2"] : ["x2", "x1"];
  assert.equal(first.status?.host, a);

  // First failover: a crashes, the VM restarts on b.
  await applyFault(`crash-${a}`, a);
  const moved = await until(() => vm("failover"), (v) => v.status?.host === b && v.status.lastFailover?.toHost === b && ready(v), `failover restarts on ${b}`);
  assert.equal(moved.status?.lastFailover?.fromHost, a);
  assert.ok(moved.status?.lastFailover?.lastAttempt);
  await kubectlWithin(["delete", "fault", `crash-${a}`]);
  await until(() => host(a), (h) => h.status?.phase === "Ready", `${a} is back`);

  // a goes into maintenance, then b crashes: HA has a VM to restart and no host for it.
  await mergePatch(["host", a], { spec: { maintenance: true } });
  await until(() => host(a), (h) => h.status?.phase === "Maintenance", `${a} in maintenance`);
  await applyFault(`crash-${b}`, b);
  const waiting = await until(() => vm("failover"), (v) => v.status?.lastFailover?.fromHost === b && v.status.lastFailover.attempts === 0,
    `failover's lastFailover is the failure of ${b}`);
  assert.equal(waiting.status?.lastFailover?.toHost, undefined, `lastFailover says from ${b} to ${waiting.status?.lastFailover?.toHost}: the target of the first failover`);
  assert.equal(waiting.status?.lastFailover?.lastAttempt, undefined, "lastAttempt of the first failover");

  // Room again: it restarts on a, and status says so.
  await mergePatch(["host", a], { spec: { maintenance: false } });
  const back = await until(() => vm("failover"), (v) => v.status?.lastFailover?.toHost === a && ready(v), `failover restarts on ${a}`);
  assert.equal(back.status?.host, a);
  await kubectlWithin(["delete", "fault", `crash-${b}`]);
});

test("an HAPolicy that loses its conflict: once the other policy goes, status.conflicts and status.unprotected are gone", async () => {
  const policy = (name: string, priority: string) => `apiVersion: vireo.dev/v1alpha1
kind: HAPolicy
metadata: {name: ${name}, namespace: default}
spec:
  selector: {matchLabels: {app: guarded}}
  restartPriority: ${priority}
---
`;
  await kubectlOk(cp, ["apply", "-f", "-"], policy("first", "High") + policy("second", "Low"));
  const losing = await until(() => haPolicy("second"), (p) => (p.status?.conflicts?.length ?? 0) > 0 && (p.status?.unprotected?.length ?? 0) > 0, "second reports the conflict");
  assert.deepEqual(losing.status?.conflicts, ["guarded"]);
  await kubectlWithin(["delete", "hapolicy", "first", "-n", "default"]);
  const alone = await until(() => haPolicy("second"), (p) => p.status?.vmsProtected === 1 && p.status.vmsUnprotected === 0, "second protects guarded alone");
  assert.equal(alone.status?.conflicts, undefined, `status.conflicts still there: ${JSON.stringify(alone.status?.conflicts)}`);
  assert.equal(alone.status?.unprotected, undefined, `status.unprotected still there: ${JSON.stringify(alone.status?.unprotected)}`);
  assert.equal(alone.status?.conditions?.some((c) => c.type === "PolicyConflict"), false);
});

test("a host running a VM nobody declared: once it is declared, the Host's status.drift is gone", async () => {
  await vireoSim(["create", "default/stray", "--host", "l1", "--cpu", "1", "--memory", "1024", "--networks", "prod"]);
  const drifted = await until(() => host("l1"), (h) => h.status?.drift !== undefined, "l1 reports the undeclared VM as drift");
  assert.ok(drifted.status?.drift?.operations.some((op) => op.path.startsWith("/unknownVms")));
  await kubectlOk(cp, ["apply", "-f", "-"], vmYaml("stray", { cluster: "lab", cpu: 1, memoryMiB: 1024 }));
  const clean = await until(() => host("l1"), (h) => !h.status?.conditions?.some((c) => c.type === "Drifted" && c.status === "True"), "l1's drift is corrected");
  assert.equal(clean.status?.drift, undefined, `status.drift still there: ${JSON.stringify(clean.status?.drift)}`);
});

test("a host relabelled out of its cluster: status.cluster is gone", async () => {
  assert.equal((await host("l2")).status?.cluster, "lab");
  await kubectlOk(cp, ["label", "host", "l2", "vireo.dev/cluster=nowhere", "--overwrite"]);
  const alone = await until(() => host("l2"), (h) => h.status?.conditions?.some((c) => c.type === "Stalled" && c.reason === "NoCluster") ?? false, "l2 reports that no cluster selects it");
  assert.equal(alone.status?.cluster, undefined, `status.cluster still says ${alone.status?.cluster}`);
});

// Last: it changes how the prod cluster protects its VMs.
test("a HostCluster's failover capacity: what the admission control policy no longer asks for goes, and all of it when HA is off", async () => {
  await mergePatch(["hostcluster", "prod"], { spec: { ha: { admissionControl: { policy: "HostFailuresToTolerate", hostFailures: 2 } } } });
  const strict = await until(() => hostCluster("prod"), (c) => c.status?.failoverCapacity?.required === 2 && c.status.failoverCapacity.worstCase !== undefined,
    "prod reports the worst case of three host failures");
  assert.ok((strict.status?.failoverCapacity?.unplaceable ?? 0) > 0);

  await mergePatch(["hostcluster", "prod"], { spec: { ha: { admissionControl: { policy: "Disabled", hostFailures: null } } } });
  const relaxed = await until(() => hostCluster("prod"), (c) => c.status?.observedGeneration === c.metadata.generation && c.status?.failoverCapacity !== undefined,
    "prod reports its failover capacity under the Disabled policy");
  assert.deepEqual(relaxed.status?.failoverCapacity, { tolerates: 2 }, "required, worstCase and unplaceable of the stricter policy are gone");

  await mergePatch(["hostcluster", "prod"], { spec: { ha: { enabled: false } } });
  const off = await until(() => hostCluster("prod"), (c) => c.status?.observedGeneration === c.metadata.generation, "prod sees HA turned off");
  assert.equal(off.status?.failoverCapacity, undefined, `status.failoverCapacity still there: ${JSON.stringify(off.status?.failoverCapacity)}`);
});
