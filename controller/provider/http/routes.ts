// The routes of `vireo hostsim`'s API: each maps one HTTP request onto one call of the simulated hosts.
// Their path parameters (`:host`, `:namespace`, `:name`) are parsed and checked by the router (router.ts)
// before any of them runs; the HTTP plumbing around them (authentication, bodies, errors) is in server.ts.

import type { SimulatedHosts } from "../sim/index.ts";
import {
  MAX_WATCH_SECONDS, WireError, cancelMigrationBody, convertBody, createBody, hostConfigBody, hostsBody, memoryBody, migrateBody, moveBody, networksBody,
  partitionBody, protectBody, recoverBody, replicationBody, resetBody, slowdownBody, startBody, stopBody, storagePathsBody, syncReplicaBody,
} from "./wire.ts";
import type { ClockBody, ObservationBody } from "./wire.ts";
import { route } from "./router.ts";
import type { Method, PathParams, Reply, Route, RouteRequest } from "./router.ts";

export interface RouteContext {
  sim: SimulatedHosts;
  timeScale: number;
}

const NO_CONTENT: Reply = { status: 204 };

export function hostsimRoutes({ sim, timeScale }: RouteContext): Route[] {
  const simAction = (method: Method, path: string, act: (params: PathParams) => void | Promise<void>): Route =>
    route(method, path, false, async ({ params }) => {
      await act(params);
      return NO_CONTENT;
    });

  return [
    route("GET", "/v1/observation", false, (request) => observation(sim, request)),
    route("GET", "/v1/clock", false, (): Reply => ({ status: 200, body: { now: sim.clock.now(), timeScale } satisfies ClockBody })),
    route("PUT", "/v1/hosts/:host", true, async ({ params, body }) => {
      await sim.registerHost(hostName(params), hostConfigBody(body));
      return NO_CONTENT;
    }),
    route("DELETE", "/v1/hosts/:host", false, async ({ params }) => {
      await sim.unregisterHost(hostName(params));
      return NO_CONTENT;
    }),
    route("POST", "/v1/vms/:namespace/:name/start", true, async ({ params, body }) => {
      const { host, config } = startBody(body);
      return { status: 200, body: await sim.startVm(vmId(params), host, config) };
    }),
    route("POST", "/v1/vms/:namespace/:name/stop", true, async ({ params, body }) => {
      const { mode, onHost } = stopBody(body);
      await sim.stopVm(vmId(params), mode, onHost === undefined ? {} : { onHost });
      return NO_CONTENT;
    }),
    route("DELETE", "/v1/vms/:namespace/:name", false, async ({ params }) => {
      await sim.removeVm(vmId(params));
      return NO_CONTENT;
    }),
    route("POST", "/v1/vms/:namespace/:name/reset", true, async ({ params, body }) => {
      await sim.resetVm(vmId(params), resetBody(body).key);
      return NO_CONTENT;
    }),
    // A migration runs on after the answer; how it goes is in the observation's `migrations`.
    route("POST", "/v1/vms/:namespace/:name/migrate", true, async ({ params, body }) => {
      const { target, key, settings } = migrateBody(body);
      await sim.migrateVm(vmId(params), target, { key, settings });
      return NO_CONTENT;
    }),
    route("POST", "/v1/vms/:namespace/:name/cancel-migration", true, async ({ params, body }) => {
      await sim.cancelMigration(vmId(params), cancelMigrationBody(body).key);
      return NO_CONTENT;
    }),
    // Replication runs on after the answer; how it goes is in the observation's `replicas`.
    route("PUT", "/v1/vms/:namespace/:name/replication", true, async ({ params, body }) => {
      await sim.replicateVm(vmId(params), replicationBody(body));
      return NO_CONTENT;
    }),
    route("DELETE", "/v1/vms/:namespace/:name/replication", false, async ({ params }) => {
      await sim.stopReplication(vmId(params));
      return NO_CONTENT;
    }),
    route("POST", "/v1/vms/:namespace/:name/replication/sync", true, async ({ params, body }) => {
      await sim.syncReplica(vmId(params), syncReplicaBody(body).key);
      return NO_CONTENT;
    }),
    // A secondary is made, and a conversion runs, after the answer; how they go is in the observation's
    // `secondaries`, `switchovers` and `conversions`.
    route("PUT", "/v1/vms/:namespace/:name/secondary", true, async ({ params, body }) => {
      const { host, key, settings } = protectBody(body);
      await sim.protectVm(vmId(params), host, { key, settings });
      return NO_CONTENT;
    }),
    route("DELETE", "/v1/vms/:namespace/:name/secondary", false, async ({ params }) => {
      await sim.unprotectVm(vmId(params));
      return NO_CONTENT;
    }),
    route("POST", "/v1/vms/:namespace/:name/convert", true, async ({ params, body }) => {
      const { target, config, settings } = convertBody(body);
      await sim.convertVm(vmId(params), target, config, settings);
      return NO_CONTENT;
    }),
    route("POST", "/v1/vms/:namespace/:name/recover", true, async ({ params, body }) => {
      const { host, config, replicaOf, instanceAt } = recoverBody(body);
      return { status: 200, body: await sim.recoverVm(vmId(params), host, config, instanceAt === undefined ? { replicaOf } : { replicaOf, instanceAt }) };
    }),

    // Simulator-only: out-of-band events for drills and tests. The controller never calls these.
    simAction("POST", "/v1/sim/hosts/:host/crash", (params) => sim.crashHost(hostName(params))),
    simAction("POST", "/v1/sim/hosts/:host/recover", (params) => sim.recoverHost(hostName(params))),
    simAction("POST", "/v1/sim/hosts/:host/isolate", (params) => sim.isolateHost(hostName(params))),
    simAction("POST", "/v1/sim/hosts/:host/heal", (params) => sim.healIsolation(hostName(params))),
    route("PUT", "/v1/sim/hosts/:host/slowdown", true, async ({ params, body }) => {
      await sim.slowHost(hostName(params), slowdownBody(body).factor);
      return NO_CONTENT;
    }),
    simAction("DELETE", "/v1/sim/hosts/:host/slowdown", (params) => sim.healSlowHost(hostName(params))),
    route("POST", "/v1/sim/partition", true, async ({ body }) => {
      const { hosts, storage } = partitionBody(body);
      await sim.partitionHosts(hosts, { storage });
      return NO_CONTENT;
    }),
    route("POST", "/v1/sim/partition/heal", true, async ({ body }) => {
      await sim.healPartition(hostsBody(body).hosts);
      return NO_CONTENT;
    }),
    route("PUT", "/v1/sim/hosts/:host/storage-paths", true, async ({ params, body }) => {
      const paths = storagePathsBody(body);
      await sim.setStoragePathsUp(hostName(params), paths.up, paths.datastore);
      return NO_CONTENT;
    }),
    simAction("POST", "/v1/sim/vms/:namespace/:name/guest-shutdown", (params) => sim.guestShutdown(vmId(params))),
    simAction("POST", "/v1/sim/vms/:namespace/:name/crash", (params) => sim.crashVm(vmId(params))),
    simAction("POST", "/v1/sim/vms/:namespace/:name/hang", (params) => sim.hangGuest(vmId(params))),
    simAction("POST", "/v1/sim/vms/:namespace/:name/heal-hang", (params) => sim.healGuestHang(vmId(params))),
    // Simulator-only: an administrator's changes behind the controller's back (drift).
    simAction("POST", "/v1/sim/vms/:namespace/:name/power-off", (params) => sim.adminPowerOff(vmId(params))),
    simAction("POST", "/v1/sim/vms/:namespace/:name/power-on", (params) => sim.adminPowerOn(vmId(params))),
    route("POST", "/v1/sim/vms/:namespace/:name/move", true, async ({ params, body }) => {
      await sim.adminMove(vmId(params), moveBody(body).host);
      return NO_CONTENT;
    }),
    route("PUT", "/v1/sim/vms/:namespace/:name/memory", true, async ({ params, body }) => {
      await sim.adminSetMemory(vmId(params), memoryBody(body).memoryMiB);
      return NO_CONTENT;
    }),
    route("PUT", "/v1/sim/vms/:namespace/:name/networks", true, async ({ params, body }) => {
      await sim.adminSetNetworks(vmId(params), networksBody(body).networks);
      return NO_CONTENT;
    }),
    route("POST", "/v1/sim/vms/:namespace/:name/create", true, async ({ params, body }) => {
      const { host, ...spec } = createBody(body);
      await sim.adminCreateVm(vmId(params), host, spec);
      return NO_CONTENT;
    }),
    route("GET", "/v1/sim/ground-truth", false, () => ({ status: 200, body: sim.groundTruth() })),
    route("GET", "/v1/sim/disk-locks", false, () => ({ status: 200, body: sim.diskLocks() })),
  ];
}

