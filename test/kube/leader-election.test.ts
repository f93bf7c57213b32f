// Two controller processes with leader election against the real API server, and one `vireo hostsim` that
// both would drive: only the leader works; SIGKILL it and the standby takes the Lease over once it
// expires, with every VM still running where it ran, started once; a killed and restarted hostsim loses
// nothing either. Takeover time is checked on the Lease's own timestamps, never by timing the test.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import type { VirtualMachine } from "../../controller/api/types.ts";
import type { ObservationBody } from "../../controller/provider/http/wire.ts";
import { DEFAULT_LEASE_DURATION_MS, DEFAULT_RETRY_PERIOD_MS } from "../../controller/engine/leader.ts";
import { ControlPlane, eventually, kubectlOk } from "../support/cluster.ts";
import { REPO, VireoProcess, WAIT_MS, tempDir } from "../support/process.ts";
import { TOKEN, startHostsim, writeToken } from "../provider/http/hostsim-support.ts";
import type { RunningHostsim } from "../provider/http/hostsim-support.ts";

const EXAMPLES = join(REPO, "manifests", "examples");
const LEASE = "vireo-controller";
/** client-go's jitter on acquire attempts: a standby retries every 2 s to 2.4 s. */
const MAX_RETRY_MS = DEFAULT_RETRY_PERIOD_MS * 1.2;
/**
 * Beyond the retry periods, what a takeover may take on a busy machine: API round trips of a loaded API
 * server (the timestamps are taken before them), timers that fire late, and a renewal the leader sent just
 * before it died that lands after the test read the Lease (one more retry period). A standby that waited a
 * second lease duration (15 s) would still miss the bound.
 */
const TAKEOVER_SLACK_MS = MAX_RETRY_MS + 3_000;
/** How long kubectl wait may take: generous, for a busy machine (a wait that succeeds returns at once). */
const WAIT = `--timeout=${WAIT_MS / 1000}s`;

interface Candidate {
  name: string;
  process: VireoProcess;
  identity: string;
  metrics: string;
}

interface Lease {
  spec: { holderIdentity?: string; acquireTime?: string; renewTime?: string; leaseDurationSeconds?: number; leaseTransitions?: number };
}

const dir = tempDir("leader");
const world = join(dir.path, "hostsim", "world.json");
let tokenFile: string;
let hostsim: RunningHostsim;
let cp: ControlPlane;
const candidates: Candidate[] = [];
let leader: Candidate;
let standby: Candidate;

function newVm(name: string): string {
  return `apiVersion: vireo.dev/v1alpha1
kind: VirtualMachine
metadata: {name: ${name}, namespace: shop, labels: {app: ${name}}}
spec:
  cpu: 2
  memoryMiB: 4096
  disks: [{name: root, sizeGiB: 20, datastore: shared-ds1}]
  networks: [{name: prod}]
  placement: {cluster: prod}
`;
}

