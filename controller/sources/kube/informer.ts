// List and watch one kind, keeping the store in step with the API server, as client-go's reflector does:
// list, then watch from the list's resourceVersion; re-watch when the server closes a watch; re-list when
// the resourceVersion has expired (410 Gone); back off with jitter on errors; and restart a watch that
// has gone quiet past a deadline — a half-open connection otherwise looks like a calm cluster forever.

import { Watch } from "@kubernetes/client-node";
import type { Counter } from "prom-client";
import type { VireoObject } from "../../api/types.ts";
import { keyOf } from "../../api/types.ts";
import type { Clock, Timer } from "../../core/clock.ts";
import type { Logger } from "../../observe/log.ts";
import type { KubeClient, ResourceInfo } from "./client.ts";
import { describeApiError, pathOf, statusOf } from "./client.ts";

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED";

export interface InformerHandlers {
  upsert(object: VireoObject): void;
  delete(key: string): void;
}

export interface InformerOptions {
  client: KubeClient;
  resource: ResourceInfo;
  clock: Clock;
  log: Logger;
  handlers: InformerHandlers;
  restarts: Counter<"kind" | "reason">;
  random?: () => number;
  /** A watch with no event, not even a bookmark, for this long is restarted. */
  quietDeadlineMs?: number;
}

/** Bookmarks arrive about once a minute; a watch silent for longer than this is presumed dead. */
export const DEFAULT_QUIET_DEADLINE_MS = 90_000;
const BACKOFF_BASE_MS = 800;
const BACKOFF_MAX_MS = 30_000;

type RestartReason = "closed" | "quiet" | "expired" | "error";

export class Informer {
  private readonly o: InformerOptions;
  private readonly random: () => number;
  private readonly quietDeadlineMs: number;
  private readonly known = new Map<string, VireoObject>();
  private resourceVersion = "";
  private abort: AbortController | undefined;
  private quietTimer: Timer | undefined;
  private retryTimer: Timer | undefined;
  private failures = 0;
  private stopped = false;
  private synced = false;

  constructor(options: InformerOptions) {
    this.o = options;
    this.random = options.random ?? Math.random;
    this.quietDeadlineMs = options.quietDeadlineMs ?? DEFAULT_QUIET_DEADLINE_MS;
  }

  /**
   * Lists (retrying with backoff while the API server cannot answer: it may be starting, or busy
   * re-initializing its cache), then keeps watching. Resolves once the first list succeeded.
   */
  async start(): Promise<void> {
    for (let attempt = 1; !this.stopped; attempt++) {
      try {
        await this.list();
        break;
      } catch (error) {
        const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (attempt - 1)) * (1 + this.random() * 0.2);
        this.o.log.warn({ kind: this.o.resource.kind, attempt, retryInMs: Math.round(delay) }, `listing ${this.o.resource.plural} failed (${describeApiError(error)}); retrying`);
        await this.o.clock.sleep(delay);
      }
    }
    this.synced = true;
    this.watch();
  }

  hasSynced(): boolean {
    return this.synced;
  }

  stop(): void {
    this.stopped = true;
    this.quietTimer?.cancel();
    this.retryTimer?.cancel();
    this.abort?.abort();
  }

  private async list(): Promise<void> {
    const { resource, client } = this.o;
    const list = await client.call("list", resource.plural, () =>
      client.custom.listClusterCustomObject({ group: resource.group, version: resource.version, plural: resource.plural })) as { items: VireoObject[]; metadata: { resourceVersion: string } };
    const seen = new Set<string>();
    for (const item of list.items) {
      const object = { ...item, kind: resource.kind } as VireoObject;
      const key = keyOf(object);
      seen.add(key);
      if (this.known.get(key)?.metadata.resourceVersion === object.metadata.resourceVersion) continue;
      this.known.set(key, object);
      this.o.handlers.upsert(object);
    }
    for (const key of [...this.known.keys()]) {
      if (seen.has(key)) continue;
      this.known.delete(key);
      this.o.handlers.delete(key);
    }
    this.resourceVersion = list.metadata.resourceVersion;
  }

  private watch(): void {
    if (this.stopped) return;
    const { resource, client } = this.o;
    const watch = new Watch(client.config);
    // The client aborts a watch after 30 s without a line; bookmarks come about once a minute, so an idle
    // but healthy watch would be torn down twice a minute. Vireo keeps its own, longer quiet deadline.
    (watch as unknown as { requestTimeoutMs: number }).requestTimeoutMs = this.quietDeadlineMs + 10_000;
    const timeoutSeconds = Math.floor(300 + this.random() * 300); // spread re-watches, as client-go does
    let ended = false;
    const end = (reason: RestartReason, error?: unknown) => {
      if (ended) return;
      ended = true;
      this.quietTimer?.cancel();
      this.restart(reason, error);
    };
    this.armQuietTimer(() => { this.abort?.abort(); end("quiet"); });
    client.call("watch", resource.plural, () => watch.watch(
      pathOf(resource),
      { resourceVersion: this.resourceVersion, allowWatchBookmarks: true, timeoutSeconds },
      (type, object: VireoObject & { code?: number }) => {
        this.armQuietTimer(() => { this.abort?.abort(); end("quiet"); });
        this.failures = 0;
        if (type === "ERROR") {
          end(object.code === 410 ? "expired" : "error", new Error(`watch error: ${JSON.stringify(object)}`));
          return;
        }
        if (object.metadata?.resourceVersion) this.resourceVersion = object.metadata.resourceVersion;
        if (type === "BOOKMARK") return;
        this.deliver(type as WatchEventType, { ...object, kind: resource.kind } as VireoObject);
      },
      (error: unknown) => {
        if (!error) end("closed");
        else if (statusOf(error) === 410) end("expired", error);
        else if ((error as { name?: string }).name === "TimeoutError") end("quiet", error);
        else end("error", error);
      },
    )).then(
      (abort) => { this.abort = abort; if (ended || this.stopped) abort.abort(); },
      (error: unknown) => end("error", error),
    );
  }

  private deliver(type: WatchEventType, object: VireoObject): void {
    const key = keyOf(object);
    if (type === "DELETED") {
      this.known.delete(key);
      this.o.handlers.delete(key);
      return;
    }
    this.known.set(key, object);
    this.o.handlers.upsert(object);
  }

  private restart(reason: RestartReason, error?: unknown): void {
    if (this.stopped) return;
    this.o.restarts.inc({ kind: this.o.resource.kind, reason });
    if (reason === "closed" || reason === "quiet") {
      this.watch();
      return;
    }
    this.failures++;
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (this.failures - 1)) * (1 + this.random() * 0.2);
    this.o.log.warn({ kind: this.o.resource.kind, reason, retryInMs: Math.round(delay) }, `watch of ${this.o.resource.plural} ended (${error === undefined ? reason : describeApiError(error)}); restarting`);
    this.retryTimer = this.o.clock.setTimer(delay, () => {
      // An expired resourceVersion needs a fresh list; after other errors the list also re-syncs
      // whatever changed while the watch was down.
      this.list().then(
        () => this.watch(),
        (listError: unknown) => this.restart("error", listError),
      );
    });
  }

  private armQuietTimer(onQuiet: () => void): void {
    this.quietTimer?.cancel();
    this.quietTimer = this.o.clock.setTimer(this.quietDeadlineMs, onQuiet);
  }
}
