// What the cluster benchmark measures of a controller, Vireo's or kube-scheduler, the same way for both: the
// objects created with kubectl before it starts, then, from the API server's own counters, what it wrote and
// the watch events it was sent while it placed them.

import type { ControlPlane } from "../test/envtest/controlplane.ts";
import { apiServerSamples, sum, watchEventsOf, writesTo, WRITE_VERBS, type MilestoneWatch, type Sample } from "./kube-api.ts";

export interface ControllerFigures {
  objects: number;
  /** Objects that reached their host (a VM's status.host, a pod's spec.nodeName). */
  placed: number;
  /** From the controller's start until it had listed every object (Vireo's "synced" line); kube-scheduler does not say. */
  syncedSeconds?: number;
  /** From the controller's start until every object had its host. */
  placedSeconds: number;
  /** From the controller's start until every VM was Ready; only Vireo reports readiness. */
  readySeconds?: number;
  /** Writes to the objects themselves (status and finalizer; a pod's binding), and those refused as conflicts. */
  objectWrites: number;
  conflicts: number;
  /** Events written (the record `kubectl describe` shows). */
  eventWrites: number;
  /** Every write the run caused, to any resource; the API server's own Lease renewals left out. */
  allWrites: number;
  /** Watch events the API server sent the controller for the objects' resource. */
  watchEvents: number;
  /** Of those, the objects' initial state, when the controller's informer asked for it as a watch (a watch-list) instead of a LIST. */
  initialWatchEvents: number;
  cpuSeconds: number;
  peakResidentMiB: number;
  /** The language runtime's heap at the end, in use and reserved from the system. */
  heapUsedMiB: number;
  heapReservedMiB: number;
}

/** Creates the documents of each stream with its own kubectl, in parallel, as a GitOps tool applying a repository would. */
export async function createAll(cp: ControlPlane, streams: readonly string[]): Promise<void> {
  await Promise.all(streams.map(async (input) => {
    const r = await cp.kubectl(["create", "-f", "-"], { input, timeoutMs: 1_800_000 });
    if (r.code !== 0) throw new Error(`kubectl create: ${r.stderr.slice(0, 2000)}`);
  }));
}

/**
 * Watch events the API server sends for every change of an object to watchers other than the controller and
 * the benchmark: none for custom resources; one for pods, to the API server's own pod informer (the
 * service-account token authenticator and Pod Security admission read pods from it). Measured while the
 * objects are created, before anything else watches them.
 */
export async function createCountingOtherWatchers(cp: ControlPlane, resource: string, streams: readonly string[], objects: number): Promise<number> {
  const before = watchEventsOf(await apiServerSamples(cp), resource);
  await createAll(cp, streams);
  await new Promise((r) => setTimeout(r, 2_000));
  return (watchEventsOf(await apiServerSamples(cp), resource) - before) / objects;
}

/** The resource of the objects measured, the benchmark's watch of it, and the other watchers' events per change. */
export interface WatchedResource {
  resource: string;
  objects: number;
  watch: MilestoneWatch<string>;
  othersPerEvent: number;
}

type Counts = Pick<ControllerFigures, "objectWrites" | "conflicts" | "eventWrites" | "allWrites" | "watchEvents" | "initialWatchEvents">;

/** The API server's counters for one resource over a controller's run, the benchmark's own watch and the other watchers taken out. */
export class ApiTally {
  private readonly cp: ControlPlane;
  private readonly resource: string;
  private readonly objects: number;
  private readonly watch: MilestoneWatch<string>;
  private readonly othersPerEvent: number;
  private readonly before: Sample[];
  private readonly watchedBefore: number;

  private constructor(cp: ControlPlane, watched: Readonly<WatchedResource>, before: Sample[]) {
    this.cp = cp;
    this.resource = watched.resource;
    this.objects = watched.objects;
    this.watch = watched.watch;
    this.othersPerEvent = watched.othersPerEvent;
    this.before = before;
    this.watchedBefore = watched.watch.events;
  }

  static async begin(cp: ControlPlane, watched: Readonly<WatchedResource>): Promise<ApiTally> {
    return new ApiTally(cp, watched, await apiServerSamples(cp));
  }

  /** What happened since begin(), once the watches have had a moment to deliver the last events. */
  async end(): Promise<Counts> {
    await new Promise((r) => setTimeout(r, 2_000));
    const after = await apiServerSamples(this.cp);
    const objects = { after: writesTo(after, this.resource), before: writesTo(this.before, this.resource) };
    const all = (samples: readonly Sample[]) => sum(samples, "apiserver_request_total", { verb: WRITE_VERBS }) - sum(samples, "apiserver_request_total", { verb: WRITE_VERBS, resource: "leases" });
    const events = (samples: readonly Sample[]) => sum(samples, "apiserver_request_total", { verb: WRITE_VERBS, resource: "events" });
    const benchEvents = this.watch.events - this.watchedBefore;
    const sent = watchEventsOf(after, this.resource) - watchEventsOf(this.before, this.resource);
    const watchLists = (samples: readonly Sample[]) => sum(samples, "apiserver_watch_list_duration_seconds_count", { resource: this.resource });
    return {
      objectWrites: objects.after.all - objects.before.all,
      conflicts: objects.after.conflicts - objects.before.conflicts,
      eventWrites: events(after) - events(this.before),
      allWrites: all(after) - all(this.before),
      watchEvents: sent - benchEvents * (1 + this.othersPerEvent),
      initialWatchEvents: (watchLists(after) - watchLists(this.before)) * this.objects,
    };
  }
}

/** Waits for the benchmark's watch to have seen every object once, so that its initial events are behind it. */
export async function watchSynced(watch: MilestoneWatch<string>, objects: number): Promise<void> {
  const deadline = Date.now() + 300_000;
  while (watch.events < objects) {
    if (Date.now() > deadline) throw new Error(`the benchmark's watch saw ${watch.events} of ${objects} objects`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Real time allowed for a fleet to be placed and Ready: generous, a failed run should still end. */
export function deadlineMs(objects: number): number {
  return 300_000 + objects * 300;
}
