// The cluster benchmark: Vireo in API mode beside kube-scheduler, what a KubeVirt user places VMs with, at
// 1,000 VMs on 100 hosts (`cluster`) and 10,000 on 1,000 (`cluster-10k`). Each runs against a fresh
// kube-apiserver and etcd of the test control plane, with its objects created before it starts; kube-controller-
// manager does not run, so that the API server's counters hold only what the controller measured did.
// Prints the time until every object has its host, the writes and watch events per object, CPU and peak
// memory, side by side and beside issue 14's aims. docs/decisions/0014-cluster-benchmark.md says why so.

import { cpus, loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import { ControlPlane } from "../test/envtest/controlplane.ts";
import { ensureControlPlaneBinaries, ensureKubeScheduler, pinnedKubernetesVersion } from "../test/envtest/setup.ts";
import type { ClusterSize } from "./cluster-fleet.ts";
import type { ControllerFigures } from "./cluster-measure.ts";
import { measureKubeScheduler, schedulerQps } from "./cluster-scheduler.ts";
import { measureVireo, TIME_SCALE, vireoImageEnv, vireoNodeOptions } from "./cluster-vireo.ts";
import { table } from "./kube-api.ts";

/** Issue 14's aims for the controller's peak resident memory in API mode, in MB (10^6 bytes). */
const AIM_PEAK_MB: ReadonlyMap<number, number> = new Map([[1_000, 150], [10_000, 400]]);
const AIM_WRITES_PER_VM = 3;

export interface SideBySide {
  vireo: ControllerFigures;
  scheduler: ControllerFigures;
}

/** Each controller on a control plane of its own, one after the other: they never share the 2 cores. */
export async function sideBySide(size: Readonly<ClusterSize>): Promise<SideBySide> {
  await ensureControlPlaneBinaries();
  const binary = await ensureKubeScheduler();
  const vireo = await onFreshControlPlane((cp) => measureVireo(cp, size));
  const scheduler = await onFreshControlPlane((cp) => measureKubeScheduler(cp, size, binary));
  return { vireo, scheduler };
}

async function onFreshControlPlane<T>(measure: (cp: ControlPlane) => Promise<T>): Promise<T> {
  const cp = await ControlPlane.start({ controllerManager: false });
  try {
    return await measure(cp);
  } finally {
    await cp.stop();
  }
}

export function benchCluster(): Promise<void> {
  return bench({ hosts: 100, vms: 1_000 });
}

export function benchCluster10k(): Promise<void> {
  return bench({ hosts: 1_000, vms: 10_000 });
}

async function bench(size: Readonly<ClusterSize>): Promise<void> {
  const started = performance.now();
  const load = loadavg()[0]!;
  const { vireo, scheduler } = await sideBySide(size);
  const version = await pinnedKubernetesVersion();
  const rate = schedulerQps();
  console.log(`\ncluster: ${size.vms.toLocaleString("en")} VMs on ${size.hosts.toLocaleString("en")} hosts, and as many pods on as many Nodes, each run on a fresh kube-apiserver ${version} and etcd, objects created before the controller starts`);
  console.log(`Vireo: vireo run --kubeconfig --time-scale ${TIME_SCALE} (a 20 s simulated boot takes 1 s), NODE_OPTIONS ${JSON.stringify(vireoNodeOptions())}, compile cache ${vireoImageEnv().NODE_COMPILE_CACHE === undefined ? "off" : "filled as the image's"}`);
  console.log(`kube-scheduler ${version}: default configuration${rate ? `, client QPS ${rate.qps}, burst ${rate.burst}` : " (client QPS 50, burst 100)"}; pods tolerate the not-ready and unreachable taints`);
  console.log(table(rows(size, vireo, scheduler)));
  console.log("kube-scheduler's own floors in its scheduler_perf tests, on 5,000 nodes: 680–810 pods/s");
  console.log(`(${cpus().length} cores, load average ${load.toFixed(1)} when it began, ${loadavg()[0]!.toFixed(1)} at its end; the benchmark took ${((performance.now() - started) / 60_000).toFixed(1)} min, creating the objects included)`);
}

function rows(size: Readonly<ClusterSize>, vireo: Readonly<ControllerFigures>, scheduler: Readonly<ControllerFigures>): string[][] {
  const both = (label: string, figure: (f: Readonly<ControllerFigures>) => number, digits: number, aim = ""): string[] =>
    [label, figure(vireo).toFixed(digits), figure(scheduler).toFixed(digits), aim];
  const perObject = (figure: (f: Readonly<ControllerFigures>) => number) => (f: Readonly<ControllerFigures>) => figure(f) / f.objects;
  const aimMB = AIM_PEAK_MB.get(size.vms);
  return [
    ["", "Vireo", "kube-scheduler", "aim"],
    both("every VM has a host, every pod is bound, after (s)", (f) => f.placedSeconds, 1, "≤ kube-scheduler's"),
    ["  of which until the controller had listed them all (s)", vireo.syncedSeconds?.toFixed(1) ?? "", "", ""],
    both("  objects placed per second", (f) => f.objects / f.placedSeconds, 0, "≥ kube-scheduler's"),
    both("  objects placed", (f) => f.placed, 0, `${size.vms}`),
    ["every VM Ready after (s)", vireo.readySeconds?.toFixed(1) ?? "", "", ""],
    both("API writes per object (VM: status, finalizer; pod: binding)", perObject((f) => f.objectWrites), 2, `≤ ${AIM_WRITES_PER_VM} on the way to Ready`),
    both("  of which refused as conflicts", perObject((f) => f.conflicts), 2),
    both("  Events written per object", perObject((f) => f.eventWrites), 2),
    both("  every write of the run per object (hosts, Events…)", perObject((f) => f.allWrites), 2),
    both("watch events per object (the objects' own resource)", perObject((f) => f.watchEvents), 2),
    both("  of which the initial state (a watch-list, not a LIST)", perObject((f) => f.initialWatchEvents), 2),
    both("controller CPU (s)", (f) => f.cpuSeconds, 1),
    both("  per 1,000 objects", perObject((f) => 1000 * f.cpuSeconds), 1),
    both("peak resident memory (MiB)", (f) => f.peakResidentMiB, 0, aimMB === undefined ? "" : `< ${(aimMB * 1e6 / 2 ** 20).toFixed(0)} (${aimMB} MB)`),
    both("  heap in use at the end (MiB; V8, Go)", (f) => f.heapUsedMiB, 0),
    both("  heap reserved at the end (MiB)", (f) => f.heapReservedMiB, 0),
  ];
}
