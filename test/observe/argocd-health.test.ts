// The Argo CD health check (docs/argocd/health.lua) run by a real Lua 5.1 interpreter, the dialect Argo CD
// embeds, against real objects Vireo's controller wrote; and the argocd-cm snippets carry that script.

import { before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { load } from "js-yaml";
import { REPO } from "../support/process.ts";
import { commandPath, ensureDebianPackages } from "../tools/setup.ts";
import { recoveryPlanSamples, sampleObjects, type Sample } from "./fleet.ts";

const SCRIPT = join(REPO, "docs", "argocd", "health.lua");
const KINDS = ["VirtualMachine", "Host", "HostCluster", "HAPolicy", "Fault", "RecoveryPlan"];

/** A JSON value as a Lua 5.1 table literal (lua5.1 has no JSON decoder). */
export function luaLiteral(value: unknown): string {
  if (value === null || value === undefined) return "nil";
  // JSON's escapes are Lua's, but for \uXXXX (control characters only: JSON.stringify leaves the rest as is).
  if (typeof value === "string") return JSON.stringify(value).replace(/\\(u[0-9a-fA-F]{4}|.)/g, (escape: string, e: string) => e.startsWith("u") ? `\\${Number.parseInt(e.slice(1), 16)}` : escape);
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return `{${value.map(luaLiteral).join(", ")}}`;
  const fields = Object.entries(value as Record<string, unknown>).map(([k, v]) => `[${luaLiteral(k)}] = ${luaLiteral(v)}`);
  return `{${fields.join(", ")}}`;
}

/** Runs the health script as Argo CD does: `obj` global, the script's return value is the health. */
function health(object: unknown, script = readFileSync(SCRIPT, "utf8")): { status: string; message: string } {
  const harness = `obj = ${luaLiteral(object)}
local check = assert(loadstring(${luaLiteral(script)}, "health.lua"))
local hs = check()
io.write(tostring(hs.status), "\\n", tostring(hs.message))
`;
  const r = spawnSync(commandPath("lua5.1")!, ["-"], { input: harness, encoding: "utf8" });
  assert.equal(r.status, 0, `lua5.1 failed:\n${r.stderr}`);
  const [status, ...message] = r.stdout.split("\n");
  return { status: status!, message: message.join("\n") };
}

let samples: Map<string, Sample>;
before(async () => {
  await ensureDebianPackages({ "lua5.1": "lua5.1" });
  samples = new Map([...await sampleObjects(), ...await recoveryPlanSamples()]);
});

function sample(name: string): unknown {
  const s = samples.get(name);
  assert.ok(s, `no sample ${name}`);
  return s.object;
}

test("a Running VM is Healthy", () => {
  assert.deepEqual(health(sample("running-vm")), { status: "Healthy", message: `Running: running on ${(sample("running-vm") as { status: { host: string } }).status.host}` });
});

test("a Halted VM that is stopped is Healthy, not Degraded or Suspended", () => {
  assert.deepEqual(health(sample("halted-vm")), { status: "Healthy", message: "Halted: stopped, as runStrategy Halted asks" });
});

test("a Pending VM no host can take is Degraded, with the reason", () => {
  const h = health(sample("unschedulable-vm"));
  assert.equal(h.status, "Degraded");
  assert.match(h.message, /^Unschedulable: /);
});

test("a VM that VM monitoring marked Failed is Degraded", () => {
  const h = health(sample("failed-vm"));
  assert.equal(h.status, "Degraded");
  assert.match(h.message, /^ResetLimitReached: /);
});

test("a VM still booting is Progressing", () => {
  assert.deepEqual(health(sample("starting-vm")), { status: "Progressing", message: `Starting: booting on ${(sample("starting-vm") as { status: { host: string } }).status.host}` });
});

test("a VM whose latest generation Vireo has not observed yet is Progressing, even though Ready=True", () => {
  assert.deepEqual(health(sample("generation-behind-vm")), { status: "Progressing", message: "Waiting for Vireo to observe generation 2" });
});

test("a Host in maintenance is Suspended; one entering maintenance is Progressing; a ready one Healthy", () => {
  assert.equal(health(sample("maintenance-host")).status, "Suspended");
  assert.equal(health(sample("draining-host")).status, "Progressing");
  assert.equal(health(sample("ready-host")).status, "Healthy");
});

test("a HostCluster and an HAPolicy that are Ready are Healthy", () => {
  assert.equal(health(sample("cluster")).status, "Healthy");
  assert.equal(health(sample("policy")).status, "Healthy");
});

test("a RecoveryPlan that Succeeded is Healthy; one Failed or waiting for a person is Degraded, with the reason; one under way is Progressing", () => {
  assert.equal(health(sample("succeeded-plan")).status, "Healthy");
  assert.match(health(sample("succeeded-plan")).message, /^Succeeded: 1 test copies run on network dr-test/);
  assert.deepEqual(health(sample("failed-plan")), { status: "Degraded", message: "NoVMsSelected: the selector selects no VirtualMachine in namespace default" });
  const waiting = health(sample("waiting-plan"));
  assert.equal(waiting.status, "Degraded");
  assert.match(waiting.message, /^WaitingForUser: default\/db-0: .*may still run/);
  assert.equal(health(sample("running-plan")).status, "Progressing");
});

test("an object Vireo has not written status for yet is Progressing", () => {
  assert.deepEqual(health({ apiVersion: "vireo.dev/v1alpha1", kind: "Fault", metadata: { name: "f", generation: 1 }, spec: {} }), { status: "Progressing", message: "Waiting for Vireo to report status" });
});

test("the argocd-cm patch and the argo-cd chart values carry the script for every Vireo kind", () => {
  const script = readFileSync(SCRIPT, "utf8");
  const patch = load(readFileSync(join(REPO, "docs", "argocd", "argocd-cm.yaml"), "utf8")) as { kind: string; metadata: { name: string }; data: Record<string, string> };
  assert.equal(patch.kind, "ConfigMap");
  assert.equal(patch.metadata.name, "argocd-cm");
  const values = load(readFileSync(join(REPO, "docs", "argocd", "argo-cd-values.yaml"), "utf8")) as { configs: { cm: Record<string, string> } };
  for (const kind of KINDS) {
    const key = `resource.customizations.health.vireo.dev_${kind}`;
    assert.equal(patch.data[key], script, `argocd-cm.yaml ${key}`);
    assert.equal(values.configs.cm[key], script, `argo-cd-values.yaml ${key}`);
  }
});
