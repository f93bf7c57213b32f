// `vireo hostsim`: the simulated hosts as their own process, served over HTTP (controller/provider/http),
// so several controllers — or a controller that restarts — see one world. The world is saved after every
// change; a restarted hostsim finds every VM where it was.

import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { RealClock } from "../core/clock.ts";
import { createLogger } from "../observe/log.ts";
import type { Logger } from "../observe/log.ts";
import { HostsimMetrics } from "../provider/http/metrics.ts";
import { HostsimServer } from "../provider/http/server.ts";
import { serveObservability } from "../observe/http.ts";
import type { ObservabilityServer } from "../observe/http.ts";
import { SimulatedHosts } from "../provider/sim/index.ts";
import { writeFileAtomic } from "../state/atomic-write.ts";
import { parseArgs, UsageError } from "./args.ts";
import type { FlagSpec } from "./args.ts";
import { waitForSignal } from "./signals.ts";
import { VERSION } from "./version.ts";

export const HOSTSIM_FLAGS: FlagSpec = {
  listen: { type: "string", default: "127.0.0.1:9440", help: "address to serve the API on (port 0 picks a free one)" },
  state: { type: "string", help: "file the simulated world is kept in (created on the first change)" },
  "token-file": { type: "string", help: "file holding the bearer token every client must present" },
  "insecure-no-auth": { type: "boolean", default: false, help: "serve without a token: loopback addresses only" },
  seed: { type: "string", default: "1", help: "seed of a new world's workloads (a saved world keeps its own)" },
  "time-scale": { type: "string", default: "1", help: "run simulated time this many times faster than real time" },
  "metrics-addr": { type: "string", help: "address to serve /metrics, /healthz and /readyz on, without the token (port 0 picks a free one); none by default" },
};

/** How often the time is noted beside the state file, so a restart carries on from where time was. */
const NOTE_TIME_EVERY_MS = 1_000;

export async function hostsim(argv: readonly string[]): Promise<number> {
  const { flags, positionals } = parseArgs(argv, HOSTSIM_FLAGS);
  if (positionals.length > 0) throw new UsageError(`vireo hostsim takes no arguments, got ${positionals.join(" ")}`);
  const statePath = flags["state"] as string | undefined;
  if (!statePath) throw new UsageError("vireo hostsim needs --state FILE");
  const tokenFile = flags["token-file"] as string | undefined;
  const insecureNoAuth = flags["insecure-no-auth"] as boolean;
  if (tokenFile && insecureNoAuth) throw new UsageError("--token-file and --insecure-no-auth exclude each other");
  if (!tokenFile && !insecureNoAuth) throw new UsageError("vireo hostsim needs --token-file FILE (or, on loopback only, --insecure-no-auth)");
  const timeScale = Number(flags["time-scale"]);
  if (!(timeScale > 0) || !Number.isFinite(timeScale)) throw new UsageError(`--time-scale must be a positive number, got ${String(flags["time-scale"])}`);
  const seed = Number(flags["seed"]);
  if (!Number.isInteger(seed)) throw new UsageError(`--seed must be an integer, got ${String(flags["seed"])}`);
  const token = tokenFile ? readToken(tokenFile) : undefined;

  const log = createLogger();
  mkdirSync(dirname(statePath), { recursive: true });
  const clockPath = `${statePath}.clock`;
  const clock = new RealClock(timeScale, resumeTime(statePath, clockPath));
  const sim = await SimulatedHosts.load({ clock, seed, statePath, onSaveError: (err) => log.error({ err }, "saving the simulated world failed") });
  const metricsAddress = flags["metrics-addr"] as string | undefined;
  const metrics = metricsAddress ? new HostsimMetrics(sim, { version: VERSION, processMetrics: true }) : undefined;
  const server = new HostsimServer({ sim, timeScale, token, insecureNoAuth, log, metrics });
  let address: string;
  let metricsServer: ObservabilityServer | undefined;
  try {
    address = await server.listen(flags["listen"] as string);
    if (metrics && metricsAddress) metricsServer = await serveMetrics(metricsAddress, metrics, server);
  } catch (error) {
    await server.close();
    await sim.close();
    throw error;
  }
  const scaleNote = timeScale !== 1 ? `; time runs ${timeScale}x` : "";
  const authNote = token === undefined ? "; WITHOUT authentication" : "";
  log.info(`vireo hostsim ${VERSION}: listening on http://${address}; state in ${statePath}${scaleNote}${authNote}`);
  if (metricsServer) log.info(`hostsim metrics on http://${metricsServer.address}/metrics`);
  const stopNotingTime = noteTimePeriodically(clockPath, clock, timeScale, log);

  await waitForSignal(log);
  await metricsServer?.close();
  await server.close();
  await stopNotingTime();
  await sim.close();
  log.info("stopped; state saved");
  return 0;
}

