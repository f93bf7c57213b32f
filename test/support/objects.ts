// Vireo objects and host reports built by hand for the planners' unit tests: what the API server's
// defaulting makes of a short manifest (test/planners/cluster-plan.test.ts checks that it still does), and
// observations as a host would report them. No store, no simulator, no clock.

import { API_VERSION, CLUSTER_LABEL } from "../../controller/api/types.ts";
import type {
  HAPolicy,
  Host,
  HostCluster,
  HostClusterSpec,
  RestartPriority,
  RunStrategy,
  VirtualMachine,
  VirtualMachineStatus,
  VmExitReason,
  VmStatusNetwork,
  MigrationPolicy,
} from "../../controller/api/types.ts";
import { hostConfig } from "../../controller/planners/hosts.ts";
import { reachableDatastores } from "../../controller/planners/ha/storage.ts";
import type { CandidateHost } from "../../controller/placement/types.ts";
import type { HostFacts } from "../../controller/planners/cluster/types.ts";
import { desiredConfig } from "../../controller/planners/lifecycle.ts";
import type { HostObservation, VmObservation, VmPowerState } from "../../controller/core/observation.ts";

export const GiB = 1024;
/** A fixed wall-clock origin for the tests' timestamps: 2026-01-01T00:00:00Z. */
export const T0 = Date.UTC(2026, 0, 1);

export interface HostOptions {
  memoryGiB?: number;
  maintenance?: boolean;
}

/** A 16-core (64 vCPUs at 4:1) host of cluster prod, 16 GiB unless said, seeing datastore shared and network prod. */
export function hostObject(name: string, o: HostOptions = {}): Host {
  return {
    apiVersion: API_VERSION,
    kind: "Host",
    metadata: { name, generation: 1, labels: { [CLUSTER_LABEL]: "prod" } },
    spec: {
      hypervisor: "esx",
      cpu: { cores: 16, vendor: "intel", features: [], overcommitRatio: 4 },
      memoryMiB: (o.memoryGiB ?? 16) * GiB,
      datastores: ["shared"],
      networks: ["prod"],
      storagePaths: 2,
      maintenance: o.maintenance ?? false,
    },
  };
}

/** Cluster prod, Spread, HA on with HostFailuresToTolerate 1 unless another admission control is given. */
export function clusterObject(admissionControl: HostClusterSpec["ha"]["admissionControl"] = { policy: "HostFailuresToTolerate", hostFailures: 1 }): HostCluster {
  return {
    apiVersion: API_VERSION,
    kind: "HostCluster",
    metadata: { name: "prod", generation: 1 },
    spec: {
      hostSelector: { matchLabels: { [CLUSTER_LABEL]: "prod" } },
      placement: { strategy: "Spread" },
      ha: { enabled: true, failureDetectionSeconds: 15, admissionControl },
      balancing: { mode: "Manual", threshold: 3, intervalSeconds: 300, maxMigrationsPerHost: 2 },
        migration: { bandwidthMiBps: 128, downtimeLimitMs: 300, maxRounds: 30, noProgressTimeoutSeconds: 150, completionTimeoutPerGiBSeconds: 800, autoConverge: false, parallelMigrations: 5, parallelOutboundPerHost: 2 },
      replication: { bandwidthMiBps: 100 },
      faultTolerance: { maxVmsPerHost: 4, maxVcpusPerHost: 8, maxVcpusPerVm: 8, loggingBandwidthMiBps: 1192 },
    },
  };
}

export interface VmOptions {
  cpu?: number;
  memoryGiB?: number;
  runStrategy?: RunStrategy;
  labels?: Record<string, string>;
  status?: VirtualMachineStatus;
  migrationPolicy?: MigrationPolicy;
}

/** A VM of cluster prod, default namespace: 2 vCPUs and 4 GiB, runStrategy Always, unless said; one disk on shared, one NIC on prod. */
export function vmObject(name: string, options: VmOptions = {}): VirtualMachine {
  const o = { cpu: 2, memoryGiB: 4, runStrategy: "Always" as RunStrategy, labels: { app: name }, ...options };
  return {
    apiVersion: API_VERSION,
    kind: "VirtualMachine",
    metadata: { name, namespace: "default", generation: 1, labels: o.labels },
    spec: {
      runStrategy: o.runStrategy,
      cpu: o.cpu,
      memoryMiB: o.memoryGiB * GiB,
      cpuFeatures: [],
      disks: [{ name: "root", sizeGiB: 20, datastore: "shared" }],
      networks: [{ name: "prod" }],
      placement: { cluster: "prod" },
      migration: { policy: o.migrationPolicy ?? "Live" },
    },
    ...(o.status ? { status: o.status } : {}),
  };
}

