// The cluster case: 1,000 VMs created through a real kube-apiserver onto 100 hosts, with `vireo run`
// in API mode as its own process. Prints the time until every VM reports Ready, the controller's API
// writes per VM and its peak memory, beside the aims and KubeVirt's density-test allowance.

import { readFileSync } from "node:fs";
import { ensureControlPlaneBinaries } from "../test/envtest/setup.ts";
import { ControlPlane } from "../test/envtest/controlplane.ts";
import { VireoProcess, tempDir } from "../test/support/process.ts";

const HOSTS = 100;
const VMS = 1_000;
/** Simulated boot takes 20 s; at 20x it takes one real second, as a fast-booting VM would. */
const TIME_SCALE = 20;

export async function benchCluster(): Promise<void> {
  await ensureControlPlaneBinaries();
  const cp = await ControlPlane.start();
  const state = tempDir("bench-cluster");
  let vireo: VireoProcess | undefined;
  try {
    await kubectl(cp, ["apply", "-f", "-"], "apiVersion: v1\nkind: Namespace\nmetadata: {name: bench}\n");
    await kubectl(cp, ["create", "-f", "-"], fleet());
    vireo = new VireoProcess(["run", "--kubeconfig", cp.kubeconfigPath, "--state-dir", state.path, "--metrics-addr", "127.0.0.1:0", "--time-scale", String(TIME_SCALE)],
      process.env["VIREO_BENCH_HEAPSNAPSHOT"] ? { cwd: process.env["VIREO_BENCH_HEAPSNAPSHOT"], env: { NODE_OPTIONS: "--heapsnapshot-signal=SIGUSR2" } } : {});
    const metricsAt = (await vireo.waitForLog(/metrics on http:\/\/([^/\s"]+)\/metrics/))[1]!;
    await vireo.waitForLog(/synced: 100 hosts/, 60_000);
    await waitFor(async () => (await readyHosts(cp)) === HOSTS, 60_000);
    const writesBefore = await writes(metricsAt);

    // Four kubectl processes create the VMs in parallel, as a GitOps tool applying a repository would.
    const started = performance.now();
    await Promise.all(vms(4).map((part) => kubectl(cp, ["create", "-f", "-"], part)));
    const created = performance.now();
    await waitFor(async () => (await readyVms(cp)) === VMS, 300_000);
    const ready = performance.now();

    const after = await writes(metricsAt);
    const peakMiB = peakResidentMiB(vireo.child.pid!);
    if (process.env["VIREO_BENCH_HEAPSNAPSHOT"]) {
      // For finding what holds memory: the controller writes a heap snapshot into the directory named.
      vireo.child.kill("SIGUSR2");
      await new Promise((r) => setTimeout(r, 15_000));
    }
    const heap = await heapMiB(metricsAt);
    const vmWrites = (after.vm - writesBefore.vm) / VMS;
    const eventWrites = (after.events - writesBefore.events) / VMS;
    const seconds = (ready - started) / 1000;
    console.log(`\ncluster: ${VMS} VMs on ${HOSTS} hosts through kube-apiserver ${cp.server} (vireo --time-scale ${TIME_SCALE}: a 20 s simulated boot takes 1 s)`);
    console.log(table([
      ["", "Vireo", "aim", "KubeVirt density test allows"],
      ["all VMs Ready after (s)", seconds.toFixed(1), "< 20", ""],
      ["  of which creating the objects (s)", ((created - started) / 1000).toFixed(1), "", ""],
      ["API writes per VM (status, finalizer)", vmWrites.toFixed(2), "≤ 3", "12 (2 PATCH + 10 UPDATE)"],
      ["  of which refused as conflicts, per VM", ((after.conflicts - writesBefore.conflicts) / VMS).toFixed(2), "", ""],
      ["  plus Events written per VM", eventWrites.toFixed(2), "", ""],
      ["controller peak resident memory (MiB)", peakMiB.toFixed(0), "< 150", ""],
      ["  JavaScript heap in use at the end (MiB)", heap.used.toFixed(0), "", ""],
      ["  JavaScript heap reserved at the end (MiB)", heap.total.toFixed(0), "", ""],
    ]));
  } finally {
    await vireo?.stop();
    await cp.stop();
    state.remove();
  }
}

function fleet(): string {
  const docs = [`apiVersion: vireo.dev/v1alpha1\nkind: HostCluster\nmetadata: {name: bench}\nspec:\n  hostSelector: {matchLabels: {vireo.dev/cluster: bench}}\n  ha: {admissionControl: {policy: Disabled}}\n`];
  for (let i = 0; i < HOSTS; i++) {
    docs.push(`apiVersion: vireo.dev/v1alpha1\nkind: Host\nmetadata: {name: h-${i}, labels: {vireo.dev/cluster: bench, topology.vireo.dev/rack: r${i % 10}}}\nspec: {hypervisor: kvm, cpu: {cores: 64, vendor: intel, features: [avx2], overcommitRatio: 4}, memoryMiB: 524288, datastores: [shared], networks: [prod]}\n`);
  }
  return docs.join("---\n");
}

function vms(parts: number): string[] {
  const docs: string[] = [];
  for (let i = 0; i < VMS; i++) {
    const memory = [2048, 4096, 8192][i % 3];
    docs.push(`apiVersion: vireo.dev/v1alpha1\nkind: VirtualMachine\nmetadata: {name: vm-${i}, namespace: bench, labels: {app: a${i % 50}}}\nspec: {cpu: ${1 + (i % 4)}, memoryMiB: ${memory}, disks: [{name: root, sizeGiB: 20, datastore: shared}], networks: [{name: prod}], placement: {cluster: bench}}\n`);
  }
  return Array.from({ length: parts }, (_, p) => docs.filter((_, i) => i % parts === p).join("---\n"));
}

async function kubectl(cp: ControlPlane, args: string[], input: string): Promise<void> {
  const r = await cp.kubectl(args, { input, timeoutMs: 300_000 });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${r.stderr}`);
}

async function readyVms(cp: ControlPlane): Promise<number> {
  const r = await cp.kubectl(["get", "vm", "-n", "bench", "-o", "jsonpath={range .items[*]}{.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}"]);
  return r.stdout.split("\n").filter((l) => l === "True").length;
}

async function readyHosts(cp: ControlPlane): Promise<number> {
  const r = await cp.kubectl(["get", "vhost", "-o", "jsonpath={range .items[*]}{.status.phase}{\"\\n\"}{end}"]);
  return r.stdout.split("\n").filter((l) => l === "Ready").length;
}

async function writes(metricsAt: string): Promise<{ vm: number; conflicts: number; events: number }> {
  const text = await (await fetch(`http://${metricsAt}/metrics`)).text();
  let vm = 0;
  let conflicts = 0;
  let events = 0;
  for (const line of text.split("\n")) {
    const m = /^vireo_kube_requests_total\{verb="(patch|create|update|delete)",resource="([^"]+)",code="([^"]+)"\} (\d+)/.exec(line);
    if (!m) continue;
    if (m[2]!.startsWith("virtualmachines")) {
      vm += Number(m[4]);
      if (m[3] === "409") conflicts += Number(m[4]);
    } else if (m[2] === "events") events += Number(m[4]);
  }
  return { vm, conflicts, events };
}

async function heapMiB(metricsAt: string): Promise<{ used: number; total: number }> {
  const text = await (await fetch(`http://${metricsAt}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)`, "m").exec(text)?.[1] ?? Number.NaN) / 2 ** 20;
  return { used: value("vireo_nodejs_heap_size_used_bytes"), total: value("vireo_nodejs_heap_size_total_bytes") };
}

/** The high-water mark of resident memory (VmHWM) of a process, from /proc. */
function peakResidentMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

async function waitFor(check: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`not reached within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("   ")).join("\n");
}
