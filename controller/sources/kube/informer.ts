// List and watch one kind, keeping the store in step with the API server, as client-go's reflector does:
// list, then watch from the list's resourceVersion; re-watch when the server closes a watch; re-list when
// the resourceVersion has expired (410 Gone); back off with jitter on errors; and restart a watch that
// has gone quiet past a deadline — a half-open connection otherwise looks like a calm cluster forever.
// While the server restarts, it is probed every few seconds, not after a backoff grown to half a minute,
// and a Retry-After it sends is taken at its word: the informer is back within seconds of the server.

import type { Counter } from "prom-client";
import type { VireoObject } from "../../api/types.ts";
import { keyOf } from "../../api/types.ts";
import type { Clock, Timer } from "../../core/clock.ts";
import type { Logger } from "../../observe/log.ts";
import type { KubeClient, ResourceInfo } from "./client.ts";
import { describeApiError, isUnreachable, pathOf, retryAfterMs, statusOf } from "./client.ts";
import type { WatchEvent } from "./transport.ts";

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED";

export interface InformerHandlers {
  upsert(object: VireoObject): void;
  delete(key: string): void;
  /** The informer lost the server (a watch or list failed); its cache may now be behind. */
  lost?(): void;
  /** The informer listed again after losing the server: its cache is complete again. */
  resynced?(): void;
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
/** client-go's reflector backoff: 800 ms doubling to 30 s, for errors that waiting will not soon cure. */
const BACKOFF_BASE_MS = 800;
const BACKOFF_MAX_MS = 30_000;
/** A server that is unreachable or unavailable is most likely restarting: probe it at least this often. */
export const UNAVAILABLE_BACKOFF_MAX_MS = 2_000;

type RestartReason = "closed" | "quiet" | "expired" | "error";

export class Informer {
  private readonly o: InformerOptions;
  private readonly random: () => number;
  private readonly quietDeadlineMs: number;
  /** The resourceVersion of every object delivered: the store holds the objects themselves. */
  private readonly known = new Map<string, string>();
  private resourceVersion = "";
  private abort: (() => void) | undefined;
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
   * Lists (retrying while the API server cannot answer: it may be starting, or busy re-initializing its
   * cache), then keeps watching. Resolves once the first list succeeded.
   */
  async start(): Promise<void> {
    for (let attempt = 1; !this.stopped; attempt++) {
      try {
        await this.list();
        break;
      } catch (error) {
        const delay = this.backoff(error, attempt);
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
    this.abort?.();
  }

  private async list(): Promise<void> {
    const { resource, client } = this.o;
    const list = await client.call("list", resource.plural, () =>
      client.custom.listClusterCustomObject({ group: resource.group, version: resource.version, plural: resource.plural })) as { items: VireoObject[]; metadata: { resourceVersion: string } };
    const seen = new Set<string>();
    for (const item of list.items) {
      item.kind = resource.kind;
      const key = keyOf(item);
      seen.add(key);
      if (this.known.get(key) === item.metadata.resourceVersion) continue;
      this.known.set(key, item.metadata.resourceVersion ?? "");
      this.o.handlers.upsert(item);
    }
    for (const key of this.known.keys()) {
      if (seen.has(key)) continue;
      this.known.delete(key);
      this.o.handlers.delete(key);
    }
    this.resourceVersion = list.metadata.resourceVersion;
  }

  private watch(): void {
    if (this.stopped) return;
    const { resource, client } = this.o;
    const timeoutSeconds = Math.floor(300 + this.random() * 300); // spread re-watches, as client-go does
    let ended = false;
    const end = (reason: RestartReason, error?: unknown) => {
      if (ended) return;
      ended = true;
      this.quietTimer?.cancel();
      this.abort?.();
      this.restart(reason, error);
    };
    this.armQuietTimer(() => end("quiet"));
    client.call("watch", resource.plural, () => client.transport.watch(
      pathOf(resource),
      { resourceVersion: this.resourceVersion, allowWatchBookmarks: true, timeoutSeconds },
      (event: WatchEvent) => {
        this.armQuietTimer(() => end("quiet"));
        this.recovered();
        const object = event.object as unknown as VireoObject & { code?: number };
        if (event.type === "ERROR") {
          end(object.code === 410 ? "expired" : "error", new Error(`watch error: ${JSON.stringify(object)}`));
          return;
        }
        if (object.metadata?.resourceVersion) this.resourceVersion = object.metadata.resourceVersion;
        if (event.type === "BOOKMARK") return;
        object.kind = resource.kind;
        this.deliver(event.type as WatchEventType, object);
      },
      (error?: unknown) => {
        if (error === undefined) end("closed");
        else if (statusOf(error) === 410) end("expired", error);
        else end("error", error);
      },
    )).then(
      (abort) => { this.abort = abort; if (ended || this.stopped) abort(); },
      (error: unknown) => end(statusOf(error) === 410 ? "expired" : "error", error),
    );
  }

  private deliver(type: WatchEventType, object: VireoObject): void {
    const key = keyOf(object);
    if (type === "DELETED") {
      this.known.delete(key);
      this.o.handlers.delete(key);
      return;
    }
    this.known.set(key, object.metadata.resourceVersion ?? "");
    this.o.handlers.upsert(object);
  }

  private restart(reason: RestartReason, error?: unknown): void {
    if (this.stopped) return;
    this.o.restarts.inc({ kind: this.o.resource.kind, reason });
    if (reason === "closed" || reason === "quiet") {
      this.watch();
      return;
    }
    if (this.failures++ === 0) this.o.handlers.lost?.();
    const delay = this.backoff(error, this.failures);
    // The first failure of an outage is worth a warning; the probes that follow are not.
    const level = this.failures === 1 ? "warn" : "debug";
    this.o.log[level]({ kind: this.o.resource.kind, reason, failures: this.failures, retryInMs: Math.round(delay) }, `watch of ${this.o.resource.plural} ended (${error === undefined ? reason : describeApiError(error)}); restarting`);
    this.retryTimer = this.o.clock.setTimer(delay, () => {
      // An expired resourceVersion needs a fresh list; after other errors the list also re-syncs
      // whatever changed while the watch was down.
      this.list().then(
        () => { this.recovered(); this.watch(); },
        (listError: unknown) => this.restart("error", listError),
      );
    });
  }

  /** After failures, a list or a watch event succeeded: the cache is current again. */
  private recovered(): void {
    if (this.failures === 0) return;
    this.failures = 0;
    this.o.handlers.resynced?.();
  }

  /**
   * How long to wait before trying again: what the server asked for (Retry-After); a few seconds at most
   * while it is unreachable or unavailable (restarting); client-go's growing backoff for anything else.
   */
  private backoff(error: unknown, failures: number): number {
    const jitter = 1 + this.random() * 0.2;
    const asked = retryAfterMs(error);
    if (asked !== undefined) return asked * jitter;
    const status = statusOf(error);
    const unavailable = isUnreachable(error) || status === 429 || (status !== undefined && status >= 500);
    const max = unavailable ? UNAVAILABLE_BACKOFF_MAX_MS : BACKOFF_MAX_MS;
    return Math.min(max, BACKOFF_BASE_MS * 2 ** (failures - 1)) * jitter;
  }

  private armQuietTimer(onQuiet: () => void): void {
    this.quietTimer?.cancel();
    this.quietTimer = this.o.clock.setTimer(this.quietDeadlineMs, onQuiet);
  }
}