export function haPolicyObject(name: string, restartPriority: RestartPriority, matchLabels: Record<string, string>): HAPolicy {
  return {
    apiVersion: API_VERSION,
    kind: "HAPolicy",
    metadata: { name, namespace: "default", generation: 1 },
    spec: {
      selector: { matchLabels },
      restartPriority,
      readyCondition: "ResourcesAllocated",
      readyTimeoutSeconds: 600,
      startAfter: [],
      startDelaySeconds: 0,
      isolationResponse: "LeavePoweredOn",
      vmMonitoring: { enabled: false, sensitivity: "Medium" },
      protection: "Restart",
    },
  };
}

/** The MACs Vireo assigned to a VM's networks: fixed per VM name. */
export function networksOf(vm: Readonly<VirtualMachine>): VmStatusNetwork[] {
  return vm.spec.networks.map((n, i) => ({ name: n.name, macAddress: `52:54:00:00:${String(i).padStart(2, "0")}:${vm.metadata.name.length.toString(16).padStart(2, "0")}` }));
}

export interface HostReportOptions {
  /** The last network heartbeat; the datastore heartbeat too unless `datastoreAt` says otherwise. */
  at: number;
  datastoreAt?: number;
  leaseExpiryMs?: number;
  /** Datastores with no path left, and since when. */
  allPathsDown?: Record<string, number>;
  /** The VMs holding resources on the host, for its allocation and count. */
  vms?: readonly VmObservation[];
}

export function hostReport(host: Readonly<Host>, o: HostReportOptions): HostObservation {
  const holding = (o.vms ?? []).filter((vm) => vm.host === host.metadata.name && vm.power !== "Off");
  const down = o.allPathsDown ?? {};
  return {
    name: host.metadata.name,
    config: hostConfig(host),
    lastNetworkHeartbeat: o.at,
    lastDatastoreHeartbeat: o.datastoreAt ?? o.at,
    storagePathsUp: Object.keys(down).length > 0 ? 0 : host.spec.storagePaths,
    datastores: host.spec.datastores.map((name) => down[name] !== undefined
      ? { name, pathsUp: 0, state: "AllPathsDown" as const, allPathsDownSince: down[name] }
      : { name, pathsUp: host.spec.storagePaths, state: "Ok" as const }),
    ...(o.leaseExpiryMs !== undefined ? { leaseExpiryMs: o.leaseExpiryMs } : {}),
    allocated: { cpu: holding.reduce((s, vm) => s + vm.config.cpu, 0), memoryMiB: holding.reduce((s, vm) => s + vm.config.memoryMiB, 0) },
    used: { cpu: 0, memoryMiB: 0 },
    vmCount: holding.length,
  };
}

export interface VmReportOptions {
  /** When it entered its power state; also when it was powered on, if it is on. */
  since: number;
  poweredOnAt?: number;
  lastExit?: { reason: VmExitReason; at: number };
  /** The spec it runs with, when not the VM's own (a spec changed since it started). */
  runningAs?: Readonly<VirtualMachine>;
}

export function vmReport(vm: Readonly<VirtualMachine>, host: string, power: VmPowerState, o: VmReportOptions): VmObservation {
  const config = desiredConfig(o.runningAs ?? vm, networksOf(vm), undefined, []);
  const on = power !== "Off";
  return {
    id: `${vm.metadata.namespace ?? "default"}/${vm.metadata.name}`,
    host,
    power,
    config,
    since: o.since,
    ...(on ? { poweredOnAt: o.poweredOnAt ?? o.since } : {}),
    ...(o.lastExit ? { lastExit: o.lastExit } : {}),
    cpuUsage: on ? 0.5 : 0,
    revision: 1,
  };
}

/** A host as placement sees it, the way the engine builds its snapshot: only datastores it still reaches. */
export function candidateOf(h: Readonly<HostFacts>): CandidateHost {
  const spec = h.host!.spec;
  return {
    name: h.name,
    labels: h.observed?.config.labels ?? {},
    hypervisor: spec.hypervisor,
    cpu: { ...spec.cpu },
    memoryMiB: spec.memoryMiB,
    datastores: reachableDatastores(spec.datastores, h.observed),
    networks: spec.networks,
    ...(h.unavailable ? { unavailable: h.unavailable } : {}),
  };
}
