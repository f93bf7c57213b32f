// The `vireo` process in file mode, end to end: manifests in a temp dir, status read back from the state
// directory and `vireo get`, bad files reported without disturbing the rest, kill and restart.

import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync, unlinkSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { VirtualMachine } from "../../controller/api/types.ts";
import type { StateSnapshot } from "../../controller/state/state-dir.ts";
import { VireoProcess, WAIT_MS, tempDir, vireoCommand, vireoSync, waitForState } from "../support/process.ts";
import { clusterYaml, hostYaml, vmYaml } from "../support/scenario.ts";

const TIME_SCALE = "50";

function vms(s: StateSnapshot): VirtualMachine[] {
  return s.objects.map((o) => o.object).filter((o): o is VirtualMachine => o.kind === "VirtualMachine");
}

function allRunning(names: string[]) {
  return (s: StateSnapshot) => names.every((n) => vms(s).find((vm) => vm.metadata.name === n)?.status?.phase === "Running");
}

function start(manifests: string, state: string): VireoProcess {
  return new VireoProcess(["run", "--manifests", manifests, "--state-dir", state, "--metrics-addr", "127.0.0.1:0", "--time-scale", TIME_SCALE]);
}

async function metricsAddress(vireo: VireoProcess): Promise<string> {
  return (await vireo.waitForLog(/metrics on http:\/\/([^/\s"]+)\/metrics/))[1]!;
}

/** Scrapes /metrics until it matches `pattern` (a gauge can be set a moment after the state file shows why). */
async function waitForMetric(address: string, pattern: RegExp): Promise<string> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const text = await (await fetch(`http://${address}/metrics`)).text();
    if (pattern.test(text)) return text;
    if (Date.now() > deadline) assert.fail(`/metrics did not match ${pattern} within ${WAIT_MS} ms:\n${text}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test("file mode: VMs come up, bad files are reported and ignored, and a killed process restarts without restarting a VM", async (t) => {
  const dir = tempDir("e2e");
  const manifests = join(dir.path, "manifests");
  const state = join(dir.path, "state");
  mkdirSync(join(manifests, "vms"), { recursive: true });
  writeFileSync(join(manifests, "fleet.yaml"), clusterYaml() + hostYaml("h1") + hostYaml("h2"));
  writeFileSync(join(manifests, "vms", "web.yml"), vmYaml("web-1") + vmYaml("web-2") + vmYaml("web-3"));

  let vireo = start(manifests, state);
  // Stop the process before removing its directories: after-hooks run in the order they were added.
  t.after(async () => { await vireo.stop("SIGKILL"); dir.remove(); });
  const address = await metricsAddress(vireo);
  await vireo.waitForLog(/2 hosts in 1 clusters, 3 VMs/);
  const up = await waitForState(state, allRunning(["web-1", "web-2", "web-3"]), WAIT_MS, () => vireo.logs());
  const placedOn = new Map(vms(up).map((vm) => [vm.metadata.name, { host: vm.status!.host, startedAt: vm.status!.startedAt }]));

  const ready = await fetch(`http://${address}/readyz`);
  assert.equal(ready.status, 200);
  const table = await vireoCommand(["get", "vms", "--state-dir", state]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^NAMESPACE\s+NAME\s+PHASE\s+HOST/m);
  assert.match(table.stdout, /^default\s+web-1\s+Running\s+h[12]\s/m);

  // Four kinds of bad file: none of them disturbs what runs.
  writeFileSync(join(manifests, "syntax.yaml"), "kind: VirtualMachine\nmetadata: {name: [oops\n");
  writeFileSync(join(manifests, "unknown-field.yaml"), vmYaml("odd").replace("cpu: 2", "cpu: 2\n  turbo: true"));
  writeFileSync(join(manifests, "negative.yaml"), vmYaml("neg", { memoryMiB: -1 }));
  writeFileSync(join(manifests, "wrong-kind.yaml"), "apiVersion: vireo.dev/v1alpha1\nkind: VirtualMachin\nmetadata: {name: x}\nspec: {}\n");
  // …and a good edit still applies meanwhile.
  writeFileSync(join(manifests, "vms", "db.yaml"), vmYaml("db-1", { memoryMiB: 8192 }));
  const withErrors = await waitForState(state, (s) => s.manifestErrors.length >= 4 && allRunning(["db-1"])(s), WAIT_MS, () => vireo.logs());
  const byFile = new Map(withErrors.manifestErrors.map((e) => [e.file, e]));
  assert.match(byFile.get("syntax.yaml")!.message, /YAML syntax error/);
  assert.equal(byFile.get("unknown-field.yaml")!.path, "spec.turbo");
  assert.equal(byFile.get("negative.yaml")!.path, "spec.memoryMiB");
  assert.equal(byFile.get("negative.yaml")!.document, 0);
  assert.equal(byFile.get("wrong-kind.yaml")!.path, "kind");
  assert.equal(vms(withErrors).some((vm) => ["odd", "neg"].includes(vm.metadata.name)), false);
  await waitForMetric(address, /^vireo_manifest_errors 4$/m);
  const errors = await vireoCommand(["get", "errors", "--state-dir", state]);
  assert.match(errors.stderr, /negative\.yaml \(document 0\): spec\.memoryMiB: /);

  // Breaking a file that was good keeps its last good objects in force.
  writeFileSync(join(manifests, "vms", "web.yml"), vmYaml("web-1", { memoryMiB: 0 }));
  await waitForState(state, (s) => s.manifestErrors.some((e) => e.file === "vms/web.yml"), WAIT_MS, () => vireo.logs());
  const kept = await waitForState(state, allRunning(["web-1", "web-2", "web-3"]));
  assert.equal(vms(kept).find((vm) => vm.metadata.name === "web-1")!.spec.memoryMiB, 4096);
  for (const f of ["syntax.yaml", "unknown-field.yaml", "negative.yaml", "wrong-kind.yaml"]) unlinkSync(join(manifests, f));
  writeFileSync(join(manifests, "vms", "web.yml"), vmYaml("web-1") + vmYaml("web-2") + vmYaml("web-3"));
  await waitForState(state, (s) => s.manifestErrors.length === 0);

  // Kill it hard, start it again: every VM is still Running on the same host, never restarted.
  assert.equal(await vireo.stop("SIGKILL"), null);
  vireo = start(manifests, state);
  await metricsAddress(vireo);
  await vireo.waitForLog(/settled/);
  const after = await waitForState(state, allRunning(["web-1", "web-2", "web-3", "db-1"]));
  for (const [name, before] of placedOn) {
    const vm = vms(after).find((v) => v.metadata.name === name)!;
    assert.equal(vm.status?.host, before.host, `${name} moved`);
    assert.equal(vm.status?.startedAt, before.startedAt, `${name} was restarted`);
    assert.equal(vm.status?.restarts, undefined);
  }

  // Removing a manifest prunes its VMs; SIGTERM stops cleanly.
  unlinkSync(join(manifests, "vms", "db.yaml"));
  await waitForState(state, (s) => !vms(s).some((vm) => vm.metadata.name === "db-1"));
  assert.equal(await vireo.stop("SIGTERM"), 0);
  assert.match(vireo.logs(), /stopped; state saved/);
});

test("the state directory may not be inside the watched manifests", () => {
  const dir = tempDir("inside");
  try {
    const result = vireoSync(["run", "--manifests", dir.path, "--state-dir", join(dir.path, ".vireo")]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /inside the manifests directory/);
  } finally {
    dir.remove();
  }
});