async function startCandidate(name: string): Promise<Candidate> {
  const process = new VireoProcess([
    "run", "--kubeconfig", cp.kubeconfigPath, "--leader-elect", "--leader-election-namespace", "default",
    "--provider", hostsim.url, "--provider-token-file", tokenFile,
    "--metrics-addr", "127.0.0.1:0", "--state-dir", join(dir.path, name),
  ]);
  const candidate = { name, process, identity: "", metrics: "" };
  candidates.push(candidate);
  candidate.metrics = (await process.waitForLog(/metrics on http:\/\/([^/\s"]+)\/metrics/))[1]!;
  candidate.identity = (await process.waitForLog(/standing by for the leader lease as ([^\s"]+)/))[1]!;
  return candidate;
}

function logsLeading(c: Candidate): boolean {
  return /became leader/.test(c.process.logs());
}

async function leaderGauge(c: Candidate): Promise<string | undefined> {
  const text = await (await fetch(`http://${c.metrics}/metrics`)).text();
  return text.match(/^vireo_leader\{lease="vireo-controller"\} (\d+)$/m)?.[1];
}

async function lease(): Promise<Lease> {
  return JSON.parse(await kubectlOk(cp, ["get", "lease", LEASE, "-n", "default", "-o", "json"])) as Lease;
}

async function vmsByKey(): Promise<Map<string, VirtualMachine>> {
  const list = JSON.parse(await kubectlOk(cp, ["get", "vm", "--all-namespaces", "-o", "json"])) as { items: VirtualMachine[] };
  return new Map(list.items.map((vm) => [`${vm.metadata.namespace}/${vm.metadata.name}`, vm]));
}

async function observation(): Promise<ObservationBody> {
  const response = await fetch(`${hostsim.url}/v1/observation`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(response.status, 200);
  return await response.json() as ObservationBody;
}

/** What runs, as the status says and as the hosts say: VM -> host and when its run began. */
interface Running {
  status: Map<string, { host: string | undefined; startedAt: string | undefined }>;
  hosts: Map<string, { host: string; poweredOnAt: number | undefined }>;
}

async function running(): Promise<Running> {
  const status = new Map([...(await vmsByKey())].filter(([, vm]) => vm.status?.phase === "Running").map(([key, vm]) => [key, { host: vm.status!.host, startedAt: vm.status!.startedAt }]));
  const hosts = new Map((await observation()).vms.filter((vm) => vm.power === "Running").map((vm) => [vm.id, { host: vm.host, poweredOnAt: vm.poweredOnAt }]));
  return { status, hosts };
}

/** Every VM that ran still runs on the same host, from the same start: none lost, none started twice. */
async function assertNothingMoved(was: Running, what: string): Promise<void> {
  const now = await running();
  for (const [key, before] of was.status) {
    const after = now.status.get(key);
    assert.ok(after, `${what}: ${key} is no longer Running`);
    assert.equal(after.host, before.host, `${what}: ${key} moved`);
    assert.equal(after.startedAt, before.startedAt, `${what}: ${key} was restarted (status.startedAt)`);
  }
  for (const [id, before] of was.hosts) {
    const after = now.hosts.get(id);
    assert.ok(after, `${what}: the hosts no longer run ${id}`);
    assert.equal(after.host, before.host, `${what}: ${id} runs on another host`);
    assert.equal(after.poweredOnAt, before.poweredOnAt, `${what}: ${id} was powered on again`);
  }
  const observed = await observation();
  assert.equal(observed.splitBrainAttempts, 0, `${what}: a second copy of a VM was attempted`);
  const ids = observed.vms.map((vm) => vm.id);
  assert.equal(new Set(ids).size, ids.length, `${what}: a VM is registered twice`);
}

before(async () => {
  tokenFile = writeToken(dir.path);
  hostsim = await startHostsim({ state: world, tokenFile });
  cp = await ControlPlane.start();
  await kubectlOk(cp, ["apply", "-f", EXAMPLES]);
  await Promise.all([startCandidate("a"), startCandidate("b")]);
  await eventually(() => candidates.some(logsLeading), WAIT_MS, () => candidates.map((c) => c.process.logs()).join("\n----\n"));
  leader = candidates.find(logsLeading)!;
  standby = candidates.find((c) => c !== leader)!;
  await leader.process.waitForLog(/synced: 11 hosts in 3 clusters, 20 VMs/);
  await kubectlOk(cp, ["wait", "--for=condition=Ready", "vm", "--all", "--all-namespaces", WAIT]);
});

after(async () => {
  for (const c of candidates) await c.process.stop("SIGKILL");
  await hostsim?.process.stop("SIGKILL");
  await cp?.stop();
  dir.remove();
});

test("one leader works and holds the Lease; the standby is live and ready but idle", async () => {
  assert.equal(await leaderGauge(leader), "1");
  assert.equal(await leaderGauge(standby), "0");
  assert.equal(logsLeading(standby), false);
  assert.doesNotMatch(standby.process.logs(), /synced:/, "the standby does not reconcile");
  assert.equal((await lease()).spec.holderIdentity, leader.identity);
  assert.equal((await fetch(`http://${standby.metrics}/healthz`)).status, 200);
  assert.equal((await fetch(`http://${standby.metrics}/readyz`)).status, 200, "a standby is ready: it serves by standing by");
  assert.equal((await fetch(`http://${leader.metrics}/readyz`)).status, 200);
});

test("SIGKILL of the leader: the standby takes the Lease over once it expires, and no VM is lost or started twice", async (t) => {
  const was = await running();
  assert.ok(was.status.size >= 15, `the fleet runs: ${[...was.status.keys()].join(", ")}`);
  assert.deepEqual(new Set(was.hosts.keys()), new Set(was.status.keys()), "the status and the hosts agree on what runs");

  assert.equal(await leader.process.stop("SIGKILL"), null);
  // The dead leader renews no more: this is its last renewal.
  const held = await lease();
  assert.equal(held.spec.holderIdentity, leader.identity, "nobody took the Lease at once");
  const lastRenew = Date.parse(held.spec.renewTime!);
  const durationMs = held.spec.leaseDurationSeconds! * 1000;
  assert.equal(durationMs, DEFAULT_LEASE_DURATION_MS);

  await standby.process.waitForLog(/became leader/);
  await eventually(async () => (await leaderGauge(standby)) === "1", WAIT_MS, () => standby.process.logs());
  const taken = await lease();
  assert.equal(taken.spec.holderIdentity, standby.identity);
  assert.equal(taken.spec.leaseTransitions, (held.spec.leaseTransitions ?? 0) + 1);
  const acquired = Date.parse(taken.spec.acquireTime!);
  // Never before the old lease expired: the standby counts the lease from when it saw the last renewal.
  assert.ok(acquired >= lastRenew + durationMs, `acquired ${taken.spec.acquireTime}, before ${held.spec.renewTime} + ${durationMs} ms`);
  // Within the lease duration: the standby saw the last renewal at its next poll (≤ one jittered retry
  // period after it), and takes the lease at its first poll after the expiry (≤ one more), plus the slack
  // of a busy machine.
  const bound = lastRenew + durationMs + 2 * MAX_RETRY_MS + TAKEOVER_SLACK_MS;
  t.diagnostic(`lease taken over ${acquired - lastRenew} ms after the dead leader's last renewal (lease ${durationMs} ms)`);
  assert.ok(acquired <= bound, `acquired ${taken.spec.acquireTime}, later than ${held.spec.renewTime} + ${durationMs} ms + ${2 * MAX_RETRY_MS + TAKEOVER_SLACK_MS} ms`);

  await standby.process.waitForLog(/synced: 11 hosts in 3 clusters, 20 VMs/);
  // The new leader works: a VM applied now is placed, started and Ready.
  await kubectlOk(cp, ["apply", "-f", "-"], newVm("after-takeover"));
  await kubectlOk(cp, ["wait", "--for=condition=Ready", "vm", "after-takeover", "-n", "shop", WAIT]);
  const placed = (await vmsByKey()).get("shop/after-takeover")!;
  assert.equal(placed.status?.phase, "Running");
  assert.equal((await observation()).vms.find((vm) => vm.id === "shop/after-takeover")?.host, placed.status?.host);
  await assertNothingMoved(was, "after the takeover");
  assert.equal((await fetch(`http://${standby.metrics}/readyz`)).status, 200);
});

test("SIGKILL of the hostsim and a restart on the same port from its state file: nothing lost, and changes converge again", async () => {
  await kubectlOk(cp, ["wait", "--for=condition=Ready", "vm", "--all", "--all-namespaces", WAIT]);
  const was = await running();
  assert.ok(was.hosts.has("shop/after-takeover"));

  const outages = (standby.process.logs().match(/observing the hosts failed/g) ?? []).length;
  const recoveries = (standby.process.logs().match(/observing the hosts again/g) ?? []).length;
  await hostsim.process.stop("SIGKILL");
  // The leader notices that the hosts are out of reach before they come back.
  await eventually(() => (standby.process.logs().match(/observing the hosts failed/g) ?? []).length > outages, WAIT_MS, () => standby.process.logs().slice(-4000));
  const address = new URL(hostsim.url).host;
  hostsim = await startHostsim({ state: world, tokenFile, listen: address });
  assert.equal(hostsim.url, `http://${address}`);
  await eventually(() => (standby.process.logs().match(/observing the hosts again/g) ?? []).length > recoveries, WAIT_MS, () => standby.process.logs().slice(-4000));

  // The controller reconnects: a VM applied after the restart is placed and started through it.
  await kubectlOk(cp, ["apply", "-f", "-"], newVm("after-hostsim-restart"));
  await kubectlOk(cp, ["wait", "--for=condition=Ready", "vm", "after-hostsim-restart", "-n", "shop", WAIT]);
  const placed = (await vmsByKey()).get("shop/after-hostsim-restart")!;
  assert.equal((await observation()).vms.find((vm) => vm.id === "shop/after-hostsim-restart")?.power, "Running");
  assert.ok(placed.status?.host);
  await kubectlOk(cp, ["wait", "--for=jsonpath={.status.phase}=Ready", "host", "--all", WAIT]);
  await kubectlOk(cp, ["wait", "--for=condition=Ready", "vm", "--all", "--all-namespaces", WAIT]);
  await assertNothingMoved(was, "after the hostsim restart");
  assert.equal(await leaderGauge(standby), "1", "the leader kept the Lease while the hostsim was down");
});
