// End to end: `vireo run` in file mode against a `vireo hostsim` in another process. The fleet comes up
// through HTTP; the hostsim is killed and restarted under the controller, which reconnects and finds
// every VM still running where it was — nothing lost, nothing restarted.

import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import type { VirtualMachine } from "../../../controller/api/types.ts";
import type { StateSnapshot } from "../../../controller/state/state-dir.ts";
import { VireoProcess, tempDir, waitForState } from "../../support/process.ts";
import { clusterYaml, hostYaml, vmYaml } from "../../support/scenario.ts";
import { TIME_SCALE, eventually, startHostsim, writeToken } from "./hostsim-support.ts";

const NAMES = ["web-1", "web-2", "web-3"];

function vms(s: StateSnapshot): VirtualMachine[] {
  return s.objects.map((o) => o.object).filter((o): o is VirtualMachine => o.kind === "VirtualMachine");
}

function allRunning(s: StateSnapshot): boolean {
  return NAMES.every((n) => vms(s).find((vm) => vm.metadata.name === n)?.status?.phase === "Running");
}

test("file mode with a remote hostsim brings the fleet up, and a killed hostsim comes back with nothing lost or restarted", async (t) => {
  const dir = tempDir("remote");
  const manifests = join(dir.path, "manifests");
  const stateDir = join(dir.path, "state");
  const world = join(dir.path, "hostsim", "world.json");
  mkdirSync(manifests, { recursive: true });
  writeFileSync(join(manifests, "fleet.yaml"), clusterYaml() + hostYaml("h1") + hostYaml("h2") + NAMES.map((n) => vmYaml(n)).join(""));
  const tokenFile = writeToken(dir.path);

  let hostsim = await startHostsim({ state: world, tokenFile });
  t.after(() => hostsim.process.stop("SIGKILL"));
  const vireo = new VireoProcess([
    "run", "--manifests", manifests, "--state-dir", stateDir, "--metrics-addr", "127.0.0.1:0",
    "--time-scale", TIME_SCALE, "--provider", hostsim.url, "--provider-token-file", tokenFile,
  ]);
  t.after(() => vireo.stop("SIGKILL"));
  t.after(() => dir.remove()); // last: after-hooks run in the order they were added
  await vireo.waitForLog(/their time runs 50x/);
  const up = await waitForState(stateDir, allRunning, 30_000, () => vireo.logs());
  const placed = new Map(vms(up).map((vm) => [vm.metadata.name, { host: vm.status!.host, startedAt: vm.status!.startedAt }]));
  const before = new Map((await hostsim.client.observe()).vms.map((vm) => [vm.id, vm]));
  assert.equal(before.size, 3);
  for (const [name, where] of placed) assert.equal(before.get(`default/${name}`)?.host, where.host, name);

  // The hostsim dies without warning and comes back on the same address, from its state file.
  await hostsim.process.stop("SIGKILL");
  const address = new URL(hostsim.url).host;
  hostsim = await startHostsim({ state: world, tokenFile, listen: address });
  const restartedAt = (await hostsim.client.clock()).now;

  // The controller reconnects: it observes the restarted hostsim, whose hosts it reports Ready again.
  await eventually(async () => {
    const snapshot = await waitForState(stateDir, () => true);
    const hosts = snapshot.objects.map((o) => o.object).filter((o) => o.kind === "Host");
    const fresh = hosts.every((h) => {
      const status = h.status as { phase?: string; lastHeartbeatTime?: string } | undefined;
      return status?.phase === "Ready" && Date.parse(status.lastHeartbeatTime ?? "") >= restartedAt;
    });
    return fresh ? true : undefined;
  }, 30_000, "the controller reporting the restarted hostsim's hosts Ready");

  const after = await waitForState(stateDir, allRunning, 30_000, () => vireo.logs());
  for (const vm of vms(after)) {
    const was = placed.get(vm.metadata.name);
    assert.equal(vm.status?.host, was?.host, `${vm.metadata.name} stayed on its host`);
    assert.equal(vm.status?.startedAt, was?.startedAt, `${vm.metadata.name} was not restarted`);
  }
  const observed = await hostsim.client.observe();
  assert.equal(observed.splitBrainAttempts, 0);
  for (const vm of observed.vms) {
    assert.equal(vm.power, "Running", vm.id);
    assert.equal(vm.poweredOnAt, before.get(vm.id)?.poweredOnAt, `${vm.id} was powered on once`);
  }
  assert.equal(await vireo.stop("SIGTERM"), 0, vireo.logs());
});
