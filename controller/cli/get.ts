// `vireo get vms|hosts|hostclusters|vmim|rp|labs|replications|… [NAME] [-n NS] [-o wide|json|yaml]`: tables like
// `kubectl get`, from the state directory of a running or stopped `vireo run`, or with --kubeconfig from the
// API server. `replications` is no kind: a table computed from the replicated VMs (replications.ts).

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { dump } from "js-yaml";
import type { Kind, VireoObject, VirtualMachine } from "../api/types.ts";
import { readSnapshot, type ManifestError } from "../state/state-dir.ts";
import { formatTable } from "./table.ts";
import { isNamespaced, kindForResource } from "../api/crds.ts";
import { formatManifestError } from "../sources/files/manifests.ts";
import { parseArgs, UsageError, type FlagSpec } from "./args.ts";
import { RealClock } from "../core/clock.ts";
import { formatReplications, isReplicationResource, replicationRows } from "./replications.ts";

export const GET_FLAGS: FlagSpec = {
  "state-dir": { type: "string", default: ".vireo", help: "the state directory of `vireo run`" },
  kubeconfig: { type: "string", help: "read from the API server of this kubeconfig instead of a state directory" },
  namespace: { type: "string", short: "n", help: "only this namespace (default: all namespaces)" },
  output: { type: "string", short: "o", help: "wide, json or yaml" },
};

export interface Output {
  out: (text: string) => void;
  err: (text: string) => void;
}

/** The kind a resource name means: plural, singular, kind or short name, as the CRDs declare them. */
export function resolveKind(resource: string): Kind {
  const kind = kindForResource(resource) ?? (resource.toLowerCase() === "hosts" || resource.toLowerCase() === "host" ? "Host" : undefined);
  if (!kind) throw new UsageError(`the server doesn't have a resource type "${resource}" (try vms, hosts, hostclusters, hapolicies, faults, vmim, rp, labs, replications)`);
  return kind;
}

/** The kind whose objects a resource lists: replications are computed from VirtualMachines. */
function listedKind(resource: string): Kind {
  return isReplicationResource(resource) ? "VirtualMachine" : resolveKind(resource);
}

export async function get(argv: readonly string[], io: Output, wallClock: number): Promise<number> {
  const { flags, positionals } = parseArgs(argv, GET_FLAGS);
  const [resource, name] = positionals;
  if (!resource) throw new UsageError("vireo get needs a resource type: vms, hosts, hostclusters, vmim, rp, labs or replications");
  const listing = await read(resource, flags, io, wallClock);
  if (typeof listing === "number") return listing;
  const selection: Selection = { kind: listedKind(resource), replications: isReplicationResource(resource), namespace: flags["namespace"] as string | undefined, name };
  const objects = select(listing.objects, selection);
  if (name !== undefined && objects.length === 0) {
    io.err(`Error from server (NotFound): ${resource} "${name}" not found`);
    return 1;
  }
  print(objects, { ...selection, output: flags["output"] as string | undefined, now: listing.now }, io);
  printErrors(listing.manifestErrors, io, false);
  return 0;
}

const MANIFEST_ERRORS = new Set(["errors", "manifesterrors"]);

interface Listing {
  objects: VireoObject[];
  /** What ages and lags are measured against. */
  now: number;
  manifestErrors: ManifestError[];
}

/** The objects to choose from, from the API server or the state directory; a number is the exit code. */
async function read(resource: string, flags: Readonly<Record<string, unknown>>, io: Output, wallClock: number): Promise<Listing | number> {
  const kubeconfig = flags["kubeconfig"] as string | undefined;
  if (kubeconfig !== undefined) {
    if (MANIFEST_ERRORS.has(resource)) throw new UsageError("manifest errors belong to the file mode; the API server refuses bad manifests itself");
    return { objects: await listFromApi(kubeconfig, listedKind(resource)), now: wallClock, manifestErrors: [] };
  }
  const stateDir = flags["state-dir"] as string;
  const snapshot = readSnapshot(join(stateDir, "objects.json"));
  if (!snapshot) {
    io.err(`no state in ${stateDir}: is \`vireo run\` running there?`);
    return 1;
  }
  if (MANIFEST_ERRORS.has(resource)) return printErrors(snapshot.manifestErrors, io, true);
  // A sped-up `vireo run` stamps objects on its own clock, ahead of the wall clock: ages are measured on it.
  return { objects: snapshot.objects.map((e) => e.object), now: Math.max(wallClock, notedTime(stateDir)), manifestErrors: snapshot.manifestErrors };
}

