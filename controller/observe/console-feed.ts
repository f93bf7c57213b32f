// The console's live feed: one snapshot of the fleet for the first paint, then only what changed, as
// server-sent events. The store's listeners and the status writer mark objects dirty; a short timer turns
// the dirty set into one batch (the objects' new views, the deletions, the events appended), numbered in
// sequence and kept in a short backlog, so a browser that reconnects (EventSource sends Last-Event-ID)
// misses nothing — or, when the backlog no longer reaches back, is told to fetch a new snapshot.

import { randomBytes } from "node:crypto";
import type { ServerResponse } from "node:http";
import { constants as zlib, createGzip } from "node:zlib";
import { keyOf, type Host, type HostCluster, type VirtualMachine, type VirtualMachineMigration } from "../api/types.ts";
import type { ObjectStore } from "../sources/store.ts";
import type { ConsoleEvent, EventRing } from "./console-events.ts";
import { LabelSets, VM_COLUMNS, clusterView, hostView, isShown, vmRow, type ClusterView, type HostView, type VmRow } from "./console-views.ts";

/** What the first view needs: every cluster, host and VM row, the label sets rows point at, recent events. */
export interface FleetSnapshot {
  /** Identifies this process's feed: a stream opened with another epoch starts with a reset. */
  epoch: string;
  /** The last batch this snapshot includes: open the stream with since=seq. */
  seq: number;
  /** The controller's clock, ms since the epoch. */
  now: number;
  /** "file" or "api"; a standby replica (not the leader) has no fleet to show. */
  mode: string;
  standby: boolean;
  clusters: ClusterView[];
  hosts: HostView[];
  vmColumns: readonly string[];
  vms: VmRow[];
  labelSets: Record<string, string>[];
  events: ConsoleEvent[];
}

/** One batch of changes, sent as the data of a `changes` event. */
export interface FleetChanges {
  seq: number;
  now: number;
  /** Views of objects added or changed. */
  clusters?: ClusterView[];
  hosts?: HostView[];
  vms?: VmRow[];
  /** Names of clusters and hosts deleted; "namespace/name" of VMs deleted. */
  deleted?: { clusters?: string[]; hosts?: string[]; vms?: string[] };
  /** Label sets first used by this batch's rows: [index, labels]. */
  labelSets?: [number, Record<string, string>][];
  /** VMs ("namespace/name") whose detail changed while their row did not (a migration's progress, say). */
  details?: string[];
  events?: ConsoleEvent[];
}

export interface FleetFeedOptions {
  store: ObjectStore;
  events: EventRing;
  /** The controller's clock. */
  now: () => number;
  mode: "file" | "api";
  /** Whether this replica stands by for the leader lease (API mode with leader election). */
  standby?: () => boolean;
  /** How long changes gather before a batch goes out. */
  batchMs?: number;
  /** Batches kept for reconnecting browsers. */
  backlog?: number;
  /** Events the snapshot carries (the detail pane fetches a VM's own from the whole ring). */
  snapshotEvents?: number;
}

/** A browser that reads more slowly than the fleet changes is dropped past this much unsent data; it reconnects. */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
const KEEPALIVE_MS = 15_000;

interface Batch {
  seq: number;
  text: string;
}

export class FleetFeed {
  readonly epoch = randomBytes(8).toString("hex");
  private readonly options: Required<Omit<FleetFeedOptions, "standby">> & Pick<FleetFeedOptions, "standby">;
  private readonly labelSets = new LabelSets();
  private labelSetsSent = 0;
  /** The JSON of each object's view as last sent: a status write that changes nothing shown sends nothing. */
  private readonly lastSent = new Map<string, string>();
  private readonly dirty = new Set<string>();
  private pendingEvents: ConsoleEvent[] = [];
  private seq = 0;
  private readonly backlog: Batch[] = [];
  private readonly clients = new Set<Sink>();
  private timer: NodeJS.Timeout | undefined;
  private readonly keepalive: NodeJS.Timeout;

  constructor(options: FleetFeedOptions) {
    this.options = { batchMs: 100, backlog: 256, snapshotEvents: 300, ...options };
    options.store.onChange((event) => this.touched(event.key));
    // Objects already in the store count as changed: the first batch records what was shown of them.
    for (const kind of ["HostCluster", "Host", "VirtualMachine"] as const) {
      for (const object of options.store.list(kind)) this.dirty.add(keyOf(object));
    }
    options.events.onAppend((event) => {
      this.pendingEvents.push(event);
      this.schedule();
    });
    this.keepalive = setInterval(() => this.broadcast(": keep-alive\n\n"), KEEPALIVE_MS);
    this.keepalive.unref();
  }

