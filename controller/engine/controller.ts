// The controller: routes changes (from the store and from observations) to work-queue keys, and runs the
// reconcilers over the queue. Event handlers only enqueue; every decision is made in a reconcile.

import type { Kind, VireoObject, VirtualMachine } from "../api/types.ts";
import { KINDS, keyOf, LAB_LABEL, objectKey, vmId } from "../api/types.ts";
import type { Clock, Timer } from "../core/clock.ts";
import { ObservationCache } from "./observer.ts";
import { WorkQueue } from "./workqueue.ts";
import { defaultControllerRateLimiter } from "./ratelimit.ts";
import { ReconcileRunner, type ReconcileOutcome, type ReconcileResult } from "./runner.ts";
import type { HypervisorProvider } from "../provider/provider.ts";
import type { ObjectStore, StoreEvent } from "../sources/store.ts";
import type { Logger } from "../observe/log.ts";
import { ControllerMetrics } from "../observe/metrics.ts";
import { MigrationRecorder } from "../observe/migrations.ts";
import { ReplicationRecorder } from "../observe/replication.ts";
import { FaultToleranceRecorder } from "../observe/fault-tolerance.ts";
import { MacRegistry } from "./macs.ts";
import type { EventRecorder, ObjectWriter, ReconcileContext, StatusWriter } from "./context.ts";
import { storeObjectWriter } from "../sources/store-writer.ts";
import { clusterKey, hostKey, vmKeyOfId, writeStatusIfChanged } from "./context.ts";
import { reconcileErrorConditions } from "../api/conditions.ts";
import { reconcileVm } from "./reconcile-vm.ts";
import { reconcileHost } from "./reconcile-host.ts";
import { reconcileCluster } from "./reconcile-cluster.ts";
import { viewHost } from "./views.ts";
import { emptyHaState } from "./ha-state.ts";
import { faultInjectorOf } from "../provider/provider.ts";
import { reconcileFault } from "./reconcile-fault.ts";
import { reconcileHaPolicy } from "./reconcile-hapolicy.ts";
import { reconcileMigration } from "./reconcile-migration.ts";
import { reconcileRecoveryPlan } from "./reconcile-recoveryplan.ts";
import { reconcileLab } from "./reconcile-lab.ts";
import { clustersOfVm } from "./replication.ts";
import { selectorMatches } from "../api/selectors.ts";
import { jsonEqual } from "../api/equal.ts";

/** Hosts heartbeat every second (BEHAVIOUR.md, Failure detection): observing faster would see nothing new. */
export const DEFAULT_OBSERVE_INTERVAL_MS = 1_000;

export interface ControllerOptions {
  store: ObjectStore;
  provider: HypervisorProvider;
  statusWriter: StatusWriter;
  /** Where objects Vireo makes go; the store itself by default (file mode). */
  objects?: ObjectWriter;
  events: EventRecorder;
  clock: Clock;
  log: Logger;
  metrics?: ControllerMetrics;
  workers?: number;
  observeIntervalMs?: number;
  finalizers?: ReconcileContext["finalizers"];
  /** The random source of the work queue's retry jitter: seeded, a run on a virtual clock repeats exactly. */
  random?: () => number;
}

export class Controller {
  readonly ctx: ReconcileContext;
  private readonly queue: WorkQueue;
  private readonly runner: ReconcileRunner;
  private readonly observeIntervalMs: number;
  private observeTimer: Timer | undefined;
  private observing: Promise<void> | undefined;
  private hostPhases = new Map<string, string>();
  private running = false;
  private observeFailures = 0;
  private readonly migrationMetrics: MigrationRecorder;
  private readonly replicationMetrics: ReplicationRecorder;
  private readonly faultToleranceMetrics: FaultToleranceRecorder;

