// The controller's memory as a new user meets it: `vireo run --kubeconfig` against a real kube-apiserver,
// eight hosts, then 1,000 VMs applied with kubectl. Prints resident memory and the V8 heap at each step —
// idle, after the VMs are Ready, and a fresh leader starting on the same objects — beside the aim.
// VIREO_BENCH_HEAPSNAPSHOT=DIR writes a heap snapshot of the loaded controller into DIR.

import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { ensureControlPlaneBinaries } from "../test/envtest/setup.ts";
import { ControlPlane } from "../test/envtest/controlplane.ts";
import { REPO, VireoProcess, tempDir } from "../test/support/process.ts";
import { vireoImageEnv, vireoNodeOptions } from "./cluster-vireo.ts";

const HOSTS = 8;
const VMS = 1_000;
/** Simulated boot takes 20 s; at 20x it takes one real second. */
const TIME_SCALE = 20;
const AIM_MIB = 150;

interface Footprint {
  residentMiB: number;
  peakResidentMiB: number;
  heapUsedMiB: number;
  heapTotalMiB: number;
  externalMiB: number;
  /** CPU the controller has used since it started (user and system). */
  cpuSeconds: number;
}

export async function benchFootprint(): Promise<void> {
  await ensureControlPlaneBinaries();
  const cp = await ControlPlane.start();
  const state = tempDir("bench-footprint");
  const snapshotDir = process.env["VIREO_BENCH_HEAPSNAPSHOT"];
  let vireo: VireoProcess | undefined;
  try {
    await kubectl(cp, ["apply", "-f", "-"], "apiVersion: v1\nkind: Namespace\nmetadata: {name: bench}\n");
    await kubectl(cp, ["apply", "-f", "-"], fleet());
    vireo = start(cp, state.path, snapshotDir);
    let metricsAt = await synced(vireo, 0);
    await waitFor(async () => (await countWhere(cp, "vhost", ".status.phase", "Ready")) === HOSTS, 60_000);
    const idle = await footprint(vireo, metricsAt);

    await Promise.all(vms(4).map((part) => kubectl(cp, ["apply", "-f", "-"], part)));
    await waitFor(async () => (await countWhere(cp, "vm", ".status.conditions[?(@.type==\"Ready\")].status", "True")) === VMS, 300_000);
    const loaded = await footprint(vireo, metricsAt);
    if (snapshotDir) await heapSnapshot(vireo, snapshotDir);
    await vireo.stop();

    vireo = start(cp, state.path);
    metricsAt = await synced(vireo, VMS);
    await waitFor(async () => (await countWhere(cp, "vm", ".status.conditions[?(@.type==\"Ready\")].status", "True")) === VMS, 120_000);
    const fresh = await footprint(vireo, metricsAt);

    console.log(`\nfootprint: vireo run --kubeconfig against kube-apiserver ${cp.server}, ${HOSTS} hosts, ${VMS} VMs applied with kubectl`);
    console.log(`leader election ${process.env["VIREO_BENCH_LEADER_ELECT"] === "false" ? "off" : "on, as the chart runs it"}; NODE_OPTIONS ${JSON.stringify(vireoNodeOptions())}; compile cache ${vireoImageEnv().NODE_COMPILE_CACHE === undefined ? "off" : "filled as the image's"}`);
    console.log(table([
      ["", "idle, 0 VMs", `${VMS} VMs Ready`, "fresh leader", "aim"],
      row("resident memory now (MiB)", [idle, loaded, fresh], (f) => f.residentMiB, `< ${AIM_MIB}`),
      row("peak resident memory (MiB)", [idle, loaded, fresh], (f) => f.peakResidentMiB, `< ${AIM_MIB}`),
      row("  V8 heap in use (MiB)", [idle, loaded, fresh], (f) => f.heapUsedMiB, ""),
      row("  V8 heap reserved (MiB)", [idle, loaded, fresh], (f) => f.heapTotalMiB, ""),
      row("  external and array buffers (MiB)", [idle, loaded, fresh], (f) => f.externalMiB, ""),
      row("controller CPU since its start (s)", [idle, loaded, fresh], (f) => f.cpuSeconds, ""),
    ]));
  } finally {
    await vireo?.stop();
    await cp.stop();
    state.remove();
  }
}

/**
 * `vireo run` as the chart runs it: with leader election (a lone replica leads at once) and the image's
 * NODE_OPTIONS, its share of the memory limit resolved against the chart's default limit (this process runs
 * in no container). VIREO_BENCH_NODE_OPTIONS replaces those flags ("" for Node's defaults);
 * VIREO_BENCH_LEADER_ELECT=false leaves election out.
 */
function start(cp: ControlPlane, stateDir: string, snapshotDir?: string): VireoProcess {
  const election = process.env["VIREO_BENCH_LEADER_ELECT"] === "false" ? [] : ["--leader-elect", "--leader-election-namespace", "bench"];
  const args = ["run", "--kubeconfig", cp.kubeconfigPath, "--state-dir", stateDir, "--metrics-addr", "127.0.0.1:0", "--time-scale", String(TIME_SCALE), ...election];
  const options = [vireoNodeOptions(), snapshotDir ? "--heapsnapshot-signal=SIGUSR2" : ""].join(" ").trim();
  return new VireoProcess(args, { ...(snapshotDir ? { cwd: snapshotDir } : {}), env: vireoImageEnv(options) });
}

