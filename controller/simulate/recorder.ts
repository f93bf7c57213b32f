// The run's timeline as it happens: the scenario's steps, every event the controller records, every change
// of an object's state as its status says it, and what really happened on the hosts — when each VM stopped
// running without being asked to and when it was back (running and Ready), and each live migration with its
// downtime. Times are simulated, in seconds from the start of the run; records are built field by field so
// their keys come out in one order, and the JSON of a run is the same bytes every time.

import type { VireoObject } from "../api/types.ts";
import { keyOf } from "../api/types.ts";
import type { EventRecorder, EventType, StatusWriter } from "../engine/context.ts";
import type { MigrationObservation } from "../core/migration.ts";
import type { SimulatedHosts } from "../provider/sim/index.ts";
import type { ObjectStore } from "../sources/store.ts";
import { objectState, readyOf } from "./states.ts";
import type { ObjectState } from "./states.ts";

export type TimelineRecord =
  | { t: number; kind: "step"; step: number; summary: string; note?: string }
  | { t: number; kind: "event"; object: string; type: EventType; reason: string; message: string }
  | ({ t: number; kind: "state"; object: string } & ObjectState)
  | { t: number; kind: "outage"; vm: string; host: string; cause: string }
  | { t: number; kind: "recovered"; vm: string; host: string; seconds: number }
  | ({ t: number; kind: "migration" } & MigrationRecord)
  | { t: number; kind: "note"; message: string };

export interface Outage {
  vm: string;
  host: string;
  cause: string;
  downAt: number;
  recoveredAt?: number;
  toHost?: string;
}

export interface MigrationRecord {
  vm: string;
  source: string;
  target: string;
  why: string;
  phase: string;
  startedAt: number;
  endedAt?: number;
  rounds: number;
  transferredMiB: number;
  downtimeMs?: number;
  reason?: string;
}

interface VmTruth {
  running: boolean;
  host: string;
  /** The scan that last saw the VM on the hosts. */
  scan: number;
}

interface CompareView {
  up: ReadonlySet<string>;
  sim: SimulatedHosts;
  store: ObjectStore;
}

export class RunRecorder implements StatusWriter, EventRecorder {
  readonly records: TimelineRecord[] = [];
  readonly outages: Outage[] = [];
  readonly migrations: MigrationRecord[] = [];
  private readonly startMs: number;
  private readonly now: () => number;
  private readonly states = new Map<string, string>();
  private readonly truth = new Map<string, VmTruth>();
  private scans = 0;
  private underWay = new Map<string, string>();
  private readonly open = new Map<string, Outage>();
  /** The hosts changed since the last look: every VM is compared. */
  private hostsChanged = true;
  /** A status was written since: a VM down may be Ready again. */
  private statusWritten = false;
  private world: { sim: SimulatedHosts; store: ObjectStore } | undefined;

  constructor(startMs: number, now: () => number) {
    this.startMs = startMs;
    this.now = now;
  }

  /** The hosts and store whose truth `afterStep` compares; told of every change the hosts make. */
  attach(sim: SimulatedHosts, store: ObjectStore): void {
    this.world = { sim, store };
    sim.onChange(() => { this.hostsChanged = true; });
  }

  /** Seconds since the start of the run, to the millisecond. */
  t(): number {
    return (this.now() - this.startMs) / 1000;
  }

  async writeStatus(object: Readonly<VireoObject>, status: NonNullable<VireoObject["status"]>): Promise<void> {
    this.statusWritten = true;
    const key = keyOf(object as VireoObject);
    const state = objectState(object.kind, status);
    const text = JSON.stringify(state);
    if (this.states.get(key) === text) return;
    this.states.set(key, text);
    this.records.push({ t: this.t(), kind: "state", object: key, ...state });
  }

  record(object: Readonly<VireoObject>, type: EventType, reason: string, message: string): void {
    this.records.push({ t: this.t(), kind: "event", object: keyOf(object as VireoObject), type, reason, message });
  }

  step(index: number, summary: string, note?: string): void {
    this.records.push({ t: this.t(), kind: "step", step: index, summary, ...(note !== undefined ? { note } : {}) });
  }

  note(message: string): void {
    this.records.push({ t: this.t(), kind: "note", message });
  }

  /** VMs with an outage that has not ended. */
  openOutages(): Outage[] {
    return [...this.open.values()];
  }

