// How the command line asks a running Vireo to move a VM: a VirtualMachineMigration, created through the
// API server (the API mode), or dropped as a manifest into the state directory's requests/ that the
// file mode's `vireo run` watches (never into the watched checkout). Then it follows the request's status.

import { mkdirSync, existsSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { dump } from "js-yaml";
import type { Hypervisor, VirtualMachineMigration, VireoObject } from "../api/types.ts";
import { API_VERSION, keyOf, objectKey } from "../api/types.ts";
import { validateManifest } from "../api/schema.ts";
import { writeFileAtomic } from "../state/atomic-write.ts";
import { readSnapshot } from "../state/state-dir.ts";
import { RealClock } from "../core/clock.ts";
import { UsageError } from "./args.ts";

/** The state directory's folder of requests the file mode watches. */
export const REQUESTS_DIR = "requests";

export interface RequestTarget {
  stateDir: string;
  kubeconfig?: string;
}

/** A new VirtualMachineMigration for `namespace/vm`, named as kubectl's generateName would. */
export interface MigrationAsk {
  targetHost?: string;
  /** Another hypervisor type: a conversion. */
  targetHypervisor?: Hypervisor;
  mode: "Live" | "Cold";
  /** A conversion gives the NICs new MACs (false) or keeps them (true, the default). */
  keepMacAddresses?: boolean;
  labels?: Record<string, string>;
}

export function migrationRequest(namespace: string, vm: string, options: MigrationAsk): VirtualMachineMigration {
  const name = `${vm.slice(0, 50)}-migration-${randomBytes(3).toString("hex").slice(0, 5)}`;
  const request: VirtualMachineMigration = {
    apiVersion: API_VERSION,
    kind: "VirtualMachineMigration",
    metadata: { name, namespace, ...(options.labels ? { labels: options.labels } : {}) },
    spec: {
      vmName: vm,
      mode: options.mode,
      keepMacAddresses: options.keepMacAddresses ?? true,
      ...(options.targetHost ? { targetHost: options.targetHost } : {}),
      ...(options.targetHypervisor ? { targetHypervisor: options.targetHypervisor } : {}),
    },
  };
  const checked = validateManifest(request);
  if (!checked.ok) throw new UsageError(checked.errors.map((e) => `${e.path}: ${e.message}`).join("; "));
  return request;
}

/** Submits the request where the running Vireo reads it. */
export async function submit(target: RequestTarget, request: VirtualMachineMigration): Promise<void> {
  if (target.kubeconfig !== undefined) return createInApi(target.kubeconfig, request);
  if (!existsSync(join(target.stateDir, "objects.json"))) throw new UsageError(`no state in ${target.stateDir}: is \`vireo run --manifests\` running there?`);
  const dir = join(target.stateDir, REQUESTS_DIR);
  mkdirSync(dir, { recursive: true });
  await writeFileAtomic(join(dir, `${request.metadata.namespace}.${request.metadata.name}.yaml`), dump(request));
}

/** The request as the running Vireo last wrote it, or undefined while it has not seen it yet. */
export async function readRequest(target: RequestTarget, namespace: string, name: string): Promise<VirtualMachineMigration | undefined> {
  if (target.kubeconfig !== undefined) return getFromApi(target.kubeconfig, namespace, name);
  const key = objectKey("VirtualMachineMigration", name, namespace);
  const snapshot = readSnapshot(join(target.stateDir, "objects.json"));
  return snapshot?.objects.map((e) => e.object).find((o: VireoObject) => keyOf(o) === key) as VirtualMachineMigration | undefined;
}

async function createInApi(kubeconfig: string, request: VirtualMachineMigration): Promise<void> {
  const { KubeClient, describeApiError, resourceOf } = await import("../sources/kube/client.ts");
  const client = new KubeClient({ kubeconfig, clock: new RealClock() });
  const r = resourceOf("VirtualMachineMigration");
  try {
    await client.call("create", r.plural, () => client.custom.createNamespacedCustomObject({ group: r.group, version: r.version, plural: r.plural, namespace: request.metadata.namespace!, body: request }));
  } catch (error) {
    throw new Error(`creating ${r.plural}.${r.group} ${request.metadata.namespace}/${request.metadata.name} on ${client.server()}: ${describeApiError(error)}`, { cause: error });
  }
}

async function getFromApi(kubeconfig: string, namespace: string, name: string): Promise<VirtualMachineMigration | undefined> {
  const { KubeClient, describeApiError, resourceOf, statusOf } = await import("../sources/kube/client.ts");
  const client = new KubeClient({ kubeconfig, clock: new RealClock() });
  const r = resourceOf("VirtualMachineMigration");
  try {
    const object = await client.call("get", r.plural, () => client.custom.getNamespacedCustomObject({ group: r.group, version: r.version, plural: r.plural, namespace, name }));
    return { ...(object as VirtualMachineMigration), kind: "VirtualMachineMigration" };
  } catch (error) {
    if (statusOf(error) === 404) return undefined;
    throw new Error(`reading ${r.plural}.${r.group} ${namespace}/${name} from ${client.server()}: ${describeApiError(error)}`, { cause: error });
  }
}

