// Conversions in the file mode, with real processes: a VirtualMachineMigration with targetHypervisor
// committed beside the manifests converts the VM from esx to kvm; `vireo migrate --to-hypervisor` of a VM
// the pre-check refuses prints the blocker and exits 1; /metrics counts both by result.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { VirtualMachine, VirtualMachineMigration } from "../../controller/api/types.ts";
import type { StateSnapshot } from "../../controller/state/state-dir.ts";
import { VireoProcess, WAIT_MS, tempDir, vireoCommand, waitForState } from "../support/process.ts";
import { clusterYaml, hostYaml, vmYaml } from "../support/scenario.ts";

function vm(s: StateSnapshot, name: string): VirtualMachine | undefined {
  return s.objects.map((o) => o.object).find((o): o is VirtualMachine => o.kind === "VirtualMachine" && o.metadata.name === name);
}

function request(s: StateSnapshot, name: string): VirtualMachineMigration | undefined {
  return s.objects.map((o) => o.object).find((o): o is VirtualMachineMigration => o.kind === "VirtualMachineMigration" && o.metadata.name === name);
}

test("file mode: a conversion in the manifests moves a VM from esx to kvm with its MACs; vireo migrate --to-hypervisor of one the pre-check refuses exits 1 with the blocker; /metrics counts them", async (t) => {
  const dir = tempDir("e2e-convert");
  const manifests = join(dir.path, "manifests");
  const state = join(dir.path, "state");
  mkdirSync(manifests);
  const legacy = vmYaml("legacy").replace("networks: [{name: prod}]", "networks: [{name: prod, model: vmxnet3}]");
  writeFileSync(join(manifests, "fleet.yaml"), clusterYaml() + hostYaml("esx-1") + hostYaml("kvm-1", { hypervisor: "kvm" }).replace("topology.vireo.dev/rack: r1", "topology.vireo.dev/rack: r2")
    + vmYaml("web").replace("placement: {cluster: prod}", "placement: {cluster: prod, hostAffinity: {preferred: [{weight: 100, preference: {matchLabels: {vireo.dev/host: esx-1}}}]}}")
    + legacy.replace("placement: {cluster: prod}", "placement: {cluster: prod, hypervisor: esx}"));
  const vireo = new VireoProcess(["run", "--manifests", manifests, "--state-dir", state, "--metrics-addr", "127.0.0.1:0", "--time-scale", "50"]);
  t.after(async () => { await vireo.stop("SIGKILL"); dir.remove(); });
  const metrics = (await vireo.waitForLog(/metrics on http:\/\/([^/\s"]+)\/metrics/))[1]!;
  const up = await waitForState(state, (s) => ["web", "legacy"].every((n) => vm(s, n)?.status?.phase === "Running"), WAIT_MS, () => vireo.logs());
  assert.equal(vm(up, "web")!.status!.host, "esx-1");
  const macs = vm(up, "web")!.status!.networks;

  writeFileSync(join(manifests, "convert.yaml"), "apiVersion: vireo.dev/v1alpha1\nkind: VirtualMachineMigration\nmetadata: {name: web-to-kvm, namespace: default}\nspec: {vmName: web, targetHypervisor: kvm, mode: Cold}\n");
  const done = await waitForState(state, (s) => request(s, "web-to-kvm")?.status?.phase === "Succeeded" && vm(s, "web")?.status?.phase === "Running", WAIT_MS, () => vireo.logs());
  const converted = request(done, "web-to-kvm")!.status!;
  assert.deepEqual([converted.sourceHost, converted.targetHost, converted.preCheck?.from, converted.preCheck?.to], ["esx-1", "kvm-1", "esx", "kvm"]);
  assert.deepEqual([vm(done, "web")!.status!.host, vm(done, "web")!.status!.networks], ["kvm-1", macs]);
  await vireo.waitForLog(/ConversionSucceeded/);

  // legacy's spec pins esx, and its NIC is VMware's own: refused before anything is touched.
  const refused = await vireoCommand(["migrate", "default/legacy", "--to-hypervisor", "kvm", "--state-dir", state]);
  assert.equal(refused.code, 1, `${refused.stdout}${refused.stderr}`);
  assert.match(refused.stdout, /^pre-check esx → kvm: refused; 20480 MiB of disks, ~205 s to convert$/m);
  assert.match(refused.stdout, /^ {2}blocker: its spec.placement.hypervisor is esx: remove it to convert the VM, and set it to kvm once converted$/m);
  assert.match(refused.stdout, /^ {2}blocker: its NIC on network prod is vmxnet3, which kvm lacks/m);
  assert.match(refused.stdout, /^Failed: refused by its pre-check: /m);
  const after = await waitForState(state, (s) => vm(s, "legacy")?.status?.phase === "Running", WAIT_MS, () => vireo.logs());
  assert.equal(vm(after, "legacy")!.status!.host, "esx-1");

  let text = "";
  for (const deadline = Date.now() + WAIT_MS; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
    text = await (await fetch(`http://${metrics}/metrics`)).text();
    if (/^vireo_conversions_total\{result="Refused"\} 1$/m.test(text)) break;
  }
  assert.match(text, /^vireo_conversions_total\{result="Succeeded"\} 1$/m);
  assert.match(text, /^vireo_conversions_total\{result="Refused"\} 1$/m);
  assert.match(text, /^vireo_conversions_in_progress\{phase="Converting"\} 0$/m);
  assert.match(text, /^vireo_conversion_downtime_seconds_count 1$/m);
});
