// The objects Vireo makes (a lab's VirtualMachines), through the API server. Apply is server-side apply
// with field manager "vireo", forced: the object is created if absent, and the fields Vireo states —
// spec, labels, annotations, owner references — become Vireo's, so a person's edit of them is taken back
// on the next reconcile, as the store writer would overwrite it in the file mode. A field Vireo stated
// before and states no more is removed. Status (the status subresource) and Vireo's finalizer (its own
// merge patches, another field set) are left alone. The server's answer goes into the store at once, so
// the next reconcile sees it without waiting for the watch, as KubeStatusWriter does for status.

import type { VireoObject } from "../../api/types.ts";
import { keyOf } from "../../api/types.ts";
import type { ObjectWriter } from "../../engine/context.ts";
import type { ObjectStore } from "../store.ts";
import type { KubeClient, ResourceInfo } from "./client.ts";
import { describeApiError, resourceOf, statusOf } from "./client.ts";
import { ConflictError, FIELD_MANAGER } from "./writer.ts";
import { APPLY_PATCH } from "./apis.ts";
import { storedForm } from "./stored-form.ts";

/** What Vireo states of an object: identity, labels, annotations, owner references and spec — never status. */
export function applyConfiguration(object: Readonly<VireoObject>): Record<string, unknown> {
  const { name, namespace, labels, annotations, ownerReferences } = object.metadata;
  const metadata = {
    name,
    ...(namespace !== undefined && resourceOf(object.kind).namespaced ? { namespace } : {}),
    ...(labels !== undefined ? { labels } : {}),
    ...(annotations !== undefined ? { annotations } : {}),
    ...(ownerReferences !== undefined ? { ownerReferences } : {}),
  };
  return { apiVersion: object.apiVersion, kind: object.kind, metadata, spec: object.spec };
}

export class KubeObjectWriter implements ObjectWriter {
  private readonly client: KubeClient;
  private readonly store: ObjectStore;

  constructor(client: KubeClient, store: ObjectStore) {
    this.client = client;
    this.store = store;
  }

  async apply(object: Readonly<VireoObject>): Promise<void> {
    const r = resourceOf(object.kind);
    const { name, namespace } = object.metadata;
    const body = applyConfiguration(object);
    try {
      const result = await this.client.call("patch", r.plural, () => {
        const params = { group: r.group, version: r.version, plural: r.plural, name, body, fieldManager: FIELD_MANAGER, force: true };
        return r.namespaced
          ? this.client.custom.patchNamespacedCustomObject({ ...params, namespace: namespace ?? "default" }, APPLY_PATCH)
          : this.client.custom.patchClusterCustomObject(params, APPLY_PATCH);
      });
      this.store.upsert(storedForm({ ...(result as VireoObject), kind: object.kind } as VireoObject));
    } catch (error) {
      // A forced apply has no field conflicts; a 409 is a race with another create of the same name.
      if (statusOf(error) === 409) throw new ConflictError(keyOf(object as VireoObject), { cause: error });
      throw new Error(`applying ${describeObject(object)}: ${describeApiError(error)}`, { cause: error });
    }
  }

  /**
   * Deletes the object Vireo read (a precondition on its uid: never a namesake made since), and its
   * dependents in the background. While finalizers hold it, the store keeps it with its deletion time.
   */
  async delete(object: Readonly<VireoObject>): Promise<void> {
    const r = resourceOf(object.kind);
    const key = keyOf(object as VireoObject);
    try {
      const result = await this.client.call("delete", r.plural, () => this.send(r, object));
      const remaining = result as Partial<VireoObject> | undefined;
      if (remaining?.metadata?.deletionTimestamp && (remaining.metadata.finalizers ?? []).length > 0) {
        this.store.upsert(storedForm({ ...(remaining as VireoObject), kind: object.kind } as VireoObject));
      } else {
        this.store.delete(key);
      }
    } catch (error) {
      const status = statusOf(error);
      if (status === 404) {
        this.store.delete(key);
        return;
      }
      // The uid precondition failed: the object Vireo meant is gone, and another of its name is there.
      if (status === 409) throw new ConflictError(key, { cause: error });
      throw new Error(`deleting ${describeObject(object)}: ${describeApiError(error)}`, { cause: error });
    }
  }

  private send(r: ResourceInfo, object: Readonly<VireoObject>): Promise<unknown> {
    const { name, namespace, uid } = object.metadata;
    const propagationPolicy = "Background";
    const body = { propagationPolicy, ...(uid !== undefined ? { preconditions: { uid } } : {}) };
    const params = { group: r.group, version: r.version, plural: r.plural, name, propagationPolicy, body };
    return r.namespaced
      ? this.client.custom.deleteNamespacedCustomObject({ ...params, namespace: namespace ?? "default" })
      : this.client.custom.deleteClusterCustomObject(params);
  }
}

function describeObject(object: Readonly<VireoObject>): string {
  const { name, namespace } = object.metadata;
  return `${object.kind} ${namespace !== undefined ? `${namespace}/` : ""}${name}`;
}