interface Selection {
  kind: Kind;
  /** `get replications`: only the replicated VMs, printed as replications. */
  replications: boolean;
  namespace: string | undefined;
  name: string | undefined;
}

function select(all: readonly VireoObject[], s: Readonly<Selection>): VireoObject[] {
  const byNamespace = s.namespace !== undefined && isNamespaced(s.kind);
  return all
    .filter((o) => o.kind === s.kind && (!s.replications || (o as VirtualMachine).spec.replication !== undefined))
    .filter((o) => (!byNamespace || (o.metadata.namespace ?? "default") === s.namespace) && (s.name === undefined || o.metadata.name === s.name))
    .sort(byNamespaceAndName);
}

/** How the selection is shown: `-o` and the time ages and lags are measured against. */
interface Printing extends Selection {
  output: string | undefined;
  now: number;
}

function print(objects: readonly VireoObject[], p: Readonly<Printing>, io: Output): void {
  if (p.output === "json" || p.output === "yaml") printData(objects, p, io);
  else if (p.output === undefined || p.output === "wide") printTable(objects, p, io);
  else throw new UsageError(`unable to match a printer suitable for the output format "${p.output}", allowed formats are: json,wide,yaml`);
}

function printData(objects: readonly VireoObject[], p: Readonly<Printing>, io: Output): void {
  const items: unknown[] = p.replications ? replicationRows(objects as VirtualMachine[], p.now) : [...objects];
  const body = p.name !== undefined ? items[0] : { apiVersion: "v1", kind: "List", items, metadata: { resourceVersion: "" } };
  io.out(p.output === "json" ? JSON.stringify(body, null, 4) : dump(body, { noRefs: true, lineWidth: -1 }).trimEnd());
}

function printTable(objects: readonly VireoObject[], p: Readonly<Printing>, io: Output): void {
  if (objects.length === 0) {
    io.err(p.namespace ? `No resources found in ${p.namespace} namespace.` : "No resources found");
    return;
  }
  const options = { wide: p.output === "wide", now: p.now, allNamespaces: isNamespaced(p.kind) && p.namespace === undefined };
  io.out((p.replications ? formatReplications(replicationRows(objects as VirtualMachine[], p.now), options) : formatTable(p.kind, objects, options)).trimEnd());
}

/** The time a (possibly sped-up) file-mode `vireo run` last noted in its state directory; 0 when none. */
export function notedTime(stateDir: string): number {
  const path = join(stateDir, "clock");
  const value = existsSync(path) ? Number(readFileSync(path, "utf8")) : 0;
  return Number.isFinite(value) ? value : 0;
}

export async function listFromApi(kubeconfig: string, kind: Kind): Promise<VireoObject[]> {
  const { KubeClient, describeApiError, resourceOf } = await import("../sources/kube/client.ts");
  const client = new KubeClient({ kubeconfig, clock: new RealClock() });
  const r = resourceOf(kind);
  try {
    const list = await client.call("list", r.plural, () => client.custom.listClusterCustomObject({ group: r.group, version: r.version, plural: r.plural })) as { items: VireoObject[] };
    return list.items.map((o) => ({ ...o, kind }) as VireoObject);
  } catch (error) {
    throw new Error(`listing ${r.plural}.${r.group} from ${client.server()}: ${describeApiError(error)}`, { cause: error });
  }
}

function printErrors(errors: readonly ManifestError[], io: Output, always: boolean): number {
  if (errors.length === 0) {
    if (always) io.out("no manifest errors");
    return 0;
  }
  io.err(`Warning: ${errors.length} manifest error${errors.length === 1 ? "" : "s"} (the last good version of these files stays in force):`);
  for (const e of errors) io.err(`  ${formatManifestError(e)}`);
  return always ? 1 : 0;
}

function byNamespaceAndName(a: VireoObject, b: VireoObject): number {
  const ns = (a.metadata.namespace ?? "").localeCompare(b.metadata.namespace ?? "");
  return ns !== 0 ? ns : a.metadata.name.localeCompare(b.metadata.name);
}
