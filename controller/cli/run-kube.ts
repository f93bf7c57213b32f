// `vireo run --kubeconfig PATH` (or KUBECONFIG, or in a cluster): the API mode. Informers feed the same
// store, engine, planners and executor as the file mode; status goes through the status subresource;
// with --leader-elect only the holder of the Lease reconciles. The read-only console is served at /.

import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { lastSavedTime, noteTimePeriodically } from "./clock-file.ts";
import { join, resolve } from "node:path";
import { RealClock, type Clock } from "../core/clock.ts";
import { Controller } from "../engine/controller.ts";
import type { LeaderElector } from "../engine/leader.ts";
import { ObjectStore } from "../sources/store.ts";
import { KubeClient } from "../sources/kube/client.ts";
import { KubeSource, finalizersVia } from "../sources/kube/kube-source.ts";
import { KubeEventRecorder, KubeStatusWriter } from "../sources/kube/writer.ts";
import { KubeObjectWriter } from "../sources/kube/object-writer.ts";
import { SimulatedHosts } from "../provider/sim/index.ts";
import type { HypervisorProvider } from "../provider/provider.ts";
import { createLogger, type Logger } from "../observe/log.ts";
import { ControllerMetrics, attachStoreGauges } from "../observe/metrics.ts";
import { consoleWhere, createConsole, serveWithConsole } from "../observe/console.ts";
import { parseArgs, UsageError, type FlagSpec } from "./args.ts";
import { PROVIDER_FLAGS, connectRemoteProvider } from "./provider-flags.ts";
import { serveSimEndpoint } from "./sim-endpoint.ts";
import { VERSION } from "./version.ts";
import { ProgressReporter } from "./progress.ts";
import { waitForSignal } from "./signals.ts";

export const KUBE_RUN_FLAGS: FlagSpec = {
  kubeconfig: { type: "string", help: "kubeconfig file (default: KUBECONFIG, then in-cluster config)" },
  "leader-elect": { type: "boolean", default: false, help: "take part in leader election on a Lease; only the leader reconciles" },
  "leader-election-namespace": { type: "string", help: "namespace of the Lease (default: POD_NAMESPACE, the service account's namespace, or default)" },
  "leader-election-id": { type: "string", default: "vireo-controller", help: "name of the Lease" },
  "state-dir": { type: "string", default: ".vireo", help: "where the in-process simulated world is kept (without --provider)" },
  "time-scale": { type: "string", default: "1", help: "run simulated time this many times faster than real time" },
  "metrics-addr": { type: "string", default: "127.0.0.1:8080", help: "address for /metrics, /healthz, /readyz and the console" },
  "console-addr": { type: "string", default: "", help: "address of the read-only web console (default: at / on --metrics-addr when that is loopback)" },
  "kube-api-qps": { type: "string", default: "1000", help: "client-side rate limit on API requests per second" },
  "kube-api-burst": { type: "string", default: "2000", help: "client-side burst above the rate limit" },
  workers: { type: "string", default: "16", help: "concurrent reconciles (distinct objects only)" },
  seed: { type: "string", default: "1", help: "seed of the in-process simulated hosts' workloads" },
  ...PROVIDER_FLAGS,
};