/**
 * /metrics, /healthz and /readyz on an address of their own, without the token, as the controller serves
 * them: they hold counts only, and a scraper that held the token could power VMs off (docs/hostsim.md).
 */
function serveMetrics(address: string, metrics: HostsimMetrics, server: HostsimServer): Promise<ObservabilityServer> {
  return serveObservability(address, metrics.registry, { live: () => true, ready: () => server.server.listening });
}

function readToken(path: string): string {
  let token: string;
  try {
    token = readFileSync(path, "utf8").trim();
  } catch (error) {
    throw new UsageError(`--token-file ${path}: ${(error as Error).message}`);
  }
  if (token.length === 0) throw new UsageError(`--token-file ${path} is empty`);
  return token;
}

interface TimeNote {
  /** The simulator's clock when noted. */
  now: number;
  /** The wall clock then. */
  wall: number;
  timeScale: number;
}

/**
 * Where the restarted clock starts. The simulated hosts keep living while their management process is
 * down, so time carries on at the old scale from the last note: a controller that kept its own clock
 * running meanwhile finds hostsim's time where it expects it, and heartbeats are not judged stale. Never
 * before the world's own last save, so time never runs backwards.
 */
function resumeTime(statePath: string, clockPath: string): number {
  const note = readTimeNote(clockPath);
  const carriedOn = note ? note.now + Math.max(0, Date.now() - note.wall) * note.timeScale : 0;
  return Math.max(savedAt(statePath), carriedOn);
}

function readTimeNote(path: string): TimeNote | undefined {
  if (!existsSync(path)) return undefined;
  const text = readFileSync(path, "utf8");
  let note: Partial<TimeNote>;
  try {
    note = JSON.parse(text) as Partial<TimeNote>;
  } catch (error) {
    throw new Error(`the time note ${path} is not JSON; remove it to start from the world's last save`, { cause: error });
  }
  const valid = [note.now, note.wall, note.timeScale].every((n) => typeof n === "number" && Number.isFinite(n)) && note.timeScale! > 0;
  if (!valid) throw new Error(`the time note ${path} lacks now, wall or timeScale; remove it to start from the world's last save`);
  return note as TimeNote;
}

/** The clock time the world was last saved at, 0 when there is no world yet. */
function savedAt(statePath: string): number {
  if (!existsSync(statePath)) return 0;
  let saved: unknown;
  try {
    saved = (JSON.parse(readFileSync(statePath, "utf8")) as { savedAt?: unknown }).savedAt;
  } catch (error) {
    // SimulatedHosts.load reads the same file next and reports the damage, naming the record.
    if (error instanceof SyntaxError) return 0;
    throw error;
  }
  return typeof saved === "number" && Number.isFinite(saved) ? saved : 0;
}

function noteTimePeriodically(path: string, clock: RealClock, timeScale: number, log: Logger): () => Promise<void> {
  let writing: Promise<void> = Promise.resolve();
  const note = () => {
    const text = JSON.stringify({ now: clock.now(), wall: Date.now(), timeScale } satisfies TimeNote);
    writing = writing.then(() => writeFileAtomic(path, text)).catch((err: unknown) => log.warn({ err }, "noting the time failed"));
  };
  note();
  const timer = setInterval(note, NOTE_TIME_EVERY_MS);
  timer.unref();
  return async () => {
    clearInterval(timer);
    note();
    await writing;
  };
}