  /** An object changed (its spec in the store, or its status as Vireo wrote it). */
  touched(key: string): void {
    this.dirty.add(key);
    this.schedule();
  }

  /** Sends what is pending now, then returns the whole fleet as of this batch. */
  snapshot(): FleetSnapshot {
    this.flush();
    const { store } = this.options;
    return {
      epoch: this.epoch,
      seq: this.seq,
      now: this.options.now(),
      mode: this.options.mode,
      standby: this.options.standby?.() ?? false,
      clusters: store.list("HostCluster").map(clusterView),
      hosts: store.list("Host").map(hostView),
      vmColumns: VM_COLUMNS,
      vms: store.list("VirtualMachine").map((vm) => vmRow(vm, this.labelSets)),
      labelSets: this.labelSetsSince(0).map(([, labels]) => labels),
      events: this.options.events.list(this.options.snapshotEvents),
    };
  }

  /**
   * Streams batches to `res` from `since` on (the snapshot's seq, or the Last-Event-ID of a reconnect). A
   * stream of another epoch, or one the backlog no longer reaches, gets a `reset`: fetch a new snapshot.
   */
  subscribe(res: ServerResponse, from: { epoch?: string; since?: number; gzip?: boolean }): void {
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      "x-accel-buffering": "no",
      ...(from.gzip ? { "content-encoding": "gzip", vary: "accept-encoding" } : {}),
    });
    const sink = sinkOf(res, from.gzip === true);
    sink.write("retry: 2000\n\n");
    const replay = this.replayFrom(from);
    if (!replay) sink.write(`event: reset\ndata: ${JSON.stringify({ epoch: this.epoch, seq: this.seq })}\n\n`);
    else for (const batch of replay) sink.write(batch.text);
    this.clients.add(sink);
    res.on("close", () => this.clients.delete(sink));
  }

  /** Browsers connected now. */
  connections(): number {
    return this.clients.size;
  }

  close(): void {
    clearInterval(this.keepalive);
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const sink of this.clients) sink.end();
    this.clients.clear();
  }

  private replayFrom(from: { epoch?: string; since?: number }): Batch[] | undefined {
    const { epoch, since } = from;
    if (epoch !== this.epoch || since === undefined || !Number.isInteger(since) || since > this.seq) return undefined;
    if (since === this.seq) return [];
    const oldest = this.backlog[0]?.seq;
    if (oldest === undefined || oldest > since + 1) return undefined;
    return this.backlog.filter((b) => b.seq > since);
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, this.options.batchMs);
    this.timer.unref();
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.dirty.size === 0 && this.pendingEvents.length === 0) return;
    const changes = this.collect();
    if (!changes) return;
    const text = `id: ${changes.seq}\nevent: changes\ndata: ${JSON.stringify(changes)}\n\n`;
    this.backlog.push({ seq: changes.seq, text });
    if (this.backlog.length > this.options.backlog) this.backlog.shift();
    this.broadcast(text);
  }

  /** The batch of what is dirty, with a new sequence number; undefined when nothing shown changed. */
  private collect(): FleetChanges | undefined {
    const batch = new BatchBuilder();
    const migrationsOf = new Set<string>();
    for (const key of this.dirty) this.collectKey(key, batch, migrationsOf);
    this.dirty.clear();
    for (const vm of migrationsOf) batch.detail(vm);
    // The page keeps the newest MAX_EVENTS_SHOWN events: older ones of a busy batch would be dropped on arrival.
    const events = this.pendingEvents.slice(-MAX_EVENTS_SHOWN);
    this.pendingEvents = [];
    const labelSets = this.labelSetsSince(this.labelSetsSent);
    this.labelSetsSent = this.labelSets.sets.length;
    if (batch.empty() && events.length === 0) return undefined;
    this.seq += 1;
    return batch.build(this.seq, this.options.now(), labelSets, events);
  }

  private collectKey(key: string, batch: BatchBuilder, migrationsOf: Set<string>): void {
    const object = this.options.store.get(key);
    if (object?.kind === "VirtualMachineMigration") {
      migrationsOf.add(`${object.metadata.namespace ?? "default"}/${(object as VirtualMachineMigration).spec.vmName}`);
      return;
    }
    if (!object || !isShown(object)) {
      if (this.lastSent.delete(key)) batch.deleted(key);
      return;
    }
    const view = this.viewOf(object);
    const json = JSON.stringify(view);
    if (this.lastSent.get(key) === json) {
      if (object.kind === "VirtualMachine") batch.detail(`${object.metadata.namespace ?? "default"}/${object.metadata.name}`);
      return;
    }
    this.lastSent.set(key, json);
    batch.changed(object.kind, view);
  }

  private viewOf(object: Readonly<Host | HostCluster | VirtualMachine>): ClusterView | HostView | VmRow {
    switch (object.kind) {
      case "HostCluster": return clusterView(object);
      case "Host": return hostView(object);
      case "VirtualMachine": return vmRow(object, this.labelSets);
    }
  }

  private labelSetsSince(index: number): [number, Record<string, string>][] {
    return this.labelSets.sets.slice(index).map((labels, i) => [index + i, labels]);
  }

  private broadcast(text: string): void {
    for (const sink of this.clients) {
      if (sink.buffered() > MAX_BUFFERED_BYTES) {
        this.clients.delete(sink);
        sink.destroy();
        continue;
      }
      sink.write(text);
    }
  }
}