/** The host a route's `:host` names (the router checked it). */
function hostName(params: PathParams): string {
  return params.host!;
}

/** The VM a route's `:namespace/:name` names (the router checked both). */
function vmId(params: PathParams): string {
  return `${params.namespace!}/${params.name!}`;
}

/**
 * The observation, at once; or with `afterRevision`, as soon as the world's revision exceeds it (or at
 * `timeoutSeconds`). A revision above the world's own comes from before a restart that lost the last
 * unsaved changes: that world is gone, so the answer is immediate.
 */
async function observation(sim: SimulatedHosts, { query, signal }: RouteRequest): Promise<Reply> {
  const after = query.get("afterRevision");
  if (after !== null) {
    const revision = Number(after);
    if (!Number.isInteger(revision) || revision < 0) throw new WireError(400, "BadRequest", `afterRevision must be a non-negative integer, got ${JSON.stringify(after)}`);
    const timeout = query.get("timeoutSeconds");
    const seconds = timeout === null ? MAX_WATCH_SECONDS : Number(timeout);
    if (!(seconds >= 0)) throw new WireError(400, "BadRequest", `timeoutSeconds must be a non-negative number, got ${JSON.stringify(timeout)}`);
    if (sim.revision() === revision) await changeAfter(sim, Math.min(seconds, MAX_WATCH_SECONDS), signal);
  }
  // The revision is read in the same turn as the snapshot, so the two always agree.
  const revision = sim.revision();
  const body: ObservationBody = { ...(await sim.observe()), revision };
  return { status: 200, body };
}

/** Resolves at the world's next change, after `seconds` of real time, or when `signal` aborts. */
function changeAfter(sim: SimulatedHosts, seconds: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stopListening();
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const stopListening = sim.onChange(done);
    const timer = setTimeout(done, seconds * 1000);
    signal.addEventListener("abort", done);
    if (signal.aborted) done();
  });
}