  /** After every timer: compares what runs now on the hosts with what ran before, when anything changed. */
  async afterStep(): Promise<void> {
    // A status alone can only make a VM that is down Ready again: with none down, there is nothing to compare.
    const due = this.hostsChanged || (this.statusWritten && this.open.size > 0);
    this.hostsChanged = false;
    this.statusWritten = false;
    if (!due || !this.world) return;
    const { sim, store } = this.world;
    const truth = sim.groundTruth();
    const up = new Set(truth.hosts.filter((h) => h.up).map((h) => h.name));
    const view = { up, sim, store };
    // The previous truth is updated in place: with thousands of VMs this runs after every boot of the start-up.
    const scan = ++this.scans;
    for (const vm of truth.vms) this.look(vm.id, { running: vm.power === "Running" && up.has(vm.host), host: vm.host, scan }, view);
    if (this.truth.size > truth.vms.length) this.forgetGone(scan, view);
    await this.followMigrations(sim, truth.migrations);
  }

  /** One VM as the hosts have it now, compared only when it stopped running or is down. */
  private look(id: string, now: VmTruth, view: CompareView): void {
    const before = this.truth.get(id);
    if ((before?.running === true && !now.running) || this.open.has(id)) this.compare(id, { before, now }, view);
    if (!before) {
      this.truth.set(id, now);
      return;
    }
    before.running = now.running;
    before.host = now.host;
    before.scan = now.scan;
  }

  /** The VMs the hosts no longer have: no longer running. */
  private forgetGone(scan: number, view: CompareView): void {
    for (const [id, before] of this.truth) {
      if (before.scan === scan) continue;
      this.compare(id, { before, now: { running: false, host: before.host, scan } }, view);
      this.truth.delete(id);
    }
  }

  /** Opens an outage when a VM stopped running unasked, and closes it once the VM runs and is Ready again. */
  private compare(id: string, change: { before: VmTruth | undefined; now: VmTruth }, view: CompareView): void {
    const { before, now } = change;
    const { up, sim, store } = view;
    const open = this.open.get(id);
    if (before?.running && !now.running && !open) {
      const cause = this.causeOf(id, before.host, up, sim);
      if (cause === undefined) return;
      const outage: Outage = { vm: id, host: before.host, cause, downAt: this.t() };
      this.outages.push(outage);
      this.open.set(id, outage);
      this.records.push({ t: outage.downAt, kind: "outage", vm: id, host: before.host, cause });
      return;
    }
    if (open && now.running && readyOf(store, id)) this.recovered(open, now.host);
  }

  private recovered(open: Outage, host: string): void {
    open.recoveredAt = this.t();
    open.toHost = host;
    this.open.delete(open.vm);
    this.records.push({ t: open.recoveredAt, kind: "recovered", vm: open.vm, host, seconds: round3(open.recoveredAt - open.downAt) });
  }

  /** Why a VM stopped running: its host failed, or what its host says ended it; undefined when it was stopped on purpose. */
  private causeOf(id: string, host: string, up: ReadonlySet<string>, sim: SimulatedHosts): string | undefined {
    if (!up.has(host)) return "HostFailure";
    const exit = sim.observeVm(id)?.lastExit;
    return exit && exit.at >= this.now() ? exit.reason : undefined;
  }

  /** Each migration is recorded once, when it ends, as the hosts report it. */
  private async followMigrations(sim: SimulatedHosts, underWay: readonly { vm: string; source: string; target: string }[]): Promise<void> {
    const current = new Map(underWay.map((m) => [m.vm, `${m.source}>${m.target}`]));
    const ended = [...this.underWay.keys()].filter((vm) => current.get(vm) !== this.underWay.get(vm));
    this.underWay = current;
    if (ended.length === 0) return;
    const observed = (await sim.observe()).migrations ?? [];
    for (const vm of ended) {
      const m = observed.find((o) => o.vm === vm && o.endedAt !== undefined);
      if (m) this.addMigration(m);
    }
  }

  /** Migrations still under way when the run ends, as they stand. */
  async finish(sim: SimulatedHosts): Promise<void> {
    const observed = (await sim.observe()).migrations ?? [];
    for (const m of observed) if (m.endedAt === undefined) this.addMigration(m);
  }

  private addMigration(m: Readonly<MigrationObservation>): void {
    const record: MigrationRecord = {
      vm: m.vm,
      source: m.source,
      target: m.target,
      why: m.key.startsWith("request:") ? "Requested" : m.key.startsWith("evacuate:") ? "Maintenance" : m.key.startsWith("balance/") ? "Balancing" : "Other",
      phase: m.phase,
      startedAt: round3((m.startedAt - this.startMs) / 1000),
      ...(m.endedAt !== undefined ? { endedAt: round3((m.endedAt - this.startMs) / 1000) } : {}),
      rounds: m.rounds,
      transferredMiB: Math.round(m.transferredMiB),
      ...(m.downtimeMs !== undefined ? { downtimeMs: Math.round(m.downtimeMs) } : {}),
      ...(m.reason !== undefined ? { reason: m.reason } : {}),
    };
    this.migrations.push(record);
    this.records.push({ t: this.t(), kind: "migration", ...record });
  }
}

export function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}
