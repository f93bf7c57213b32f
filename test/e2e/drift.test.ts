// Out-of-band changes and `vireo plan` with real processes on loopback: `vireo sim` against a file-mode
// `vireo run` (its in-process hosts) and against a `vireo hostsim`; `vireo plan` on the examples after a VM
// was powered off behind Vireo's back and a new VM was added, changing nothing.

import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Host, VirtualMachine } from "../../controller/api/types.ts";
import type { PlanReport } from "../../controller/engine/dry-run.ts";
import type { StateSnapshot } from "../../controller/state/state-dir.ts";
import { REPO, VireoProcess, WAIT_MS, tempDir, vireoCommand, waitForState } from "../support/process.ts";
import { clusterYaml, hostYaml, vmYaml } from "../support/scenario.ts";
import { eventually, hostConfig, startHostsim, writeToken } from "../provider/http/hostsim-support.ts";

function object<T>(s: StateSnapshot, kind: string, name: string, namespace?: string): T | undefined {
  return s.objects.find((o) => o.object.kind === kind && o.object.metadata.name === name && o.object.metadata.namespace === namespace)?.object as T | undefined;
}

/** `vireo sim`, without blocking this process: the `vireo` children it talks to log through pipes this process reads. */
async function sim(args: string[]): Promise<void> {
  const result = await vireoCommand(["sim", ...args]);
  assert.equal(result.code, 0, result.stderr);
}

test("vireo sim changes a running file-mode vireo run's hosts: a powered-off VM runs again, an unknown VM is reported and kept", async (t) => {
  const dir = tempDir("drift-run");
  const manifests = join(dir.path, "m");
  const state = join(dir.path, "state");
  mkdirSync(manifests);
  writeFileSync(join(manifests, "fleet.yaml"), clusterYaml() + hostYaml("h1") + hostYaml("h2") + vmYaml("web-1"));
  const vireo = new VireoProcess(["run", "--manifests", manifests, "--state-dir", state, "--metrics-addr", "127.0.0.1:0", "--time-scale", "20"]);
  t.after(async () => { await vireo.stop("SIGKILL"); dir.remove(); });
  await waitForState(state, (s) => object<VirtualMachine>(s, "VirtualMachine", "web-1", "default")?.status?.phase === "Running", WAIT_MS, () => vireo.logs());
  const endpoint = readFileSync(join(state, "sim-endpoint.json"), "utf8");
  assert.match(JSON.parse(endpoint).url as string, /^http:\/\/127\.0\.0\.1:\d+$/, "served on loopback only");

  await sim(["power-off", "default/web-1", "--state-dir", state]);
  await sim(["create", "ops/rogue", "--host", "h2", "--cpu", "1", "--memory", "512", "--state-dir", state]);
  const after = await waitForState(state, (s) => {
    const vm = object<VirtualMachine>(s, "VirtualMachine", "web-1", "default");
    return vm?.status?.lastExit?.reason === "ManualPowerOff" && vm.status.phase === "Running" && object<Host>(s, "Host", "h2")?.status?.drift !== undefined;
  }, WAIT_MS, () => vireo.logs());
  assert.deepEqual(object<Host>(after, "Host", "h2")?.status?.drift?.operations, [{ op: "add", path: "/unknownVms/0", value: "ops/rogue" }]);
  // The event's log line comes through a pipe, after the state file may already show the drift: wait for it.
  await vireo.waitForLog(/UnknownVm.*ops\/rogue/);
  const refused = await vireoCommand(["sim", "power-off", "default/nope", "--state-dir", state]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /not registered/);

  // With the run stopped, `vireo plan` reads the saved world and state and changes neither.
  assert.equal(await vireo.stop(), 0);
  const before = [readFileSync(join(state, "objects.json")), readFileSync(join(state, "world.json"))];
  const planned = await vireoCommand(["plan", "--manifests", manifests, "--state-dir", state, "-o", "json"]);
  assert.equal(planned.code, 0, planned.stderr);
  const report = JSON.parse(planned.stdout) as PlanReport;
  assert.deepEqual(report.actions, []);
  assert.deepEqual(report.drift.map((d) => `${d.kind}/${d.name}`), ["Host/h2"]);
  assert.deepEqual([readFileSync(join(state, "objects.json")), readFileSync(join(state, "world.json"))], before, "plan changes nothing");
});