/** Gathers one batch, keeping a VM whose row changed out of the details list (its row says it already). */
class BatchBuilder {
  private readonly clusters: ClusterView[] = [];
  private readonly hosts: HostView[] = [];
  private readonly vms: VmRow[] = [];
  private readonly rowsChanged = new Set<string>();
  private readonly details = new Set<string>();
  private readonly gone = { clusters: [] as string[], hosts: [] as string[], vms: [] as string[] };

  changed(kind: "Host" | "HostCluster" | "VirtualMachine", view: ClusterView | HostView | VmRow): void {
    if (kind === "HostCluster") this.clusters.push(view as ClusterView);
    else if (kind === "Host") this.hosts.push(view as HostView);
    else {
      const row = view as VmRow;
      this.vms.push(row);
      this.rowsChanged.add(`${row[0]}/${row[1]}`);
    }
  }

  detail(vm: string): void {
    this.details.add(vm);
  }

  /** A deleted object, by its store key ("Kind/name" or "Kind/namespace/name"). */
  deleted(key: string): void {
    const [kind, ...rest] = key.split("/");
    if (kind === "HostCluster") this.gone.clusters.push(rest.join("/"));
    else if (kind === "Host") this.gone.hosts.push(rest.join("/"));
    else if (kind === "VirtualMachine") this.gone.vms.push(rest.join("/"));
  }

  empty(): boolean {
    const gone = this.gone.clusters.length + this.gone.hosts.length + this.gone.vms.length;
    return this.clusters.length + this.hosts.length + this.vms.length + gone === 0 && this.detailsOnly().length === 0;
  }

  build(seq: number, now: number, labelSets: [number, Record<string, string>][], events: ConsoleEvent[]): FleetChanges {
    const changes: FleetChanges = { seq, now };
    if (this.clusters.length) changes.clusters = this.clusters;
    if (this.hosts.length) changes.hosts = this.hosts;
    if (this.vms.length) changes.vms = this.vms;
    const deleted = Object.fromEntries(Object.entries(this.gone).filter(([, names]) => names.length > 0));
    if (Object.keys(deleted).length > 0) changes.deleted = deleted;
    if (labelSets.length) changes.labelSets = labelSets;
    const details = this.detailsOnly();
    if (details.length) changes.details = details;
    if (events.length) changes.events = events;
    return changes;
  }

  private detailsOnly(): string[] {
    return [...this.details].filter((vm) => !this.rowsChanged.has(vm));
  }
}

/** The events the page keeps (console/model.js MAX_EVENTS): a batch never carries more. */
const MAX_EVENTS_SHOWN = 2000;

/** Where one browser's stream goes: the response itself, or a gzip stream flushed after every write. */
interface Sink {
  write(text: string): void;
  /** Bytes written and not yet sent. */
  buffered(): number;
  end(): void;
  destroy(): void;
}

/**
 * A stream compressed for a browser that accepts it: each batch is flushed whole (a sync flush), so it
 * arrives at once, and the compressor's window carries across batches, where most of their words repeat.
 */
function sinkOf(res: ServerResponse, gzip: boolean): Sink {
  if (!gzip) return { write: (text) => res.write(text), buffered: () => res.writableLength, end: () => res.end(), destroy: () => res.destroy() };
  const zipped = createGzip({ flush: zlib.Z_SYNC_FLUSH });
  zipped.pipe(res);
  return {
    write: (text) => { zipped.write(text); },
    buffered: () => res.writableLength + zipped.writableLength,
    end: () => zipped.end(),
    destroy: () => { zipped.destroy(); res.destroy(); },
  };
}
