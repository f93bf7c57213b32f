// Status, finalizers and events through the API server. Status goes through the status subresource as a
// JSON merge patch carrying the resourceVersion it was computed from: the API server refuses it with 409
// if the object changed meanwhile, so Vireo never overwrites newer status; it re-reads and tries again.
// A merge patch only removes what it sets to null, so the patch names, as null, every key the previous
// status had and the new one leaves out: status on the server says what the planner says, no more.

import type { VireoObject } from "../../api/types.ts";
import { keyOf } from "../../api/types.ts";
import type { EventRecorder, EventType, StatusWriter } from "../../engine/context.ts";
import type { ObjectStore } from "../store.ts";
import type { Logger } from "../../observe/log.ts";
import type { Clock } from "../../core/clock.ts";
import type { KubeClient } from "./client.ts";
import { resourceOf, statusOf } from "./client.ts";
import { MERGE_PATCH } from "./apis.ts";
import { TokenBucket } from "../../engine/ratelimit.ts";
import { storedForm } from "./stored-form.ts";

export const FINALIZER = "vireo.dev/cleanup";
/** Events' own budget, apart from status writes: client-go's event spam filter allows bursts of 25. */
const EVENT_QPS = 50;
const EVENT_BURST = 100;
const EVENT_BACKLOG = 1_000;
/** Events remembered to count repeats, as client-go's recorder keeps an LRU of 4,096. */
const RECENT_EVENTS = 5_000;
export const FIELD_MANAGER = "vireo";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The JSON merge patch (RFC 7386) that turns status `before` into status `after`: all of `after`, and null
 * for every key `before` has and `after` leaves out — at the top and, where both hold an object under the
 * same key, inside it, recursively. Arrays (conditions, say) need nothing more: a merge patch replaces
 * them whole. Applied to `before`, it gives exactly `after`.
 */
export function statusMergePatch(before: unknown, after: unknown): Json {
  if (!isObject(after)) return (after ?? null) as Json;
  const previous: JsonObject = isObject(before) ? before : {};
  const patch = nullsForDropped(previous, after);
  for (const [key, value] of Object.entries(after)) {
    if (value !== undefined) patch[key] = isObject(previous[key]) && isObject(value) ? statusMergePatch(previous[key], value) : value;
  }
  return patch;
}

function nullsForDropped(before: JsonObject, after: JsonObject): JsonObject {
  const nulls: JsonObject = {};
  for (const [key, value] of Object.entries(before)) if (value !== undefined && after[key] === undefined) nulls[key] = null;
  return nulls;
}

/** The object changed on the server since it was read; the caller re-reads and reconciles again. */
export class ConflictError extends Error {
  constructor(key: string, options?: { cause?: unknown }) {
    super(`${key} changed on the server; re-reading it`, options);
    this.name = "ConflictError";
  }
}

export class KubeStatusWriter implements StatusWriter {
  private readonly client: KubeClient;
  private readonly store: ObjectStore;

  constructor(client: KubeClient, store: ObjectStore) {
    this.client = client;
    this.store = store;
  }

  async writeStatus(object: Readonly<VireoObject>, status: NonNullable<VireoObject["status"]>): Promise<void> {
    const body = { metadata: { resourceVersion: object.metadata.resourceVersion }, status: statusMergePatch(object.status, status) };
    const updated = await this.patch(object, body, true);
    this.store.upsert(updated);
  }

  /** Adds Vireo's finalizer, so deleting the object waits until its VMs are gone from the hosts. */
  async ensureFinalizer(object: Readonly<VireoObject>): Promise<void> {
    const finalizers = object.metadata.finalizers ?? [];
    if (finalizers.includes(FINALIZER) || object.metadata.deletionTimestamp) return;
    const updated = await this.patch(object, { metadata: { resourceVersion: object.metadata.resourceVersion, finalizers: [...finalizers, FINALIZER] } }, false);
    this.store.upsert(updated);
  }

  async removeFinalizer(object: Readonly<VireoObject>): Promise<void> {
    const finalizers = object.metadata.finalizers ?? [];
    if (!finalizers.includes(FINALIZER)) return;
    await this.patch(object, { metadata: { resourceVersion: object.metadata.resourceVersion, finalizers: finalizers.filter((f) => f !== FINALIZER) } }, false);
  }

