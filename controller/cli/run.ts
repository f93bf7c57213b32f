// `vireo run --manifests DIR`: the file mode. Watches DIR, reconciles against the simulated hosts in this
// process (or, with --provider, in a `vireo hostsim`), keeps state under --state-dir, serves /metrics,
// /healthz, /readyz and the read-only console at /.

import { existsSync, mkdirSync, statSync } from "node:fs";
import { RealClock } from "../core/clock.ts";
import type { Clock } from "../core/clock.ts";
import { Controller } from "../engine/controller.ts";
import { ObjectStore } from "../sources/store.ts";
import { stateObjectWriter } from "../sources/store-writer.ts";
import { FileSource } from "../sources/files/file-source.ts";
import { LogEventRecorder, StateStatusWriter } from "../sources/files/file-status.ts";
import { StateDirectory } from "../state/state-dir.ts";
import { join } from "node:path";
import { SimulatedHosts } from "../provider/sim/index.ts";
import { PROVIDER_FLAGS, connectRemoteProvider } from "./provider-flags.ts";
import { createLogger, type Logger } from "../observe/log.ts";
import { ControllerMetrics, attachStoreGauges } from "../observe/metrics.ts";
import { consoleWhere, createConsole, serveWithConsole, type ServedWithConsole } from "../observe/console.ts";
import { formatManifestError } from "../sources/files/manifests.ts";
import { parseArgs, UsageError, type FlagSpec } from "./args.ts";
import { VERSION } from "./version.ts";
import { ProgressReporter } from "./progress.ts";
import { lastSavedTime, noteTimePeriodically } from "./clock-file.ts";
import { waitForSignal } from "./signals.ts";
import { serveSimEndpoint } from "./sim-endpoint.ts";
import { REQUESTS_DIR } from "./requests.ts";


export const RUN_FLAGS: FlagSpec = {
  manifests: { type: "string", help: "directory of YAML manifests to watch (a Git checkout)" },
  "state-dir": { type: "string", default: ".vireo", help: "where status and the simulated world are kept" },
  "time-scale": { type: "string", default: "1", help: "run simulated time this many times faster than real time" },
  "metrics-addr": { type: "string", default: "127.0.0.1:8080", help: "address for /metrics, /healthz, /readyz and the console" },
  "console-addr": { type: "string", default: "", help: "address of the read-only web console (default: at / on --metrics-addr when that is loopback)" },
  prune: { type: "boolean", default: true, help: "delete the objects of removed manifests (--no-prune keeps them)" },
  seed: { type: "string", default: "1", help: "seed of the simulated hosts' workloads" },
  workers: { type: "string", default: "2", help: "concurrent reconciles" },
  // A remote simulator (`vireo hostsim`) instead of the in-process one; its clock becomes the controller's.
  ...PROVIDER_FLAGS,
};

export async function run(argv: readonly string[]): Promise<number> {
  const { flags } = parseArgs(argv, RUN_FLAGS);
  const manifests = flags["manifests"] as string | undefined;
  if (!manifests) throw new UsageError("vireo run needs --manifests DIR (the API mode comes with --kubeconfig)");
  if (!existsSync(manifests) || !statSync(manifests).isDirectory()) throw new UsageError(`--manifests ${manifests}: not a directory`);
  const stateDir = flags["state-dir"] as string;
  StateDirectory.checkOutside(stateDir, manifests);
  const timeScale = Number(flags["time-scale"]);
  if (!(timeScale > 0)) throw new UsageError(`--time-scale must be a positive number, got ${String(flags["time-scale"])}`);

  const log = createLogger();
  const remote = await connectRemoteProvider(argv, flags, timeScale, log);
  const clock: Clock = remote?.clock ?? new RealClock(timeScale, lastSavedTime(stateDir));
  const state = new StateDirectory(stateDir, { now: () => clock.now(), onSaveError: (err) => log.error({ err }, "saving state failed") });
  state.open();
  const sim = remote ? undefined : existsSync(state.worldPath)
    ? await SimulatedHosts.load({ clock, statePath: state.worldPath })
    : new SimulatedHosts({ clock, seed: Number(flags["seed"]), statePath: state.worldPath });
  const provider = remote?.provider ?? sim!;

  const metrics = new ControllerMetrics({ version: VERSION, processMetrics: true });
  const store = new ObjectStore();
  attachStoreGauges(metrics, store, () => clock.now());
  const fleetConsole = createConsole({ store, now: () => clock.now(), mode: "file" });
  const requestsDir = join(stateDir, REQUESTS_DIR);
  mkdirSync(requestsDir, { recursive: true });
  const source = new FileSource({ dir: manifests, store, state, log, metrics, now: () => clock.now(), prune: flags["prune"] as boolean, requestsDir });
  const controller = new Controller({
    store, provider, clock, log, metrics,
    statusWriter: fleetConsole.statusWriter(new StateStatusWriter(state)),
    objects: stateObjectWriter(store, state, clock),
    events: fleetConsole.events(new LogEventRecorder(log)),
    workers: Number(flags["workers"]),
  });

  let ready = false;
  const http = await serveWithConsole(
    { metrics: flags["metrics-addr"] as string, console: flags["console-addr"] as string },
    { registry: metrics.registry, health: { live: () => true, ready: () => ready } },
    fleetConsole,
  );
  await source.start();
  await controller.start();
  // `vireo sim --state-dir` reaches the in-process simulated hosts here (loopback, token in the state dir).
  const stopSimEndpoint = sim ? await serveSimEndpoint(sim, state.dir, timeScale, log) : undefined;
  ready = true;
  announce(log, { manifests, stateDir: state.dir, http, store, errors: source.manifestErrors().map(formatManifestError), timeScale: remote?.clock.timeScale ?? timeScale });
  const progress = new ProgressReporter(store, log);
  progress.start();
  const stopNotingTime = noteTimePeriodically(state.dir, clock, log);

  await waitForSignal(log);
  progress.stop();
  await stopNotingTime();
  await stopSimEndpoint?.();
  await shutdown({ controller, source, sim, state, http });
  log.info("stopped; state saved");
  return 0;
}

function announce(
  log: Logger,
  info: { manifests: string; stateDir: string; http: ServedWithConsole; store: ObjectStore; errors: string[]; timeScale: number },
): void {
  const hosts = info.store.count("Host");
  const clusters = info.store.count("HostCluster");
  const vms = info.store.count("VirtualMachine");
  log.info(`vireo ${VERSION}: watching ${info.manifests}: ${hosts} hosts in ${clusters} clusters, ${vms} VMs`);
  log.info(`state in ${info.stateDir}; metrics on http://${info.http.address}/metrics; ${consoleWhere(info.http)}` + (info.timeScale !== 1 ? `; time runs ${info.timeScale}x` : ""));
  for (const e of info.errors) log.warn(`manifest error: ${e}`);
}


async function shutdown(parts: { controller: Controller; source: FileSource; sim: SimulatedHosts | undefined; state: StateDirectory; http: ServedWithConsole }): Promise<void> {
  await parts.source.stop();
  await parts.controller.stop();
  await parts.sim?.close();
  await parts.state.flush();
  parts.state.close();
  await parts.http.close();
}
