// Vireo's side of the cluster benchmark: the hosts and VMs created through the API server first, then
// `vireo run --kubeconfig` started as its own process, as the image runs it; measured until every VM is Ready.

import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { ControlPlane } from "../test/envtest/controlplane.ts";
import { REPO, VireoProcess, tempDir } from "../test/support/process.ts";
import { hostsYaml, NAMESPACE, vmsYaml, type ClusterSize } from "./cluster-fleet.ts";
import { ApiTally, createAll, createCountingOtherWatchers, deadlineMs, watchSynced, type ControllerFigures } from "./cluster-measure.ts";
import { MilestoneWatch, parseSamples, processUsage, sum, type WatchedObject } from "./kube-api.ts";

/** Simulated boot takes 20 s; at 20x it takes one real second, as a fast-booting VM would. */
export const TIME_SCALE = 20;

/** The chart's default memory limit of the controller (helm/vireo/values.yaml), MiB. */
export const CHART_LIMIT_MIB = 512;

/**
 * The image's NODE_OPTIONS (Dockerfile) as they resolve in the chart's default container: the old space's
 * share of the memory limit (`--max-old-space-size-percentage`, which reads the cgroup) made a size against
 * the chart's default limit, since the benchmark's process runs in no container and the share would be of
 * the whole machine. VIREO_BENCH_NODE_OPTIONS replaces them ("" for Node's defaults).
 */
export function vireoNodeOptions(): string {
  const asked = process.env["VIREO_BENCH_NODE_OPTIONS"];
  if (asked !== undefined) return asked;
  const image = /NODE_OPTIONS="([^"]*)"/.exec(readFileSync(join(REPO, "Dockerfile"), "utf8"))?.[1] ?? "";
  return image.replace(/--max-old-space-size-percentage=(\d+)/, (_, percent: string) => `--max-old-space-size=${Math.round(CHART_LIMIT_MIB * Number(percent) / 100)}`);
}

let compileCache: string | undefined;

/**
 * The environment the image gives `vireo`: NODE_OPTIONS as given, and a compile cache filled as the image
 * build fills its own (controller/cli/compile-cache.ts), once per benchmark run, so no TypeScript is
 * stripped at run time. VIREO_BENCH_COMPILE_CACHE=false leaves the cache out.
 */
export function vireoImageEnv(nodeOptions: string = vireoNodeOptions()): NodeJS.ProcessEnv {
  if (process.env["VIREO_BENCH_COMPILE_CACHE"] === "false") return { NODE_OPTIONS: nodeOptions };
  if (compileCache === undefined) {
    const dir = tempDir("bench-compile-cache");
    process.once("exit", () => dir.remove());
    execFileSync(process.execPath, [join(REPO, "controller", "cli", "compile-cache.ts")], { env: { ...process.env, NODE_OPTIONS: nodeOptions, NODE_COMPILE_CACHE: dir.path }, stdio: "ignore" });
    compileCache = dir.path;
  }
  return { NODE_OPTIONS: nodeOptions, NODE_COMPILE_CACHE: compileCache };
}

const placed = (vm: Readonly<WatchedObject>) => typeof vm.status?.["host"] === "string" && vm.status["host"] !== "";
const ready = (vm: Readonly<WatchedObject>) => (vm.status?.["conditions"] as { type: string; status: string }[] | undefined)?.some((c) => c.type === "Ready" && c.status === "True") ?? false;

export async function measureVireo(cp: ControlPlane, size: Readonly<ClusterSize>): Promise<ControllerFigures> {
  await createAll(cp, [`apiVersion: v1\nkind: Namespace\nmetadata: {name: ${NAMESPACE}}\n`]);
  await createAll(cp, [hostsYaml(size)]);
  const others = await createCountingOtherWatchers(cp, "virtualmachines", vmsYaml(size, 4), size.vms);
  const watch = new MilestoneWatch(cp, `/apis/vireo.dev/v1alpha1/namespaces/${NAMESPACE}/virtualmachines`, size.vms, { placed, ready });
  const state = tempDir("bench-cluster");
  let vireo: VireoProcess | undefined;
  try {
    await watchSynced(watch, size.vms);
    const tally = await ApiTally.begin(cp, { resource: "virtualmachines", objects: size.vms, watch, othersPerEvent: others });
    const started = performance.now();
    vireo = new VireoProcess(["run", "--kubeconfig", cp.kubeconfigPath, "--state-dir", state.path, "--metrics-addr", "127.0.0.1:0", "--time-scale", String(TIME_SCALE)], { env: vireoImageEnv() });
    const running = runningCheck(vireo);
    const synced = vireo.waitForLog(/synced: /, deadlineMs(size.vms)).then(() => performance.now(), () => Number.NaN);
    const placedAt = await watch.reached("placed", deadlineMs(size.vms), running);
    const readyAt = await watch.reached("ready", deadlineMs(size.vms), running);
    const usage = processUsage(vireo.child.pid!);
    const metricsAt = (await vireo.waitForLog(/metrics on http:\/\/([^/\s"]+)\/metrics/))[1]!;
    const samples = parseSamples(await (await fetch(`http://${metricsAt}/metrics`)).text());
    return {
      objects: size.vms,
      placed: watch.count("placed"),
      syncedSeconds: ((await synced) - started) / 1000,
      placedSeconds: (placedAt - started) / 1000,
      readySeconds: (readyAt - started) / 1000,
      ...(await tally.end()),
      cpuSeconds: usage.cpuSeconds,
      peakResidentMiB: usage.peakResidentMiB,
      heapUsedMiB: sum(samples, "vireo_nodejs_heap_size_used_bytes") / 2 ** 20,
      heapReservedMiB: sum(samples, "vireo_nodejs_heap_size_total_bytes") / 2 ** 20,
    };
  } finally {
    watch.stop();
    await vireo?.stop();
    state.remove();
  }
}

/** Fails a wait at once when the controller has exited, with the end of what it logged. */
function runningCheck(vireo: VireoProcess): () => void {
  return () => {
    if (vireo.child.exitCode !== null || vireo.child.signalCode !== null) throw new Error(`vireo exited (${vireo.child.exitCode ?? vireo.child.signalCode}):\n${vireo.logs().slice(-4000)}`);
  };
}