  private async patch(object: Readonly<VireoObject>, body: object, status: boolean): Promise<VireoObject> {
    const r = resourceOf(object.kind);
    const { name, namespace } = object.metadata;
    try {
      const result = await this.client.call("patch", status ? `${r.plural}/status` : r.plural, () => {
        if (r.namespaced) {
          const params = { group: r.group, version: r.version, plural: r.plural, namespace: namespace!, name, body, fieldManager: FIELD_MANAGER };
          return status ? this.client.custom.patchNamespacedCustomObjectStatus(params, MERGE_PATCH) : this.client.custom.patchNamespacedCustomObject(params, MERGE_PATCH);
        }
        const params = { group: r.group, version: r.version, plural: r.plural, name, body, fieldManager: FIELD_MANAGER };
        return status ? this.client.custom.patchClusterCustomObjectStatus(params, MERGE_PATCH) : this.client.custom.patchClusterCustomObject(params, MERGE_PATCH);
      });
      return storedForm({ ...(result as VireoObject), kind: object.kind } as VireoObject);
    } catch (error) {
      if (statusOf(error) === 409) {
        await this.reread(object);
        throw new ConflictError(keyOf(object as VireoObject), { cause: error });
      }
      if (statusOf(error) === 404) throw new ConflictError(keyOf(object as VireoObject), { cause: error });
      throw error;
    }
  }

  /** Refreshes the store from the server after a conflict, so the retry starts from what is there now. */
  private async reread(object: Readonly<VireoObject>): Promise<void> {
    const r = resourceOf(object.kind);
    const { name, namespace } = object.metadata;
    try {
      const fresh = await this.client.call("get", r.plural, () => r.namespaced
        ? this.client.custom.getNamespacedCustomObject({ group: r.group, version: r.version, plural: r.plural, namespace: namespace!, name })
        : this.client.custom.getClusterCustomObject({ group: r.group, version: r.version, plural: r.plural, name }));
      this.store.upsert(storedForm({ ...(fresh as VireoObject), kind: object.kind } as VireoObject));
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
    }
  }
}

/**
 * Kubernetes Events for what an operator wants to see in `kubectl describe`. Repeats of the same event
 * within ten minutes bump its count instead of creating another, as client-go's recorder does.
 * Recording never blocks or fails a reconcile, and events never take the API budget that status needs:
 * they have their own rate limit, and past a backlog they are dropped (counted), as client-go drops
 * events when its broadcaster's queue is full.
 */
export class KubeEventRecorder implements EventRecorder {
  private readonly client: KubeClient;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly recent = new Map<string, { name: string; namespace: string; count: number; at: number }>();
  private readonly bucket: TokenBucket;
  private backlog = 0;
  private dropped = 0;

  constructor(client: KubeClient, clock: Clock, log: Logger) {
    this.client = client;
    this.clock = clock;
    this.log = log;
    this.bucket = new TokenBucket({ qps: EVENT_QPS, burst: EVENT_BURST, clock });
  }

  record(object: Readonly<VireoObject>, type: EventType, reason: string, message: string): void {
    if (this.backlog >= EVENT_BACKLOG) {
      if (this.dropped++ % 100 === 0) this.log.warn({ dropped: this.dropped }, "too many events waiting; dropping some");
      return;
    }
    this.backlog++;
    this.bucket.take()
      .then(() => this.send(object, type, reason, message))
      .catch((error: unknown) => this.log.warn({ err: error, reason }, "recording an event failed"))
      .finally(() => { this.backlog--; });
  }

  private async send(object: Readonly<VireoObject>, type: EventType, reason: string, message: string): Promise<void> {
    const now = this.clock.now();
    const iso = new Date(now).toISOString();
    const namespace = object.metadata.namespace ?? "default";
    const dedupKey = `${object.metadata.uid}/${type}/${reason}/${message}`;
    const previous = this.recent.get(dedupKey);
    if (previous && now - previous.at < 600_000) {
      previous.count++;
      previous.at = now;
      await this.client.call("patch", "events", () => this.client.core.patchNamespacedEvent(
        { name: previous.name, namespace: previous.namespace, body: { count: previous.count, lastTimestamp: iso } }, MERGE_PATCH));
      return;
    }
    const name = `${object.metadata.name}.${now.toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`;
    await this.client.call("create", "events", () => this.client.core.createNamespacedEvent({
      namespace,
      body: {
        metadata: { name, namespace },
        involvedObject: { apiVersion: object.apiVersion, kind: object.kind, name: object.metadata.name, namespace: object.metadata.namespace, uid: object.metadata.uid, resourceVersion: object.metadata.resourceVersion },
        reason, message, type,
        source: { component: "vireo-controller" },
        reportingComponent: "vireo.dev/controller",
        reportingInstance: process.env["POD_NAME"] ?? "vireo",
        firstTimestamp: iso as unknown as Date, lastTimestamp: iso as unknown as Date, count: 1,
      },
    }));
    this.recent.set(dedupKey, { name, namespace, count: 1, at: now });
    if (this.recent.size > RECENT_EVENTS) this.forgetOldest();
  }

  /** Forgets events past the ten minutes, then, if still too many, the earliest recorded: the cache is bounded. */
  private forgetOldest(): void {
    const cutoff = this.clock.now() - 600_000;
    for (const [key, entry] of this.recent) if (entry.at < cutoff) this.recent.delete(key);
    for (const key of this.recent.keys()) {
      if (this.recent.size <= RECENT_EVENTS * 0.9) break;
      this.recent.delete(key);
    }
  }
}