  constructor(options: ControllerOptions) {
    const metrics = options.metrics ?? new ControllerMetrics();
    this.migrationMetrics = new MigrationRecorder(metrics);
    this.replicationMetrics = new ReplicationRecorder(metrics);
    this.faultToleranceMetrics = new FaultToleranceRecorder(metrics);
    this.queue = new WorkQueue({
      clock: options.clock,
      ...(options.random ? { rateLimiter: defaultControllerRateLimiter<string>(options.clock, { random: options.random }) } : {}),
      events: {
        onDepth: (n) => metrics.queueDepth.set(n),
        onAdd: () => metrics.queueAdds.inc(),
        onRetry: () => metrics.queueRetries.inc(),
      },
    });
    this.ctx = {
      store: options.store,
      observed: new ObservationCache(options.provider),
      provider: options.provider,
      statusWriter: options.statusWriter,
      objects: options.objects ?? storeObjectWriter(options.store, options.clock),
      events: options.events,
      clock: options.clock,
      log: options.log,
      metrics,
      macs: new MacRegistry(),
      verdicts: new Map(),
      requestVerdicts: new Map(),
      replication: { notes: new Map(), recoveries: new Map(), sites: { at: Number.NaN, hosts: 0, states: new Map() } },
      faultTolerance: { notes: new Map() },
      ha: emptyHaState(),
      activeFaults: new Map(),
      ...(faultInjectorOf(options.provider) ? { faults: faultInjectorOf(options.provider)! } : {}),
      enqueue: (key) => this.queue.add(key),
      ...(options.finalizers ? { finalizers: options.finalizers } : {}),
    };
    this.observeIntervalMs = options.observeIntervalMs ?? DEFAULT_OBSERVE_INTERVAL_MS;
    this.runner = new ReconcileRunner({
      queue: this.queue,
      workers: options.workers ?? 2,
      reconcile: (key) => this.reconcile(key),
      onError: (key, error, retries) => options.log.warn({ key, err: error, retries }, "reconcile failed; retrying with backoff"),
      onReconciled: (key, ms, outcome) => this.countReconcile(key, ms, outcome),
    });
    options.store.onChange((event) => this.onStoreChange(event));
  }

  /** Takes the first observation, queues every object, and starts the workers and the observation loop. */
  async start(): Promise<void> {
    this.running = true;
    for (const vm of this.ctx.store.list("VirtualMachine")) this.ctx.macs.adopt(vm);
    await this.observe();
    for (const instance of this.ctx.observed.vms()) {
      const vm = this.ctx.store.get(vmKeyOfId(instance.id)) as VirtualMachine | undefined;
      if (vm && !vm.status?.networks) this.ctx.macs.adopt({ ...vm, status: { networks: instance.config.nics.map((n) => ({ name: n.network, macAddress: n.macAddress })) } });
    }
    for (const kind of KINDS) this.enqueueAll(kind);
    for (const instance of this.ctx.observed.vms()) this.queue.add(vmKeyOfId(instance.id));
    this.runner.start();
    this.scheduleObserve();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.observeTimer?.cancel();
    await this.observing;
    await this.runner.stop();
  }

  /** Resolves when no observation is in flight, nothing is queued and no reconcile runs. */
  async idle(): Promise<void> {
    for (;;) {
      await this.observing;
      await this.runner.idle();
      if (!this.observing && this.queue.len() === 0 && this.queue.inFlight() === 0) return;
    }
  }

  /** Observes the hosts now and queues whatever changed. */
  async observe(): Promise<void> {
    const run = this.observeOnce();
    this.observing = run;
    try {
      await run;
    } finally {
      if (this.observing === run) this.observing = undefined;
    }
  }

  private async observeOnce(): Promise<void> {
    const changes = await this.ctx.observed.refresh();
    this.ctx.metrics.splitBrainAttempts.set(this.ctx.observed.splitBrainAttempts());
    // Migrations that ended since the last observation are counted here, once; the first one is the baseline.
    this.migrationMetrics.record(this.ctx.observed.migrations(), this.ctx.observed.at());
    this.replicationMetrics.record(this.ctx.observed.replicas());
    this.faultToleranceMetrics.record(this.ctx.observed.switchovers());
    if (changes.initial) return;
    const requests = changes.vms.length > 0 ? this.requestsByVm() : new Map<string, string[]>();
    for (const id of changes.vms) {
      this.queue.add(vmKeyOfId(id));
      for (const key of requests.get(id) ?? []) this.queue.add(key);
      const vm = this.ctx.store.get(vmKeyOfId(id)) as VirtualMachine | undefined;
      if (vm) for (const cluster of clustersOfVm(vm)) this.queue.add(clusterKey(cluster));
      const lab = vm?.metadata.labels?.[LAB_LABEL];
      if (lab) this.queue.add(objectKey("LabTopology", lab, vm!.metadata.namespace));
    }
    const clusters = this.ctx.store.list("HostCluster");
    const touched = new Set(changes.hosts);
    // Heartbeats age without any report changing: a phase can change with time alone.
    for (const host of this.ctx.store.list("Host")) {
      const name = host.metadata.name;
      const view = viewHost(this.ctx, name, clusters);
      if (this.hostPhases.get(name) !== view.phase) {
        this.hostPhases.set(name, view.phase);
        touched.add(name);
      }
    }
    for (const name of touched) {
      this.queue.add(hostKey(name));
      const cluster = viewHost(this.ctx, name, clusters).cluster;
      if (cluster) this.queue.add(clusterKey(cluster.metadata.name));
      for (const instance of this.ctx.observed.vmsOn(name)) this.queue.add(vmKeyOfId(instance.id));
    }
  }

