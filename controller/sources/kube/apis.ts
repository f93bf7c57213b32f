// The few API calls Vireo makes — its custom objects, Events and the leader Lease — named as
// @kubernetes/client-node names them, over Vireo's own transport: the generated client would load every
// Kubernetes API's models (about 80 MB resident) to make these eleven calls.

import type { CoreV1Event, V1Lease } from "@kubernetes/client-node";
import type { ApiTransport } from "./transport.ts";

export const MERGE_PATCH = "application/merge-patch+json";
export const APPLY_PATCH = "application/apply-patch+yaml";
export type PatchType = typeof MERGE_PATCH | typeof APPLY_PATCH;

interface Collection { group: string; version: string; plural: string; namespace?: string }
interface Named extends Collection { name: string }
interface Patch extends Named { body: unknown; fieldManager?: string; force?: boolean }
interface Deletion extends Named { propagationPolicy?: string; body?: unknown }

function path(c: Collection & { name?: string }, subresource?: string): string {
  const ns = c.namespace !== undefined ? `/namespaces/${encodeURIComponent(c.namespace)}` : "";
  const name = c.name !== undefined ? `/${encodeURIComponent(c.name)}` : "";
  return `/apis/${c.group}/${c.version}${ns}/${c.plural}${name}${subresource ? `/${subresource}` : ""}`;
}

export class CustomObjects {
  private readonly t: ApiTransport;

  constructor(transport: ApiTransport) {
    this.t = transport;
  }

  listClusterCustomObject(c: Collection): Promise<unknown> {
    return this.t.send({ method: "GET", path: path({ ...c, namespace: undefined }) });
  }

  getNamespacedCustomObject(o: Named & { namespace: string }): Promise<unknown> {
    return this.t.send({ method: "GET", path: path(o) });
  }

  getClusterCustomObject(o: Named): Promise<unknown> {
    return this.t.send({ method: "GET", path: path({ ...o, namespace: undefined }) });
  }

  createNamespacedCustomObject(o: Collection & { namespace: string; body: unknown }): Promise<unknown> {
    return this.t.send({ method: "POST", path: path(o), body: o.body });
  }

  patchNamespacedCustomObject(o: Patch & { namespace: string }, type: PatchType): Promise<unknown> {
    return this.patch(path(o), o, type);
  }

  patchNamespacedCustomObjectStatus(o: Patch & { namespace: string }, type: PatchType): Promise<unknown> {
    return this.patch(path(o, "status"), o, type);
  }

  patchClusterCustomObject(o: Patch, type: PatchType): Promise<unknown> {
    return this.patch(path({ ...o, namespace: undefined }), o, type);
  }

  patchClusterCustomObjectStatus(o: Patch, type: PatchType): Promise<unknown> {
    return this.patch(path({ ...o, namespace: undefined }, "status"), o, type);
  }

  deleteNamespacedCustomObject(o: Deletion & { namespace: string }): Promise<unknown> {
    return this.t.send({ method: "DELETE", path: path(o), query: { propagationPolicy: o.propagationPolicy }, body: o.body });
  }

  deleteClusterCustomObject(o: Deletion): Promise<unknown> {
    return this.t.send({ method: "DELETE", path: path({ ...o, namespace: undefined }), query: { propagationPolicy: o.propagationPolicy }, body: o.body });
  }

  private patch(at: string, o: Patch, type: PatchType): Promise<unknown> {
    return this.t.send({ method: "PATCH", path: at, query: { fieldManager: o.fieldManager, force: o.force }, body: o.body, contentType: type });
  }
}

export class CoreEvents {
  private readonly t: ApiTransport;

  constructor(transport: ApiTransport) {
    this.t = transport;
  }

  createNamespacedEvent(o: { namespace: string; body: CoreV1Event }): Promise<CoreV1Event> {
    return this.t.send({ method: "POST", path: `/api/v1/namespaces/${encodeURIComponent(o.namespace)}/events`, body: o.body });
  }

  patchNamespacedEvent(o: { name: string; namespace: string; body: unknown }, type: PatchType): Promise<CoreV1Event> {
    return this.t.send({ method: "PATCH", path: `/api/v1/namespaces/${encodeURIComponent(o.namespace)}/events/${encodeURIComponent(o.name)}`, body: o.body, contentType: type });
  }
}

export class Leases {
  private readonly t: ApiTransport;

  constructor(transport: ApiTransport) {
    this.t = transport;
  }

  readNamespacedLease(o: { name: string; namespace: string }): Promise<V1Lease> {
    return this.t.send({ method: "GET", path: leasePath(o.namespace, o.name) });
  }

  replaceNamespacedLease(o: { name: string; namespace: string; body: V1Lease }): Promise<V1Lease> {
    return this.t.send({ method: "PUT", path: leasePath(o.namespace, o.name), body: o.body });
  }

  createNamespacedLease(o: { namespace: string; body: V1Lease }): Promise<V1Lease> {
    return this.t.send({ method: "POST", path: leasePath(o.namespace), body: o.body });
  }
}

function leasePath(namespace: string, name?: string): string {
  return `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases${name !== undefined ? `/${encodeURIComponent(name)}` : ""}`;
}
