// `vireo get vms|hosts|hostclusters|vmim|… [NAME] [-n NS] [-o wide|json|yaml]`: tables like `kubectl get`, from
// the state directory of a running or stopped `vireo run`, or with --kubeconfig from the API server.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { dump } from "js-yaml";
import type { Kind, VireoObject } from "../api/types.ts";
import { readSnapshot, type ManifestError } from "../state/state-dir.ts";
import { formatTable } from "./table.ts";
import { isNamespaced, kindForResource } from "../api/schema.ts";
import { formatManifestError } from "../sources/files/manifests.ts";
import { parseArgs, UsageError, type FlagSpec } from "./args.ts";
import { RealClock } from "../core/clock.ts";

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
  if (!kind) throw new UsageError(`the server doesn't have a resource type "${resource}" (try vms, hosts, hostclusters, hapolicies, faults, vmim)`);
  return kind;
}

export async function get(argv: readonly string[], io: Output, wallClock: number): Promise<number> {
  const { flags, positionals } = parseArgs(argv, GET_FLAGS);
  const [resource, name] = positionals;
  if (!resource) throw new UsageError("vireo get needs a resource type: vms, hosts, hostclusters or vmim");
  const kubeconfig = flags["kubeconfig"] as string | undefined;
  let now = wallClock;
  let all: VireoObject[];
  let manifestErrors: ManifestError[] = [];
  if (kubeconfig !== undefined) {
    if (resource === "errors" || resource === "manifesterrors") throw new UsageError("manifest errors belong to the file mode; the API server refuses bad manifests itself");
    all = await listFromApi(kubeconfig, resolveKind(resource));
  } else {
    const snapshot = readSnapshot(join(flags["state-dir"] as string, "objects.json"));
    if (!snapshot) {
      io.err(`no state in ${flags["state-dir"] as string}: is \`vireo run\` running there?`);
      return 1;
    }
    if (resource === "errors" || resource === "manifesterrors") return printErrors(snapshot.manifestErrors, io, true);
    all = snapshot.objects.map((e) => e.object);
    manifestErrors = snapshot.manifestErrors;
    // A sped-up `vireo run` stamps objects on its own clock, ahead of the wall clock: ages are measured on it.
    now = Math.max(now, notedTime(flags["state-dir"] as string));
  }

  const kind = resolveKind(resource);
  const namespace = flags["namespace"] as string | undefined;
  let objects = all.filter((o) => o.kind === kind);
  if (namespace !== undefined && isNamespaced(kind)) objects = objects.filter((o) => (o.metadata.namespace ?? "default") === namespace);
  if (name !== undefined) objects = objects.filter((o) => o.metadata.name === name);
  objects.sort(byNamespaceAndName);
  if (name !== undefined && objects.length === 0) {
    io.err(`Error from server (NotFound): ${resource} "${name}" not found`);
    return 1;
  }

  const output = flags["output"] as string | undefined;
  if (output === "json" || output === "yaml") {
    const body = name !== undefined ? objects[0] : { apiVersion: "v1", kind: "List", items: objects, metadata: { resourceVersion: "" } };
    io.out(output === "json" ? JSON.stringify(body, null, 4) : dump(body, { noRefs: true, lineWidth: -1 }).trimEnd());
  } else if (output === undefined || output === "wide") {
    if (objects.length === 0) io.err(namespace ? `No resources found in ${namespace} namespace.` : "No resources found");
    else io.out(formatTable(kind, objects, { wide: output === "wide", now, allNamespaces: isNamespaced(kind) && namespace === undefined }).trimEnd());
  } else {
    throw new UsageError(`unable to match a printer suitable for the output format "${output}", allowed formats are: json,wide,yaml`);
  }
  printErrors(manifestErrors, io, false);
  return 0;
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