  private scheduleObserve(): void {
    if (!this.running) return;
    this.observeTimer = this.ctx.clock.setTimer(this.observeIntervalMs, () => {
      this.observe().then(
        () => {
          if (this.observeFailures > 0) this.ctx.log.info(`observing the hosts again after ${this.observeFailures} failed attempts`);
          this.observeFailures = 0;
          this.scheduleObserve();
        },
        (error: unknown) => {
          // Say so once, not every second while the hosts (or hostsim) stay out of reach.
          if (this.observeFailures++ === 0) this.ctx.log.warn({ err: error }, "observing the hosts failed; retrying every interval");
          this.scheduleObserve();
        },
      );
    });
  }

  private async reconcile(key: string): Promise<ReconcileResult | void> {
    try {
      return await this.reconcileKind(key);
    } catch (error) {
      await this.reportError(key, error);
      throw error;
    }
  }

  private reconcileKind(key: string): Promise<ReconcileResult | void> {
    const [kind, ...rest] = key.split("/");
    switch (kind as Kind) {
      case "VirtualMachine": return reconcileVm(this.ctx, key, rest.join("/"));
      case "Host": return reconcileHost(this.ctx, rest[0]!);
      case "HostCluster": return reconcileCluster(this.ctx, rest[0]!);
      case "HAPolicy": return reconcileHaPolicy(this.ctx, key);
      case "Fault": return reconcileFault(this.ctx, rest[0]!);
      case "VirtualMachineMigration": return reconcileMigration(this.ctx, key);
      case "RecoveryPlan": return reconcileRecoveryPlan(this.ctx, key);
      case "LabTopology": return reconcileLab(this.ctx, key, rest[0]!, rest[1]!);
    }
    throw new Error(`unknown key ${key}`);
  }

  /**
   * A reconcile that throws says so in the object's conditions (Ready False, Reconciling, reason
   * ReconcileError), not only in the log; the next successful reconcile writes them anew. A conflict is
   * no error: the object changed under the write and is simply read again.
   */
  private async reportError(key: string, error: unknown): Promise<void> {
    const object = this.ctx.store.get(key);
    if (!object || (error instanceof Error && error.name === "ConflictError")) return;
    const conditions = reconcileErrorConditions(object.status?.conditions, causeChain(error), new Date(this.ctx.clock.now()).toISOString(), object.metadata.generation);
    try {
      await writeStatusIfChanged(this.ctx, object, { ...(object.status ?? {}), conditions } as NonNullable<VireoObject["status"]>);
    } catch (writeError) {
      this.ctx.log.warn({ key, err: writeError }, "could not write the reconcile error to the object's conditions");
    }
  }

