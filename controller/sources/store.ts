// The one store of desired objects. Sources (files/, kube/) write into it; the engine reads from it.
// Listeners hear of every change and only enqueue keys: they decide nothing.

import type { Fault, HAPolicy, Host, HostCluster, Kind, LabTopology, RecoveryPlan, VireoObject, VirtualMachine, VirtualMachineMigration } from "../api/types.ts";
import { keyOf } from "../api/types.ts";

export type StoreEvent = { type: "upsert"; key: string; object: VireoObject; previous?: VireoObject } | { type: "delete"; key: string; previous: VireoObject };

export type StoreListener = (event: StoreEvent) => void;

type ObjectOf<K extends Kind> = K extends "Host" ? Host
  : K extends "HostCluster" ? HostCluster
  : K extends "HAPolicy" ? HAPolicy
  : K extends "Fault" ? Fault
  : K extends "VirtualMachineMigration" ? VirtualMachineMigration
  : K extends "RecoveryPlan" ? RecoveryPlan
  : K extends "LabTopology" ? LabTopology
  : VirtualMachine;

export class ObjectStore {
  private readonly objects = new Map<string, VireoObject>();
  private readonly byKind = new Map<Kind, Map<string, VireoObject>>();
  private readonly listeners: StoreListener[] = [];
  /** Moves with every upsert and delete (not with status): what derived views are kept against. */
  private version = 0;
  private readonly views = new Map<string, { version: number; value: unknown }>();

  get(key: string): VireoObject | undefined {
    return this.objects.get(key);
  }

  list<K extends Kind>(kind: K): ObjectOf<K>[] {
    return [...(this.byKind.get(kind)?.values() ?? [])] as ObjectOf<K>[];
  }

  /**
   * A view computed from the objects' specs, labels and metadata (never their status), kept until an
   * object is upserted or deleted: an index many reconciles ask for costs one pass per change, not per ask.
   */
  derived<T>(name: string, compute: () => T): T {
    const cached = this.views.get(name);
    if (cached?.version === this.version) return cached.value as T;
    const value = compute();
    this.views.set(name, { version: this.version, value });
    return value;
  }

  count(kind: Kind): number {
    return this.byKind.get(kind)?.size ?? 0;
  }

  /** Adds or replaces an object (spec and metadata as the source has them). */
  upsert(object: VireoObject): void {
    const key = keyOf(object);
    const previous = this.objects.get(key);
    this.version++;
    this.objects.set(key, object);
    this.kindMap(object.kind).set(key, object);
    this.emit(previous ? { type: "upsert", key, object, previous } : { type: "upsert", key, object });
  }

  delete(key: string): void {
    const previous = this.objects.get(key);
    if (!previous) return;
    this.version++;
    this.objects.delete(key);
    this.byKind.get(previous.kind)?.delete(key);
    this.emit({ type: "delete", key, previous });
  }

  /** Records status Vireo has written, without waking anyone: status is the loop's output, not its input. */
  setStatus(key: string, status: VireoObject["status"]): void {
    const object = this.objects.get(key);
    if (!object) return;
    const updated = { ...object, status } as VireoObject;
    this.objects.set(key, updated);
    this.kindMap(object.kind).set(key, updated);
  }

  onChange(listener: StoreListener): void {
    this.listeners.push(listener);
  }

  private kindMap(kind: Kind): Map<string, VireoObject> {
    let map = this.byKind.get(kind);
    if (!map) {
      map = new Map();
      this.byKind.set(kind, map);
    }
    return map;
  }

  private emit(event: StoreEvent): void {
    for (const listener of this.listeners) listener(event);
  }
}
