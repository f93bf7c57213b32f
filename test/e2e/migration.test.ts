// `vireo migrate` against a file-mode `vireo run`, with real processes: the request is dropped into the
// state directory's requests/, which the run watches; the VM moves live and the command follows it to the
// end. A request file of another kind is a manifest error. `vireo plan` shows a migration asked for while
// the run is stopped, with its target and estimate, and the next run carries it out.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { VirtualMachine, VirtualMachineMigration } from "../../controller/api/types.ts";
import type { PlanReport } from "../../controller/engine/dry-run.ts";
import type { StateSnapshot } from "../../controller/state/state-dir.ts";
import { VireoProcess, WAIT_MS, tempDir, vireoCommand, waitForState } from "../support/process.ts";
import { clusterYaml, hostYaml, vmYaml } from "../support/scenario.ts";

function start(manifests: string, state: string): VireoProcess {
  return new VireoProcess(["run", "--manifests", manifests, "--state-dir", state, "--metrics-addr", "127.0.0.1:0", "--time-scale", "50"]);
}

function vm(s: StateSnapshot, name: string): VirtualMachine | undefined {
  return s.objects.map((o) => o.object).find((o): o is VirtualMachine => o.kind === "VirtualMachine" && o.metadata.name === name);
}

function migrations(s: StateSnapshot): VirtualMachineMigration[] {
  return s.objects.map((o) => o.object).filter((o): o is VirtualMachineMigration => o.kind === "VirtualMachineMigration");
}

/** The name `vireo migrate` gave its request, from the line it prints first. */
function requestName(stdout: string): string {
  const name = /virtualmachinemigration\.vireo\.dev\/(\S+) created/.exec(stdout)?.[1];
  assert.ok(name, `vireo migrate did not say what it created:\n${stdout}`);
  return name;
}

test("file mode: vireo migrate moves a running VM live and exits 0; a request of another kind is a manifest error; vireo plan shows a pending migration", async (t) => {
  const dir = tempDir("e2e-migrate");
  const manifests = join(dir.path, "manifests");
  const state = join(dir.path, "state");
  mkdirSync(manifests);
  writeFileSync(join(manifests, "fleet.yaml"), clusterYaml() + hostYaml("h1") + hostYaml("h2") + vmYaml("web-1") + vmYaml("web-2"));
  let vireo = start(manifests, state);
  t.after(async () => { await vireo.stop("SIGKILL"); dir.remove(); });
  const up = await waitForState(state, (s) => ["web-1", "web-2"].every((n) => vm(s, n)?.status?.phase === "Running"), WAIT_MS, () => vireo.logs());
  const source = vm(up, "web-1")!.status!.host!;
  const target = source === "h1" ? "h2" : "h1";
  const bootedAt = vm(up, "web-1")!.status!.startedAt;

  // vireo migrate follows the request to its end and says how it went.
  const moved = await vireoCommand(["migrate", "default/web-1", "--to", target, "--state-dir", state]);
  assert.equal(moved.code, 0, `${moved.stdout}${moved.stderr}`);
  const name = requestName(moved.stdout);
  assert.match(moved.stdout, new RegExp(`^Succeeded: running on ${target} after \\d+ ms of downtime$`, "m"));
  assert.deepEqual(readdirSync(join(state, "requests")), [`default.${name}.yaml`], "the request went to the state directory's requests/");
  const after = await waitForState(state, (s) => vm(s, "web-1")?.status?.host === target && vm(s, "web-1")?.status?.phase === "Running", WAIT_MS, () => vireo.logs());
  assert.equal(vm(after, "web-1")!.status!.startedAt, bootedAt, "moved live: the guest was not rebooted");
  const request = migrations(after).find((m) => m.metadata.name === name)!;
  assert.deepEqual([request.status?.phase, request.status?.sourceHost, request.status?.targetHost], ["Succeeded", source, target]);
  await vireo.waitForLog(/MigrationSucceeded/);

  const table = await vireoCommand(["get", "vmim", "--state-dir", state]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^NAMESPACE\s+NAME\s+VM\s+MODE\s+PHASE\s+SOURCE\s+TARGET\s+AGE$/m);
  assert.match(table.stdout, new RegExp(`^default\\s+${name}\\s+web-1\\s+Live\\s+Succeeded\\s+${source}\\s+${target}\\s+\\d+[smh]`, "m"), "an age, not <invalid>, on a sped-up clock");
  const wide = await vireoCommand(["get", "virtualmachinemigrations", name, "-n", "default", "-o", "wide", "--state-dir", state]);
  assert.match(wide.stdout, /^NAME\s+VM\s+MODE\s+PHASE\s+SOURCE\s+TARGET\s+AGE\s+ROUNDS\s+DOWNTIME\s+REASON$/m);

  // A request that cannot be carried out fails with the reason, and the command exits 1.
  const ghost = await vireoCommand(["migrate", "default/nobody", "--state-dir", state]);
  assert.equal(ghost.code, 1, `${ghost.stdout}${ghost.stderr}`);
  assert.match(ghost.stdout, /^Failed: VirtualMachine default\/nobody does not exist$/m);

  // Only VirtualMachineMigrations are requests: anything else dropped there is refused, and nothing of it applies.
  writeFileSync(join(state, "requests", "sneaky.yaml"), vmYaml("sneaky"));
  const refused = await waitForState(state, (s) => s.manifestErrors.some((e) => e.file === "requests:sneaky.yaml"), WAIT_MS, () => vireo.logs());
  const error = refused.manifestErrors.find((e) => e.file === "requests:sneaky.yaml")!;
  assert.equal(error.path, "kind");
  assert.match(error.message, /only VirtualMachineMigrations are requests; a VirtualMachine belongs in the manifests/);
  assert.equal(vm(refused, "sneaky"), undefined);
  const errors = await vireoCommand(["get", "errors", "--state-dir", state]);
  assert.equal(errors.code, 1);
  assert.match(errors.stderr, /requests:sneaky\.yaml \(document 0\): kind: only VirtualMachineMigrations are requests/);
  unlinkSync(join(state, "requests", "sneaky.yaml"));
  await waitForState(state, (s) => s.manifestErrors.length === 0, WAIT_MS, () => vireo.logs());

  // Asked for while no run is there: vireo plan shows it with its target and estimate, and the Migrate it would do.
  assert.equal(await vireo.stop(), 0);
  const queued = await vireoCommand(["migrate", "default/web-2", "--to", source, "--no-wait", "--state-dir", state]);
  assert.equal(queued.code, 0, queued.stderr);
  const pending = requestName(queued.stdout);
  const planned = await vireoCommand(["plan", "--manifests", manifests, "--state-dir", state]);
  assert.equal(planned.code, 0, planned.stderr);
  assert.match(planned.stdout, new RegExp(`^VirtualMachine default/web-2\\s+Migrate\\s+${source}\\s+VirtualMachineMigration default/${pending}$`, "m"));
  assert.match(planned.stdout, /^MIGRATION\s+VM\s+TARGET\s+EXPECTED$/m);
  assert.match(planned.stdout, new RegExp(`^VirtualMachineMigration default/${pending}\\s+default/web-2\\s+${source}\\s+starts now; \\d+ rounds, ~\\d+ ms downtime, ~[\\d.]+ s$`, "m"));
  assert.match(planned.stdout, /1 migration\(s\) pending/);
  const json = JSON.parse((await vireoCommand(["plan", "--manifests", manifests, "--state-dir", state, "-o", "json"])).stdout) as PlanReport;
  assert.equal(json.migrations.length, 1, "ended migrations are not listed");
  const [entry] = json.migrations;
  assert.deepEqual({ ...entry, estimate: undefined }, { namespace: "default", name: pending, vm: "web-2", phase: "Pending", verdict: "Live", target: source, estimate: undefined });
  assert.equal(entry!.estimate?.converges, true);

  // The next run carries it out.
  vireo = start(manifests, state);
  const done = await waitForState(state, (s) => migrations(s).find((m) => m.metadata.name === pending)?.status?.phase === "Succeeded", WAIT_MS, () => vireo.logs());
  assert.equal(vm(done, "web-2")?.status?.host, source);
  assert.equal(await vireo.stop(), 0);
});