/** Waits for the controller's "synced" line with the VMs expected; returns where its metrics are served. */
async function synced(vireo: VireoProcess, vms: number): Promise<string> {
  const metricsAt = (await vireo.waitForLog(/metrics on http:\/\/([^/\s"]+)\/metrics/))[1]!;
  await vireo.waitForLog(new RegExp(`synced: ${HOSTS} hosts in 1 clusters, ${vms} VMs`), 120_000);
  return metricsAt;
}

/** Memory once the controller has settled: a few seconds of quiet, so the figure is not a GC's moment. */
async function footprint(vireo: VireoProcess, metricsAt: string): Promise<Footprint> {
  await new Promise((r) => setTimeout(r, 5_000));
  const status = readFileSync(`/proc/${vireo.child.pid!}/status`, "utf8");
  // /proc/PID/stat: utime and stime are fields 14 and 15, in clock ticks (100 a second on Linux).
  const stat = readFileSync(`/proc/${vireo.child.pid!}/stat`, "utf8").split(") ")[1]!.split(" ");
  const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? Number.NaN) / 1024;
  const text = await (await fetch(`http://${metricsAt}/metrics`)).text();
  const mib = (name: string) => Number(new RegExp(`^${name} (\\S+)`, "m").exec(text)?.[1] ?? Number.NaN) / 2 ** 20;
  return {
    residentMiB: kib("VmRSS"),
    peakResidentMiB: kib("VmHWM"),
    heapUsedMiB: mib("vireo_nodejs_heap_size_used_bytes"),
    heapTotalMiB: mib("vireo_nodejs_heap_size_total_bytes"),
    externalMiB: mib("vireo_nodejs_external_memory_bytes"),
    cpuSeconds: (Number(stat[11]) + Number(stat[12])) / 100,
  };
}

/** Node writes the snapshot on the signal; it is done once the file stops growing. */
async function heapSnapshot(vireo: VireoProcess, dir: string): Promise<void> {
  const before = new Set(readdirSync(dir));
  vireo.child.kill("SIGUSR2");
  let size = -1;
  await waitFor(async () => {
    const file = readdirSync(dir).find((name) => name.endsWith(".heapsnapshot") && !before.has(name));
    if (file === undefined) return false;
    const now = statSync(join(dir, file)).size;
    const done = now > 0 && now === size;
    size = now;
    if (done) console.log(`heap snapshot: ${join(dir, file)}`);
    return done;
  }, 300_000);
}

function fleet(): string {
  const docs = [`apiVersion: vireo.dev/v1alpha1\nkind: HostCluster\nmetadata: {name: bench}\nspec:\n  hostSelector: {matchLabels: {vireo.dev/cluster: bench}}\n  ha: {admissionControl: {policy: Disabled}}\n`];
  for (let i = 0; i < HOSTS; i++) {
    docs.push(`apiVersion: vireo.dev/v1alpha1\nkind: Host\nmetadata: {name: h-${i}, labels: {vireo.dev/cluster: bench}}\nspec: {hypervisor: kvm, cpu: {cores: 128, vendor: intel, features: [avx2], overcommitRatio: 4}, memoryMiB: 2097152, datastores: [shared], networks: [prod]}\n`);
  }
  return docs.join("---\n");
}

function vms(parts: number): string[] {
  const docs: string[] = [];
  for (let i = 0; i < VMS; i++) {
    const memory = [1024, 2048, 4096][i % 3];
    docs.push(`apiVersion: vireo.dev/v1alpha1\nkind: VirtualMachine\nmetadata: {name: vm-${i}, namespace: bench, labels: {app: a${i % 50}}}\nspec: {cpu: ${1 + (i % 2)}, memoryMiB: ${memory}, disks: [{name: root, sizeGiB: 20, datastore: shared}], networks: [{name: prod}], placement: {cluster: bench}}\n`);
  }
  return Array.from({ length: parts }, (_, p) => docs.filter((_, i) => i % parts === p).join("---\n"));
}

async function kubectl(cp: ControlPlane, args: string[], input: string): Promise<void> {
  const r = await cp.kubectl(args, { input, timeoutMs: 300_000 });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${r.stderr}`);
}

async function countWhere(cp: ControlPlane, resource: string, field: string, value: string): Promise<number> {
  const r = await cp.kubectl(["get", resource, "-A", "-o", `jsonpath={range .items[*]}{${field}}{"\\n"}{end}`]);
  return r.stdout.split("\n").filter((l) => l === value).length;
}

async function waitFor(check: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`not reached within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

function row(label: string, figures: readonly Footprint[], pick: (f: Footprint) => number, aim: string): string[] {
  return [label, ...figures.map((f) => pick(f).toFixed(label.includes("CPU") ? 1 : 0)), aim];
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("   ")).join("\n");
}