  private onStoreChange(event: StoreEvent): void {
    // Vireo's own status writes come back from the API server: nothing to do for them.
    if (event.type === "upsert" && event.previous && !desiredStateChanged(event.previous, event.object)) return;
    const object = event.type === "upsert" ? event.object : event.previous;
    this.queue.add(event.key);
    switch (object.kind) {
      case "VirtualMachine": {
        for (const cluster of clustersOfVm(object)) this.queue.add(clusterKey(cluster));
        const lab = object.metadata.labels?.[LAB_LABEL];
        if (lab) this.queue.add(objectKey("LabTopology", lab, object.metadata.namespace));
        const before = event.previous as VirtualMachine | undefined;
        if (before) for (const cluster of clustersOfVm(before)) this.queue.add(clusterKey(cluster));
        // Declaring (or deleting) a VM changes whether its host counts it as unknown.
        const instance = this.ctx.observed.vm(vmId(object));
        if (instance) this.queue.add(hostKey(instance.host));
        break;
      }
      case "Host":
        this.enqueueAll("HostCluster");
        for (const instance of this.ctx.observed.vmsOn(object.metadata.name)) this.queue.add(vmKeyOfId(instance.id));
        break;
      case "HostCluster":
        this.enqueueAll("Host");
        for (const vm of this.ctx.store.list("VirtualMachine")) if (clustersOfVm(vm).includes(object.metadata.name)) this.queue.add(objectKey("VirtualMachine", vm.metadata.name, vm.metadata.namespace));
        break;
      case "HAPolicy":
        // A policy changes the protection of the VMs of its namespace, and their clusters' restart plans.
        for (const vm of this.ctx.store.list("VirtualMachine")) {
          if ((vm.metadata.namespace ?? "default") !== (object.metadata.namespace ?? "default")) continue;
          this.queue.add(objectKey("VirtualMachine", vm.metadata.name, vm.metadata.namespace));
          for (const cluster of clustersOfVm(vm)) this.queue.add(clusterKey(cluster));
        }
        break;
      case "Fault":
        break;
      case "RecoveryPlan":
        // A plan holds or releases the VMs it selects: they and their clusters look again.
        for (const vm of this.ctx.store.list("VirtualMachine")) {
          if ((vm.metadata.namespace ?? "default") !== (object.metadata.namespace ?? "default") || !selectorMatches(object.spec.selector, vm.metadata.labels ?? {})) continue;
          this.queue.add(objectKey("VirtualMachine", vm.metadata.name, vm.metadata.namespace));
          for (const cluster of clustersOfVm(vm)) this.queue.add(clusterKey(cluster));
        }
        break;
      case "VirtualMachineMigration": {
        // A request is judged in its VM's cluster's round; its VM shows it moving.
        const vm = this.ctx.store.get(objectKey("VirtualMachine", object.spec.vmName, object.metadata.namespace)) as VirtualMachine | undefined;
        if (vm) {
          this.queue.add(clusterKey(vm.spec.placement.cluster));
          this.queue.add(keyOf(vm));
        }
        break;
      }
    }
  }

  /** The VirtualMachineMigrations by the VM they name: a migration's progress wakes its request. */
  private requestsByVm(): Map<string, string[]> {
    const byVm = new Map<string, string[]>();
    for (const request of this.ctx.store.list("VirtualMachineMigration")) {
      const id = `${request.metadata.namespace ?? "default"}/${request.spec.vmName}`;
      byVm.set(id, [...(byVm.get(id) ?? []), keyOf(request)]);
    }
    return byVm;
  }

  private enqueueAll(kind: Kind): void {
    for (const object of this.ctx.store.list(kind)) this.queue.add(objectKey(kind, object.metadata.name, object.metadata.namespace));
  }

  private countReconcile(key: string, ms: number, outcome: ReconcileOutcome): void {
    const kind = key.slice(0, key.indexOf("/"));
    this.ctx.metrics.reconciles.inc({ kind, result: outcome });
    this.ctx.metrics.reconcileDuration.observe({ kind }, ms / 1000);
  }
}

/** An error and its causes, as one line: "start x on h failed: disk controller offline". */
function causeChain(error: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = error; e !== undefined && parts.length < 5; e = e instanceof Error ? e.cause : undefined) {
    parts.push(e instanceof Error ? e.message : String(e));
  }
  return parts.join(": ");
}

/** What a reconcile depends on: the spec and the metadata that steers it — not status, which is Vireo's output. */
function desiredStateChanged(before: Readonly<VireoObject>, after: Readonly<VireoObject>): boolean {
  const a = before.metadata;
  const b = after.metadata;
  return a.generation !== b.generation
    || a.deletionTimestamp !== b.deletionTimestamp
    || !jsonEqual(before.spec, after.spec)
    || !jsonEqual(a.labels ?? {}, b.labels ?? {})
    || !jsonEqual(a.finalizers ?? [], b.finalizers ?? []);
}