export async function runKube(argv: readonly string[]): Promise<number> {
  const { flags } = parseArgs(argv, KUBE_RUN_FLAGS);
  const log = createLogger();
  const timeScale = Number(flags["time-scale"]);
  if (!(timeScale > 0)) throw new UsageError(`--time-scale must be a positive number, got ${String(flags["time-scale"])}`);
  const remote = await connectRemoteProvider(argv, flags, timeScale, log);
  const { provider, clock, close } = remote
    ? { provider: remote.provider, clock: remote.clock, close: async () => undefined }
    : await inProcessSimulator(flags["state-dir"] as string, new RealClock(timeScale, lastSavedTime(flags["state-dir"] as string)), Number(flags["seed"]), timeScale, log);

  const metrics = new ControllerMetrics({ version: VERSION, processMetrics: true });
  const client = new KubeClient({
    ...(flags["kubeconfig"] ? { kubeconfig: flags["kubeconfig"] as string } : {}),
    qps: Number(flags["kube-api-qps"]),
    burst: Number(flags["kube-api-burst"]),
    clock: new RealClock(),
    registry: metrics.registry,
  });
  const store = new ObjectStore();
  attachStoreGauges(metrics, store, () => clock.now());
  let active = false;
  const standby = flags["leader-elect"] === true;
  const fleetConsole = createConsole({ store, now: () => clock.now(), mode: "api", standby: () => standby && !active });
  const writer = new KubeStatusWriter(client, store);
  const source = new KubeSource({ client, store, clock: new RealClock(), log, registry: metrics.registry });
  const controller = new Controller({
    store, provider, clock, log, metrics,
    statusWriter: fleetConsole.statusWriter(writer),
    // The objects Vireo makes (a lab's VMs) go to the API server too, owned by their lab there.
    objects: new KubeObjectWriter(client, store),
    // Events carry wall-clock times, whatever the simulation's time scale: kubectl shows their age.
    events: fleetConsole.events(new KubeEventRecorder(client, new RealClock(), log)),
    finalizers: finalizersVia(writer),
    workers: Number(flags["workers"]),
  });

  let synced = false;
  const http = await serveWithConsole({ metrics: flags["metrics-addr"] as string, console: flags["console-addr"] as string }, {
    registry: metrics.registry,
    health: {
      live: () => true,
      // A standby is ready: it serves its purpose by standing by. The leader is ready once it has synced.
      ready: () => (standby && !active) || synced,
    },
  }, fleetConsole);
  log.info(`vireo ${VERSION}: API mode against ${client.server()}; metrics on http://${http.address}/metrics; ${consoleWhere(http)}`);

  const startWorking = async () => {
    active = true;
    await source.start();
    await controller.start();
    synced = true;
    log.info(`synced: ${store.count("Host")} hosts in ${store.count("HostCluster")} clusters, ${store.count("VirtualMachine")} VMs`);
  };
  const progress = new ProgressReporter(store, log);
  let elector: LeaderElector | undefined;
  // Loaded only to take part in an election: what a process never uses, it does not hold in memory.
  const Elector = standby ? (await import("../engine/leader.ts")).LeaderElector : undefined;
  const lost = new Promise<void>((resolveLost) => {
    if (!standby) {
      startWorking().then(() => progress.start(), (error: unknown) => { log.error({ err: error }, "starting failed"); resolveLost(); });
      return;
    }
    elector = new Elector!(client, { namespace: leaseNamespace(flags["leader-election-namespace"] as string | undefined), name: flags["leader-election-id"] as string }, new RealClock(), log, {
      onStartedLeading: () => { startWorking().then(() => progress.start(), (error: unknown) => { log.error({ err: error }, "starting failed"); resolveLost(); }); },
      onStoppedLeading: () => resolveLost(),
    }, metrics.registry);
    log.info(`standing by for the leader lease as ${elector.identity}`);
    elector.start();
  });

  const outcome = await Promise.race([waitForSignal(log).then(() => "signal" as const), lost.then(() => "lost" as const)]);
  progress.stop();
  source.stop();
  // Reconciles waiting out an unreachable API server give up now, so stopping does not wait for them.
  client.stopRetrying();
  await controller.stop();
  await elector?.stop();
  await close();
  await http.close();
  client.close();
  if (outcome === "lost") {
    log.error("exiting: leadership lost or start failed; a restart rejoins as a standby");
    return 1;
  }
  log.info("stopped");
  return 0;
}

/** The simulated hosts in this process, kept in the state directory, reachable by `vireo sim --state-dir`. */
async function inProcessSimulator(stateDir: string, clock: RealClock, seed: number, timeScale: number, log: Logger): Promise<{ provider: HypervisorProvider; clock: Clock; close(): Promise<void> }> {
  mkdirSync(stateDir, { recursive: true });
  const statePath = join(resolve(stateDir), "world.json");
  const sim = existsSync(statePath) ? await SimulatedHosts.load({ clock, statePath }) : new SimulatedHosts({ clock, seed, statePath });
  const stopSimEndpoint = await serveSimEndpoint(sim, resolve(stateDir), timeScale, log);
  const stopNotingTime = noteTimePeriodically(stateDir, clock, log);
  return { provider: sim, clock, close: async () => { await stopNotingTime(); await stopSimEndpoint(); await sim.close(); } };
}

/** Where the Lease lives: the flag, then the pod's namespace, then the service account's, then default. */
function leaseNamespace(flag: string | undefined): string {
  if (flag) return flag;
  if (process.env["POD_NAMESPACE"]) return process.env["POD_NAMESPACE"];
  const saFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
  if (existsSync(saFile)) return readFileSync(saFile, "utf8").trim();
  return "default";
}
