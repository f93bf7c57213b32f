// kube-scheduler's side of the cluster benchmark, what a KubeVirt user places VMs with: the same number of
// pods as VMs, with the same requests, bound to as many Nodes of the same capacities, created the same way
// before the scheduler starts. kube-scheduler is built from the Kubernetes module of the test control plane
// and runs with its default configuration (client QPS 50, burst 100, adaptive percentageOfNodesToScore),
// as a cluster runs it; VIREO_BENCH_SCHEDULER_QPS raises its client's rate limit.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { createServer } from "node:net";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { ControlPlane } from "../test/envtest/controlplane.ts";
import { tempDir } from "../test/support/process.ts";
import { NAMESPACE, nodesYaml, podsYaml, type ClusterSize } from "./cluster-fleet.ts";
import { ApiTally, createAll, createCountingOtherWatchers, deadlineMs, watchSynced, type ControllerFigures } from "./cluster-measure.ts";
import { MilestoneWatch, parseSamples, processUsage, sum, type WatchedObject } from "./kube-api.ts";

const bound = (pod: Readonly<WatchedObject>) => typeof pod.spec?.["nodeName"] === "string" && pod.spec["nodeName"] !== "";

/** The client rate limit asked for with VIREO_BENCH_SCHEDULER_QPS (burst twice it), or the defaults. */
export function schedulerQps(): { qps: number; burst: number } | undefined {
  const asked = Number(process.env["VIREO_BENCH_SCHEDULER_QPS"] ?? Number.NaN);
  return Number.isFinite(asked) && asked > 0 ? { qps: asked, burst: 2 * asked } : undefined;
}

export async function measureKubeScheduler(cp: ControlPlane, size: Readonly<ClusterSize>, binary: string): Promise<ControllerFigures> {
  // Without kube-controller-manager, nothing creates the namespace's default ServiceAccount that pods name.
  await createAll(cp, [`apiVersion: v1\nkind: Namespace\nmetadata: {name: ${NAMESPACE}}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default, namespace: ${NAMESPACE}}\n`]);
  await createAll(cp, nodesYaml(size, 4));
  const others = await createCountingOtherWatchers(cp, "pods", podsYaml(size, 4), size.vms);
  const watch = new MilestoneWatch(cp, `/api/v1/namespaces/${NAMESPACE}/pods`, size.vms, { bound });
  const dir = tempDir("bench-kube-scheduler");
  let scheduler: KubeScheduler | undefined;
  try {
    await watchSynced(watch, size.vms);
    const tally = await ApiTally.begin(cp, { resource: "pods", objects: size.vms, watch, othersPerEvent: others });
    const started = performance.now();
    scheduler = await KubeScheduler.start(cp, binary, dir.path);
    const boundAt = await watch.reached("bound", deadlineMs(size.vms), () => scheduler!.checkRunning());
    const usage = processUsage(scheduler.pid);
    const samples = parseSamples(await scheduler.metrics(cp.token));
    return {
      objects: size.vms,
      placed: watch.count("bound"),
      placedSeconds: (boundAt - started) / 1000,
      ...(await tally.end()),
      cpuSeconds: usage.cpuSeconds,
      peakResidentMiB: usage.peakResidentMiB,
      heapUsedMiB: sum(samples, "go_memstats_heap_inuse_bytes") / 2 ** 20,
      heapReservedMiB: sum(samples, "go_memstats_heap_sys_bytes") / 2 ** 20,
    };
  } finally {
    watch.stop();
    await scheduler?.stop();
    dir.remove();
  }
}

/** With setpriv --pdeathsig the kernel kills the scheduler even if the benchmark dies without cleaning up. */
const PDEATHSIG = spawnSync("setpriv", ["--pdeathsig", "KILL", "--", "true"], { stdio: "ignore" }).status === 0;

/** kube-scheduler as a child process on loopback, its log in its directory. */
class KubeScheduler {
  private readonly child: ChildProcess;
  private readonly port: number;
  private readonly logPath: string;

  private constructor(child: ChildProcess, port: number, logPath: string) {
    this.child = child;
    this.port = port;
    this.logPath = logPath;
  }

  static async start(cp: ControlPlane, binary: string, dir: string): Promise<KubeScheduler> {
    const config = join(dir, "scheduler.yaml");
    const rate = schedulerQps();
    const client = [`  kubeconfig: ${cp.kubeconfigPath}`, ...(rate ? [`  qps: ${rate.qps}`, `  burst: ${rate.burst}`] : [])];
    writeFileSync(config, ["apiVersion: kubescheduler.config.k8s.io/v1", "kind: KubeSchedulerConfiguration", "clientConnection:", ...client, "leaderElection:", "  leaderElect: false", ""].join("\n"));
    mkdirSync(join(dir, "certs"));
    const port = await freePort();
    const args = [`--config=${config}`, "--bind-address=127.0.0.1", `--secure-port=${port}`, `--cert-dir=${join(dir, "certs")}`, `--authentication-kubeconfig=${cp.kubeconfigPath}`, `--authorization-kubeconfig=${cp.kubeconfigPath}`];
    const logPath = join(dir, "kube-scheduler.log");
    const log = openSync(logPath, "a");
    try {
      // setpriv execs the scheduler: the child's pid is the scheduler's, for /proc.
      const [command, argv] = PDEATHSIG ? ["setpriv", ["--pdeathsig", "KILL", "--", binary, ...args]] : [binary, args];
      return new KubeScheduler(spawn(command, argv, { stdio: ["ignore", log, log], env: loopbackEnv() }), port, logPath);
    } finally {
      closeSync(log);
    }
  }

  get pid(): number {
    return this.child.pid!;
  }

  checkRunning(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) return;
    throw new Error(`kube-scheduler exited (${this.child.exitCode ?? this.child.signalCode}); end of ${this.logPath}:\n${readFileSync(this.logPath, "utf8").slice(-4000)}`);
  }

  /** Its /metrics: served over TLS with a self-signed certificate, the admin's token checked by the API server. */
  metrics(token: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port: this.port, path: "/metrics", headers: { Authorization: `Bearer ${token}` }, rejectUnauthorized: false }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => { body += chunk; });
        res.on("end", () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`kube-scheduler /metrics: HTTP ${res.statusCode}: ${body.slice(0, 500)}`))));
      });
      req.on("error", reject);
      req.end();
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once("exit", r));
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  }
}

/** No proxy for the loopback API server. */
function loopbackEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_PROXY: "127.0.0.1,localhost" };
  for (const k of ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"]) delete env[k];
  return env;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no free port"))));
    });
  });
}
