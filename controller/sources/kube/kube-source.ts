// The API mode's source of desired state: an informer per Vireo kind feeding the one store, exactly
// where the file mode's watcher feeds it. Finalizers and status go back through the same client. When
// the API server comes back after an outage, the source says so once every kind has been listed again.

import { Counter, type Registry } from "prom-client";
import type { Kind, VireoObject } from "../../api/types.ts";
import { KINDS, keyOf } from "../../api/types.ts";
import type { Clock } from "../../core/clock.ts";
import type { Finalizers } from "../../engine/context.ts";
import type { ObjectStore } from "../store.ts";
import type { Logger } from "../../observe/log.ts";
import type { KubeClient } from "./client.ts";
import { resourceOf } from "./client.ts";
import { Informer } from "./informer.ts";
import { storedForm } from "./stored-form.ts";
import type { KubeStatusWriter } from "./writer.ts";

export interface KubeSourceOptions {
  client: KubeClient;
  store: ObjectStore;
  clock: Clock;
  log: Logger;
  registry?: Registry;
  kinds?: readonly Kind[];
  quietDeadlineMs?: number;
}

export class KubeSource {
  private readonly informers: Informer[];
  readonly watchRestarts: Counter<"kind" | "reason">;
  private readonly log: Logger;
  private readonly store: ObjectStore;
  private readonly clock: Clock;
  /** Informers that lost the server and have not listed again yet, and since when the first did. */
  private readonly behind = new Set<Kind>();
  private lostAt = 0;

  constructor(options: KubeSourceOptions) {
    this.log = options.log;
    this.store = options.store;
    this.clock = options.clock;
    this.watchRestarts = new Counter({
      name: "vireo_watch_restarts_total",
      help: "Watches on the API server restarted, by kind and reason (closed, quiet, expired, error).",
      labelNames: ["kind", "reason"] as const,
      registers: options.registry ? [options.registry] : [],
    });
    this.informers = (options.kinds ?? KINDS).map((kind) => new Informer({
      client: options.client,
      resource: resourceOf(kind),
      clock: options.clock,
      log: options.log,
      restarts: this.watchRestarts,
      handlers: {
        upsert: (o: VireoObject) => { if (!olderThanStored(options.store, o)) options.store.upsert(storedForm(o)); },
        delete: (key: string) => options.store.delete(key),
        lost: () => this.lost(kind),
        resynced: () => this.resynced(kind),
      },
      ...(options.quietDeadlineMs ? { quietDeadlineMs: options.quietDeadlineMs } : {}),
    }));
  }

  /** Lists every kind (the store is complete when this resolves) and keeps watching. */
  async start(): Promise<void> {
    await Promise.all(this.informers.map((i) => i.start()));
  }

  hasSynced(): boolean {
    return this.informers.every((i) => i.hasSynced());
  }

  stop(): void {
    for (const informer of this.informers) informer.stop();
  }

  private lost(kind: Kind): void {
    if (this.behind.size === 0) this.lostAt = this.clock.now();
    this.behind.add(kind);
  }

  /** Once every informer has listed again, the store is complete again: said once, as at the start. */
  private resynced(kind: Kind): void {
    if (!this.behind.delete(kind) || this.behind.size > 0) return;
    const s = this.store;
    const outage = ((this.clock.now() - this.lostAt) / 1000).toFixed(1);
    this.log.info({ outageSeconds: Number(outage) }, `synced again after losing the API server for ${outage} s: ${s.count("Host")} hosts in ${s.count("HostCluster")} clusters, ${s.count("VirtualMachine")} VMs`);
  }
}

/**
 * Whether a watch event carries an older version than the store holds. Vireo stores the answer to its own
 * writes at once; a watch event for an earlier version can still arrive after it, and storing that would
 * make the next write carry a stale resourceVersion and fail with a conflict. resourceVersions are opaque,
 * but the API server's are integers from etcd; anything else is never treated as older.
 */
function olderThanStored(store: ObjectStore, object: VireoObject): boolean {
  const stored = store.get(keyOf(object))?.metadata.resourceVersion;
  const incoming = object.metadata.resourceVersion;
  if (!stored || !incoming || !/^\d+$/.test(stored) || !/^\d+$/.test(incoming)) return false;
  return BigInt(incoming) < BigInt(stored);
}

export function finalizersVia(writer: KubeStatusWriter): Finalizers {
  return { ensure: (o) => writer.ensureFinalizer(o), remove: (o) => writer.removeFinalizer(o) };
}
