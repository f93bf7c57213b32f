// `vireo plan`: what Vireo would do now, and the drift it sees, without doing anything — the
// `terraform plan` / `kubectl diff` of Vireo. Desired state comes from the manifests (and the saved
// state) or from the API server; the hosts from the saved world, read-only, or from a `vireo hostsim`.
// Nothing is written: not the state directory, not the world, not the API server.

import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import type { VireoObject } from "../api/types.ts";
import { KINDS, keyOf } from "../api/types.ts";
import { VirtualClock } from "../core/clock.ts";
import type { Clock } from "../core/clock.ts";
import { dryRun } from "../engine/dry-run.ts";
import type { HypervisorProvider } from "../provider/provider.ts";
import { SimulatedHosts } from "../provider/sim/index.ts";
import { parseWorld } from "../provider/sim/state-file.ts";
import { ObjectStore } from "../sources/store.ts";
import { withIdentity } from "../sources/identity.ts";
import { formatManifestError, isManifestFile, parseManifestFile } from "../sources/files/manifests.ts";
import { readSnapshot, type ManifestError } from "../state/state-dir.ts";
import { createLogger } from "../observe/log.ts";
import { parseArgs, UsageError, type FlagSpec } from "./args.ts";
import { listFromApi, notedTime } from "./get.ts";
import { PROVIDER_FLAGS, connectRemoteProvider } from "./provider-flags.ts";
import { formatPlan } from "./plan-format.ts";
import { REQUESTS_DIR } from "./requests.ts";

const PLAN_FLAGS: FlagSpec = {
  manifests: { type: "string", help: "directory of YAML manifests (the file mode)" },
  "state-dir": { type: "string", default: ".vireo", help: "state directory of the file mode (status and the simulated world), read only" },
  kubeconfig: { type: "string", help: "read the objects from this cluster's API server (the API mode)" },
  output: { type: "string", short: "o", default: "table", help: "table or json" },
  ...PROVIDER_FLAGS,
};

export async function plan(argv: readonly string[], out: (text: string) => void): Promise<number> {
  const { flags } = parseArgs(argv, PLAN_FLAGS);
  const output = flags["output"] as string;
  if (output !== "table" && output !== "json") throw new UsageError(`-o must be table or json, got ${output}`);
  const manifests = flags["manifests"] as string | undefined;
  const kubeconfig = flags["kubeconfig"] as string | undefined;
  if (manifests && kubeconfig) throw new UsageError("--manifests and --kubeconfig exclude each other");
  const stateDir = flags["state-dir"] as string;

  const objects = manifests ? objectsFromFiles(manifests, stateDir) : await listAll(kubeconfig);
  const hosts = await hostsFor(argv, flags, stateDir);
  const store = new ObjectStore();
  for (const object of objects) store.upsert(object);
  try {
    const report = await dryRun(store, hosts.provider, hosts.clock);
    out(output === "json" ? JSON.stringify(report, null, 2) : formatPlan(report));
    return 0;
  } finally {
    await hosts.close();
  }
}

/** The manifests as `vireo run` would read them, with the identity and status the state directory keeps. */
function objectsFromFiles(dir: string, stateDir: string): VireoObject[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`--manifests ${dir}: not a directory`);
  const entries = readSnapshot(join(stateDir, "objects.json"))?.objects ?? [];
  const saved = new Map(entries.map((e) => [keyOf(e.object), e.object]));
  const objects = new Map<string, VireoObject>();
  for (const { path, file, requestsOnly } of sourceFiles(dir, stateDir)) {
    const documents = readManifest(path, file, requestsOnly);
    if (!documents) {
      // As `vireo run` does, a broken file keeps its last good objects.
      for (const e of entries) if (e.source?.file === file) objects.set(keyOf(e.object), e.object);
      continue;
    }
    for (const object of documents) {
      const key = keyOf(object);
      // The first file to declare an object keeps it, as in `vireo run`.
      if (!objects.has(key)) objects.set(key, withIdentity(object, saved.get(key), Date.now(), () => `planned-${key}`));
    }
  }
  // Objects Vireo made (a lab's VMs) have no manifest: they stand as the state directory keeps them.
  for (const e of entries) if (!e.source && !objects.has(keyOf(e.object))) objects.set(keyOf(e.object), e.object);
  return [...objects.values()];
}

/** The manifests, then the migrations `vireo migrate` asked for, which `vireo run` reads from the state directory, named as it names them. */
function sourceFiles(dir: string, stateDir: string): { path: string; file: string; requestsOnly: boolean }[] {
  const requests = join(stateDir, REQUESTS_DIR);
  return [
    ...manifestFiles(dir).map((path) => ({ path, file: relative(dir, path), requestsOnly: false })),
    ...(existsSync(requests) ? manifestFiles(requests).map((path) => ({ path, file: `requests:${relative(requests, path)}`, requestsOnly: true })) : []),
  ];
}

/** A file's objects, or undefined when `vireo run` would refuse it (saying why on stderr, as it logs it). */
function readManifest(path: string, file: string, requestsOnly: boolean): VireoObject[] | undefined {
  const parsed = parseManifestFile(file, readFileSync(path, "utf8"));
  const errors: ManifestError[] = parsed.ok
    ? parsed.documents.filter((d) => requestsOnly && d.object.kind !== "VirtualMachineMigration").map((d) => ({ file, document: d.document, path: "kind", message: `only VirtualMachineMigrations are requests; a ${d.object.kind} belongs in the manifests` }))
    : parsed.errors;
  for (const e of errors) console.error(`manifest error (its last good objects stay in force): ${formatManifestError(e)}`);
  return parsed.ok && errors.length === 0 ? parsed.documents.map((d) => d.object) : undefined;
}

function manifestFiles(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && isManifestFile(entry.name) && !entry.name.startsWith(".")) files.push(join(entry.parentPath, entry.name));
  }
  return files.sort();
}

async function listAll(kubeconfig: string | undefined): Promise<VireoObject[]> {
  const all: VireoObject[] = [];
  for (const kind of KINDS) all.push(...await listFromApi(kubeconfig ?? "", kind));
  return all;
}

/**
 * The hosts: a `vireo hostsim` (--provider), or the world saved in the state directory, loaded into a
 * simulator that has no state file and a clock that never moves — so nothing runs and nothing is saved.
 */
async function hostsFor(argv: readonly string[], flags: Record<string, string | boolean | undefined>, stateDir: string): Promise<{ provider: HypervisorProvider; clock: Clock; close(): Promise<void> }> {
  const remote = await connectRemoteProvider(argv, flags, 1, createLogger({ level: "error" }));
  if (remote) return { provider: remote.provider, clock: remote.clock, close: async () => undefined };
  const worldPath = join(stateDir, "world.json");
  const text = existsSync(worldPath) ? readFileSync(worldPath, "utf8") : undefined;
  const restored = text === undefined ? undefined : parseWorld(worldPath, text);
  const clock = new VirtualClock(Math.max(Date.now(), notedTime(stateDir), (JSON.parse(text ?? "{}") as { savedAt?: number }).savedAt ?? 0));
  const sim = new SimulatedHosts({ clock, seed: restored?.world.seed ?? 1 }, restored);
  return { provider: sim, clock, close: () => sim.close() };
}