test("vireo sim changes a vireo hostsim's hosts behind everyone's back", async (t) => {
  const dir = tempDir("drift-hostsim");
  const tokenFile = writeToken(dir.path);
  const hostsim = await startHostsim({ state: join(dir.path, "world.json"), tokenFile });
  t.after(async () => { await hostsim.process.stop("SIGKILL"); dir.remove(); });
  await hostsim.client.registerHost("h1", hostConfig());
  await hostsim.client.registerHost("h2", hostConfig());
  const flags = ["--provider", hostsim.url, "--provider-token-file", tokenFile];
  await sim(["create", "ops/x", "--host", "h1", "--memory", "2048", ...flags]);
  await sim(["move", "ops/x", "h2", ...flags]);
  await sim(["set-memory", "ops/x", "1024", ...flags]);
  await sim(["power-off", "ops/x", ...flags]);
  const vm = (await hostsim.client.observe()).vms.find((v) => v.id === "ops/x");
  assert.equal(vm?.host, "h2");
  assert.equal(vm?.power, "Off");
  assert.equal(vm?.config.memoryMiB, 1024);
  assert.equal(vm?.config.managedBy, undefined, "made by hand: no controller owns it");
  const denied = await vireoCommand(["sim", "power-on", "ops/x", "--provider", hostsim.url]);
  assert.equal(denied.code, 1, "no token, no change");
});

test("vireo plan on the examples lists the restart of a VM powered off out of band and the placement of a new VM, with reasons, and changes nothing", async (t) => {
  const dir = tempDir("plan");
  const manifests = join(dir.path, "m");
  const state = join(dir.path, "state");
  const world = join(dir.path, "world.json");
  cpSync(join(REPO, "manifests", "examples"), manifests, { recursive: true });
  const tokenFile = writeToken(dir.path);
  const hostsim = await startHostsim({ state: world, tokenFile });
  const flags = ["--provider", hostsim.url, "--provider-token-file", tokenFile];
  const vireo = new VireoProcess(["run", "--manifests", manifests, "--state-dir", state, "--metrics-addr", "127.0.0.1:0", ...flags]);
  t.after(async () => { await vireo.stop("SIGKILL"); await hostsim.process.stop("SIGKILL"); dir.remove(); });
  const isReady = (o: { status?: { conditions?: { type: string; status: string }[] } }) => o.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true;
  await vireo.waitForLog(/watching .* VMs/);
  await waitForState(state, (s) => {
    const vms = s.objects.filter((o) => o.object.kind === "VirtualMachine");
    return vms.length > 0 && vms.every((o) => isReady(o.object));
  }, WAIT_MS, () => vireo.logs());
  assert.equal(await vireo.stop(), 0);

  await sim(["power-off", "shop/web-1", ...flags]);
  writeFileSync(join(manifests, "web-7.yaml"), vmYaml("web-7", { namespace: "shop", labels: { app: "shop", tier: "web" } }).replace("datastore: shared", "datastore: shared-ds1"));
  await eventually(async () => ((await hostsim.client.observe()).vms.find((v) => v.id === "shop/web-1")?.power === "Off" ? true : undefined), WAIT_MS, "web-1 powered off");
  // The hostsim saves its world a moment after it answers: wait for that save before taking the world's bytes.
  const saved = () => (JSON.parse(readFileSync(world, "utf8")) as { vms: { id: string; power: string }[] }).vms.find((v) => v.id === "shop/web-1")?.power;
  await eventually(async () => (saved() === "Off" ? true : undefined), WAIT_MS, "the hostsim saved web-1 powered off");
  const revision = async () => (await fetch(`${hostsim.url}/v1/observation`, { headers: { authorization: `Bearer ${readFileSync(tokenFile, "utf8").trim()}` } }).then((r) => r.json()) as { revision: number }).revision;
  const before = { objects: readFileSync(join(state, "objects.json")), world: readFileSync(world), revision: await revision() };

  const table = await vireoCommand(["plan", "--manifests", manifests, "--state-dir", state, ...flags]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /VirtualMachine shop\/web-1\s+Start\s+\S+\s+restart \(score [\d.]+\)/);
  assert.match(table.stdout, /VirtualMachine shop\/web-7\s+Start\s+\S+\s+placement \(score [\d.]+\)/);
  assert.match(table.stdout, /VirtualMachine shop\/web-1: drifted since .*\n.*observed power Off; correcting: .*\n\s+~ \/power Off/);

  const json = await vireoCommand(["plan", "--manifests", manifests, "--state-dir", state, "-o", "json", ...flags]);
  const report = JSON.parse(json.stdout) as PlanReport;
  assert.deepEqual(report.actions.map((a) => `${a.action} ${a.namespace}/${a.name}`).sort(), ["Start shop/web-1", "Start shop/web-7"]);
  assert.ok(report.actions.every((a) => a.host && a.reason), "every action names its host and reason");
  assert.deepEqual(report.drift.map((d) => [`${d.namespace}/${d.name}`, d.drift.operations]), [["shop/web-1", [{ op: "replace", path: "/power", value: "Off" }]]]);

  assert.deepEqual({ objects: readFileSync(join(state, "objects.json")), world: readFileSync(world), revision: await revision() }, before, "state and simulator unchanged");
});