test("file mode: a Manual cluster only recommends; vireo balance approve applies one recommendation live and exits 0", async (t) => {
  const dir = tempDir("e2e-balance");
  const manifests = join(dir.path, "manifests");
  const state = join(dir.path, "state");
  mkdirSync(manifests);
  // Six busy VMs packed on h1 of two hosts, balancing Manual with the most eager threshold.
  const packed = (n: string) => vmYaml(n, { memoryMiB: 8192, extra: "  workload: {profile: Steady, cpuPercent: 80}\n" })
    .replace("placement: {cluster: prod}", "placement: {cluster: prod, hostAffinity: {preferred: [{weight: 100, preference: {matchLabels: {vireo.dev/host: h1}}}]}}");
  const cluster = clusterYaml("prod", "Pack").replace("placement: {strategy: Pack}", "placement: {strategy: Pack}\n  balancing: {mode: Manual, threshold: 5, intervalSeconds: 60}");
  writeFileSync(join(manifests, "fleet.yaml"), cluster + hostYaml("h1") + hostYaml("h2") + ["a", "b", "c", "d", "e", "f"].map(packed).join(""));
  const vireo = start(manifests, state);
  t.after(async () => { await vireo.stop("SIGKILL"); dir.remove(); });
  const clusterOf = (s: StateSnapshot) => s.objects.map((o) => o.object).find((o) => o.kind === "HostCluster") as import("../../controller/api/types.ts").HostCluster | undefined;
  const recommended = await waitForState(state, (s) => (clusterOf(s)?.status?.balancing?.recommendations?.length ?? 0) > 0, WAIT_MS, () => vireo.logs());
  const hosts = new Map(["a", "b", "c", "d", "e", "f"].map((n) => [n, vm(recommended, n)?.status?.host]));
  assert.ok([...hosts.values()].every((h) => h === "h1"), `Manual mode moved nothing by itself: ${JSON.stringify([...hosts])}`);
  const [first] = clusterOf(recommended)!.status!.balancing!.recommendations!;

  const approved = await vireoCommand(["balance", "approve", "prod", first!.id, "--state-dir", state]);
  assert.equal(approved.code, 0, `${approved.stdout}${approved.stderr}`);
  assert.match(approved.stdout, new RegExp(`^approved ${first!.id}: ${first!.vm} from h1 to h2`, "m"));
  assert.match(approved.stdout, /^Succeeded: running on h2/m);
  const name = first!.vm.split("/")[1]!;
  const after = await waitForState(state, (s) => vm(s, name)?.status?.host === "h2", WAIT_MS, () => vireo.logs());
  assert.equal(vm(after, name)!.status!.startedAt, vm(recommended, name)!.status!.startedAt, "moved live");
  const request = migrations(after).find((m) => m.metadata.labels?.["vireo.dev/recommendation"] === first!.id);
  assert.equal(request?.status?.phase, "Succeeded");
  const unknown = await vireoCommand(["balance", "approve", "prod", "000000000000", "--state-dir", state]);
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr + unknown.stdout, /recommends no move 000000000000/);
});
