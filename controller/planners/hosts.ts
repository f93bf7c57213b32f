// What Vireo concludes about a host from what it reports. Only heartbeats tell a host's health: the
// controller never asks the simulator whether a host "really" crashed.

import type { Host, HostPhase, HostStatus } from "../api/types.ts";
import { summarize } from "../api/conditions.ts";
import { hostLabels } from "../api/membership.ts";
import type { HostConfig, HostObservation, VmObservation } from "../core/observation.ts";
import { driftStatus, driftedCondition, hostDrift, type HostDriftFacts } from "./drift.ts";

/** vSphere HA declares a host silent on the network for 15 s as failed (BEHAVIOUR.md, Failure detection). */
export const DEFAULT_FAILURE_DETECTION_SECONDS = 15;

export function hostConfig(host: Readonly<Host>): HostConfig {
  return {
    hypervisor: host.spec.hypervisor,
    // In the order hosts report it, so comparing the two as JSON finds real changes only.
    cpu: {
      cores: host.spec.cpu.cores,
      vendor: host.spec.cpu.vendor,
      features: [...host.spec.cpu.features],
      overcommitRatio: host.spec.cpu.overcommitRatio,
      ...(host.spec.cpu.model !== undefined ? { model: host.spec.cpu.model } : {}),
    },
    memoryMiB: host.spec.memoryMiB,
    datastores: [...host.spec.datastores],
    networks: [...host.spec.networks],
    storagePaths: host.spec.storagePaths,
    labels: hostLabels(host),
  };
}

/**
 * The phase of a host from its latest report (BEHAVIOUR.md, Failure detection). A host silent on the
 * network past the failure detection time is Failed when its datastore heartbeat is stale too; with a
 * fresh datastore heartbeat it is alive and may still run its VMs — Isolated when it declared itself so
 * (on its heartbeat datastore), Partitioned otherwise. Neither is failure.
 */
export function hostPhase(
  host: Readonly<Host>,
  observed: Readonly<HostObservation> | undefined,
  vmsOnHost: number,
  now: number,
  failureDetectionSeconds = DEFAULT_FAILURE_DETECTION_SECONDS,
): HostPhase {
  if (!observed) return "NotResponding";
  const limit = failureDetectionSeconds * 1000;
  const networkSilent = now - observed.lastNetworkHeartbeat > limit;
  const datastoreSilent = now - observed.lastDatastoreHeartbeat > limit;
  if (networkSilent) return datastoreSilent ? "Failed" : observed.isolatedSince !== undefined ? "Isolated" : "Partitioned";
  if (host.spec.maintenance) return vmsOnHost > 0 ? "EnteringMaintenance" : "Maintenance";
  return "Ready";
}

/** Why a host takes no new VMs, or undefined when it may. */
export function unavailableReason(phase: HostPhase, deleting: boolean): string | undefined {
  if (deleting) return "being removed";
  switch (phase) {
    case "Ready": return undefined;
    case "EnteringMaintenance":
    case "Maintenance": return "in maintenance";
    case "NotResponding":
    case "Isolated":
    case "Partitioned":
    case "Failed": return "not ready";
  }
}

/** The VMs that hold resources on a host: starting, running or stopping. */
export function holdsResources(vm: Readonly<VmObservation>): boolean {
  return vm.power !== "Off";
}

export function hostStatus(
  host: Readonly<Host>,
  observed: Readonly<HostObservation> | undefined,
  phase: HostPhase,
  cluster: string | undefined,
  now: number,
  findings: Omit<HostDriftFacts, "host"> = { vmsHeld: [], unknownVms: [] },
  evacuationBlocked: readonly { vm: string; reason: string }[] = [],
): HostStatus {
  const iso = new Date(now).toISOString();
  const generation = host.metadata.generation;
  const ready = phase === "Ready";
  const maintenanceReached = phase === "Maintenance";
  const status: HostStatus = {
    observedGeneration: generation,
    phase,
    capacity: { cpu: host.spec.cpu.cores * host.spec.cpu.overcommitRatio, memoryMiB: host.spec.memoryMiB },
  };
  if (cluster !== undefined) status.cluster = cluster;
  if (observed) {
    status.lastHeartbeatTime = new Date(observed.lastNetworkHeartbeat).toISOString();
    status.lastDatastoreHeartbeatTime = new Date(observed.lastDatastoreHeartbeat).toISOString();
    status.allocated = { ...observed.allocated };
    status.used = { cpu: round2(observed.used.cpu), memoryMiB: observed.used.memoryMiB };
    status.vmCount = observed.vmCount;
    status.storagePathsUp = observed.storagePathsUp;
    if (observed.datastores) {
      status.datastores = observed.datastores.map((d) => ({
        name: d.name,
        pathsUp: d.pathsUp,
        state: d.state,
        ...(d.allPathsDownSince !== undefined ? { allPathsDownSince: new Date(d.allPathsDownSince).toISOString() } : {}),
      }));
    }
  }
  const blocked = host.spec.maintenance ? evacuationBlocked.slice(0, 50) : [];
  if (blocked.length > 0) status.evacuationBlocked = blocked.map((b) => ({ ...b }));
  const drift = driftStatus(host.status?.drift, hostDrift({ host, ...findings }), now);
  if (drift) status.drift = drift;
  const drifted = driftedCondition(drift, findings.unknownVms.length > 0
    ? { kind: "ReportOnly", message: `Vireo never deletes a VM it did not create: declare ${findings.unknownVms.length === 1 ? "it" : "them"} or remove ${findings.unknownVms.length === 1 ? "it" : "them"} on the host` }
    : { kind: "Correcting", message: `evacuating ${findings.vmsHeld.length} VMs for maintenance` });
  const desiredReached = host.spec.maintenance ? maintenanceReached : ready;
  const reason = !observed ? "Registering" : phase;
  const message = describeHost(phase, observed, cluster);
  status.conditions = summarize(host.status?.conditions, {
    ready: desiredReached,
    reason,
    message,
    ...(cluster === undefined ? { stalled: { reason: "NoCluster", message: "no HostCluster selects this host" } } : {}),
    conditions: [
      drifted,
      blocked.length > 0 ? { type: "EvacuationBlocked", status: true, reason: "VmsCannotLeave", message: `${blocked.length} VM${blocked.length === 1 ? "" : "s"} cannot leave: ${blocked.slice(0, 3).map((b) => `${b.vm} (${b.reason})`).join("; ")}` } : undefined,
    ],
  }, iso, generation);
  return status;
}

function describeHost(phase: HostPhase, observed: Readonly<HostObservation> | undefined, cluster: string | undefined): string {
  if (!observed) return "waiting for the host's first report";
  const where = cluster ? ` in cluster ${cluster}` : "";
  switch (phase) {
    case "Ready": return `host is up${where} with ${observed.vmCount} VMs`;
    case "EnteringMaintenance": return `evacuating ${observed.vmCount} VMs before maintenance`;
    case "Maintenance": return "in maintenance: no VMs run here";
    case "Failed": return "no network or datastore heartbeat: host failed";
    case "Isolated": return "no network heartbeat, datastore heartbeat alive: host isolated";
    case "Partitioned": return "no network heartbeat, datastore heartbeat alive, not isolated: partitioned from the controller; its VMs keep running";
    case "NotResponding": return "no heartbeat";
  }
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

