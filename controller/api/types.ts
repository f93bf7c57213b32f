// The Vireo objects (API group vireo.dev, version v1alpha1) as TypeScript types.
// The CRDs under crds/ are the source of truth for the schema; these types mirror them after defaulting.

export const GROUP = "vireo.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;

export type Kind = "Host" | "HostCluster" | "VirtualMachine" | "HAPolicy" | "Fault" | "VirtualMachineMigration" | "RecoveryPlan" | "LabTopology";
export const KINDS: readonly Kind[] = ["Host", "HostCluster", "VirtualMachine", "HAPolicy", "Fault", "VirtualMachineMigration", "RecoveryPlan", "LabTopology"];

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export type ConditionStatus = "True" | "False" | "Unknown";

export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

/**
 * One operation of a drift patch (RFC 6902): what to do to the implied document to get the observed one.
 * `value` is the observed value, as JSON text when it is not a string, so the CRD schema stays structural.
 */
export interface DriftOperation {
  op: "add" | "remove" | "replace";
  path: string;
  value?: string;
}

/** How what the hosts report differs from what the spec implies (docs/drift.md). Absent when in sync. */
export interface DriftStatus {
  /** The first operations of the patch, at most MAX_DRIFT_OPERATIONS. */
  operations: DriftOperation[];
  /** Operations in the whole patch. */
  count: number;
  /** When the drift began. */
  since: string;
}

export interface LabelSelectorRequirement {
  key: string;
  operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

// ---------------------------------------------------------------- Host

export type Hypervisor = "esx" | "hyperv" | "kvm" | "xen";
/** A NIC's device model: VMware's, QEMU's, Hyper-V's synthetic (netvsc) and emulated (legacy), Xen's PV (netfront). */
export type NicModel = "vmxnet3" | "e1000" | "e1000e" | "virtio" | "rtl8139" | "netvsc" | "legacy" | "netfront";
/** The firmware a VM boots with. */
export type Firmware = "BIOS" | "EFI" | "EFISecureBoot";
export type CpuVendor = "intel" | "amd";

export interface HostCpu {
  cores: number;
  vendor: CpuVendor;
  model?: string;
  features: string[];
  overcommitRatio: number;
}

export interface HostSpec {
  hypervisor: Hypervisor;
  cpu: HostCpu;
  memoryMiB: number;
  datastores: string[];
  networks: string[];
  storagePaths: number;
  maintenance: boolean;
}

export type HostPhase = "Ready" | "NotResponding" | "Isolated" | "Partitioned" | "Failed" | "EnteringMaintenance" | "Maintenance";

export interface HostStatus {
  observedGeneration?: number;
  phase?: HostPhase;
  cluster?: string;
  lastHeartbeatTime?: string;
  lastDatastoreHeartbeatTime?: string;
  allocated?: { cpu: number; memoryMiB: number };
  capacity?: { cpu: number; memoryMiB: number };
  used?: { cpu: number; memoryMiB: number };
  vmCount?: number;
  storagePathsUp?: number;
  /** How the host reaches each datastore it sees: paths up, and Ok, Degraded or AllPathsDown. */
  datastores?: { name: string; pathsUp: number; state: "Ok" | "Degraded" | "AllPathsDown"; allPathsDownSince?: string }[];
  /** The VMs that cannot leave while the host enters maintenance, with the reason. */
  evacuationBlocked?: { vm: string; reason: string }[];
  drift?: DriftStatus;
  conditions?: Condition[];
}

export interface Host {
  apiVersion: typeof API_VERSION;
  kind: "Host";
  metadata: ObjectMeta;
  spec: HostSpec;
  status?: HostStatus;
}

// ---------------------------------------------------------------- HostCluster

export type PlacementStrategy = "Spread" | "Pack";
export type AdmissionControlPolicy = "HostFailuresToTolerate" | "ReservedPercentage" | "DedicatedFailoverHosts" | "Disabled";

export interface HostClusterSpec {
  hostSelector: LabelSelector;
  cpuBaseline?: { vendor?: CpuVendor; features: string[] };
  placement: { strategy: PlacementStrategy };
  ha: {
    enabled: boolean;
    failureDetectionSeconds: number;
    admissionControl: {
      policy: AdmissionControlPolicy;
      hostFailures?: number;
      cpuPercent?: number;
      memoryPercent?: number;
      failoverHosts?: string[];
    };
  };
  balancing: {
    /** Disabled (no passes), Manual (recommendations only, applied when approved) or Automatic. */
    mode: "Disabled" | "Manual" | "Automatic";
    /** 1 (only mandatory moves) … 5 (even slight gains), as DRS's migration threshold. */
    threshold: number;
    intervalSeconds: number;
    /** Balancing migrations leaving one host at once (within migration.parallelOutboundPerHost). */
    maxMigrationsPerHost: number;
  };
  /** How VMs of the cluster migrate live, and how many at once (BEHAVIOUR.md, Live migration). */
  migration: ClusterMigrationSettings;
  /** The replication link out of the cluster: the syncs of its VMs to one target cluster share one such link (one per pair of clusters). */
  replication: { bandwidthMiBps: number };
  /** Fault tolerance's limits and logging link (BEHAVIOUR.md: 4 FT VMs, 8 FT vCPUs per host; 8 vCPUs per FT VM; 10 Gbit/s). */
  faultTolerance: { maxVmsPerHost: number; maxVcpusPerHost: number; maxVcpusPerVm: number; loggingBandwidthMiBps: number };
}

export interface ClusterMigrationSettings {
  bandwidthMiBps: number;
  downtimeLimitMs: number;
  maxRounds: number;
  noProgressTimeoutSeconds: number;
  completionTimeoutPerGiBSeconds: number;
  autoConverge: boolean;
  /** Migrations under way in the cluster at once (KubeVirt: 5). */
  parallelMigrations: number;
  /** Migrations leaving one host at once (KubeVirt: 2). */
  parallelOutboundPerHost: number;
}

export interface HostClusterStatus {
  observedGeneration?: number;
  hostsReady?: number;
  hostsTotal?: number;
  capacity?: { cpu: number; memoryMiB: number };
  allocated?: { cpu: number; memoryMiB: number };
  vmsRunning?: number;
  vmsTotal?: number;
  vmsUnschedulable?: number;
  /** VMs protected by HA that wait for capacity to restart (or to be admitted). */
  vmsAwaitingCapacity?: number;
  /** How many host failures the cluster can survive right now, found by re-placing protected VMs. */
  failoverCapacity?: FailoverCapacityStatus;
  /** The last balancing pass: imbalance, target and the moves recommended (Manual mode). */
  balancing?: ClusterBalancingStatus;
  conditions?: Condition[];
}

export interface ClusterBalancingStatus {
  /** The standard deviation of host load (Σ VM demand / capacity, the larger of CPU and memory) at the last pass. */
  imbalance: number;
  /** The imbalance the threshold tolerates. */
  target: number;
  /** The imbalance once the last pass's moves (Automatic) or recommendations (Manual) are done. */
  projectedImbalance?: number;
  lastPassTime?: string;
  /** Live migrations the last pass began (Automatic). */
  movesStarted?: number;
  /** What the last pass concluded, or why no pass ran. */
  message?: string;
  /** Manual: the moves recommended (at most 20), in the order they were found; approve one by its id. */
  recommendations?: BalancingRecommendation[];
}

export interface BalancingRecommendation {
  /** Stable while the same move is recommended: a hash of VM, source and target. */
  id: string;
  /** "namespace/name". */
  vm: string;
  from: string;
  to: string;
  /** How much the move lowers the imbalance (negative for one that repairs a preferred rule at some cost in balance). */
  gain: number;
  /** Memory the migration is predicted to copy, MiB. */
  costMiB: number;
  reason: string;
}

export interface FailoverCapacityStatus {
  /** Host failures the cluster survives now: every protected VM of the failed hosts restarts elsewhere. */
  tolerates: number;
  /** Host failures the admission control policy asks for (HostFailuresToTolerate; 1 with dedicated failover hosts). */
  required?: number;
  /** The smallest set of hosts found whose failure leaves a protected VM without a host. */
  worstCase?: string[];
  /** Protected VMs of the worst case that would find no host. */
  unplaceable?: number;
}

export interface HostCluster {
  apiVersion: typeof API_VERSION;
  kind: "HostCluster";
  metadata: ObjectMeta;
  spec: HostClusterSpec;
  status?: HostClusterStatus;
}

// ---------------------------------------------------------------- VirtualMachine

export type RunStrategy = "Always" | "RerunOnFailure" | "Once" | "Manual" | "Halted";

export interface VmDisk {
  name: string;
  sizeGiB: number;
  datastore: string;
}

/** A network attachment. `macAddress` may be given; otherwise Vireo assigns one and reports it in status. */
export interface VmNetwork {
  name: string;
  macAddress?: string;
  /** The NIC's device model; absent, the platform's paravirtual one (vmxnet3, virtio, netvsc, netfront). */
  model?: NicModel;
}

export interface HostAffinityTerm {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export interface WeightedHostAffinityTerm {
  weight: number;
  preference: HostAffinityTerm;
}

export interface VmAffinityTerm {
  labelSelector: LabelSelector;
  topologyKey: string;
  /** Namespaces the selector looks in; the VM's own namespace when empty. */
  namespaces?: string[];
}

export interface WeightedVmAffinityTerm {
  weight: number;
  term: VmAffinityTerm;
}

export interface VmPlacement {
  cluster: string;
  hypervisor?: Hypervisor;
  hostAffinity?: { required?: HostAffinityTerm[]; preferred?: WeightedHostAffinityTerm[] };
  vmAffinity?: { required?: VmAffinityTerm[]; preferred?: WeightedVmAffinityTerm[] };
  vmAntiAffinity?: { required?: VmAffinityTerm[]; preferred?: WeightedVmAffinityTerm[] };
}

export type MigrationPolicy = "Live" | "LiveIfPossible" | "Cold" | "Never";

export interface VmMigrationSpec {
  /** Live; LiveIfPossible (cold, one reboot, when live is impossible or failed); Cold; Never. */
  policy: MigrationPolicy;
  bandwidthMiBps?: number;
  downtimeLimitMs?: number;
  autoConverge?: boolean;
}

export interface VirtualMachineSpec {
  runStrategy: RunStrategy;
  cpu: number;
  memoryMiB: number;
  cpuFeatures: string[];
  disks: VmDisk[];
  networks: VmNetwork[];
  placement: VmPlacement;
  /** How the VM may move, and its own overrides of the cluster's migration settings. */
  migration: VmMigrationSpec;
  /** CPU usage profile of the guest in the simulator (how busy it is over time), and how fast it dirties memory. */
  workload?: { profile: "Idle" | "Steady" | "Diurnal" | "Bursty"; cpuPercent: number; dirtyRateMiBps?: number; diskWriteRateMiBps?: number };
  /** Disk replication to another cluster (docs/replication.md); the CRD defaults rpoSeconds to 4 h. */
  replication?: VmReplicationSpec;
  /** How long the VM may live, from its creation: `ttl` is a duration such as "720h" (docs/labs.md). */
  lease?: { ttl: string; onExpiry: "Stop" | "Delete" };
  /** Who the VM belongs to (a person or team), for usage reports and leases. */
  owner?: string;
  /** The firmware it boots with; BIOS when absent. */
  firmware?: Firmware;
}

/** One source network of the VM and the network of the target cluster its NICs join on recovery. */
export interface NetworkMapping {
  source: string;
  target: string;
}

export interface VmReplicationSpec {
  /** The HostCluster that holds the replica and runs the VM after a failover; not the VM's own. */
  targetCluster: string;
  /** The recovery point objective, 300 (5 min) … 86400 (24 h) seconds. */
  rpoSeconds: number;
  /** Point-in-time instances kept besides the latest, 0–24. */
  instances: number;
  /** Where each network's NICs go on recovery; a network not listed keeps its name. */
  networkMapping: NetworkMapping[];
  /** Whether recovered NICs keep their MAC addresses (true) or get new ones. */
  keepMacAddresses: boolean;
}

export type VmPhase = "Pending" | "Unschedulable" | "Starting" | "Running" | "Migrating" | "Stopping" | "Stopped" | "Failed";

export interface VmStatusNetwork {
  name: string;
  macAddress: string;
}

/** ManualPowerOff: someone powered the VM off on its host, behind Vireo's back (drift, not a failure). */
export type VmExitReason = "GuestShutdown" | "PoweredOff" | "HostFailure" | "Crashed" | "IsolationResponse" | "StorageFailure" | "ManualPowerOff";

export interface VirtualMachineStatus {
  observedGeneration?: number;
  phase?: VmPhase;
  host?: string;
  networks?: VmStatusNetwork[];
  restarts?: number;
  /** The last time the VM stopped without Vireo asking it to, and why. */
  lastExit?: { reason: VmExitReason; time: string };
  /** When the current (or last) run began: lets Once and RerunOnFailure tell a finished run from a new one. */
  startedAt?: string;
  /** The last time HA restarted the VM elsewhere, or is trying to. */
  lastFailover?: VmFailoverStatus;
  /** VM monitoring resets inside the current window. */
  monitoringResets?: { count: number; windowStart: string; last?: string };
  /** The VM's replica, as its target site reports it (vSphere Replication's status). */
  replication?: VmReplicationStatus;
  /** Fault tolerance, for a VM an HAPolicy protects with FaultTolerance. */
  faultTolerance?: VmFaultToleranceStatus;
  drift?: DriftStatus;
  conditions?: Condition[];
}

export type ReplicationState = "Initializing" | "Replicating" | "Paused" | "Error" | "FailedOver";

export interface VmReplicationStatus {
  state: ReplicationState;
  /** The cluster and datastore holding the replica. */
  targetCluster: string;
  datastore?: string;
  rpoSeconds: number;
  lastSyncTime?: string;
  lastSyncDurationSeconds?: number;
  lastSyncMiB?: number;
  nextSyncTime?: string;
  /** How old the replica is: seconds since the start of the last completed sync. */
  lagSeconds?: number;
  /** Whether the RPO is violated now (vSphere Replication's rule). */
  rpoViolated: boolean;
  /** The point-in-time instances kept, oldest first. */
  instances?: string[];
  /** Set when the replica ran the VM: what it was recovered from and what was lost. */
  failover?: VmReplicaFailoverStatus;
}

export interface VmReplicaFailoverStatus {
  /** Unplanned (Failover, automatic or by a plan), planned (Migrate, Failback). */
  kind: "Automatic" | "Failover" | "Migrate" | "Failback";
  fromCluster: string;
  toCluster: string;
  host: string;
  /** The instance the VM started from: the start of the sync it reflects. */
  instanceTime: string;
  time: string;
  /** Writes lost: from the instance to when the original stopped writing, seconds and MiB. */
  dataLossSeconds: number;
  dataLossMiB: number;
}

/**
 * Starting: the secondary is being made (a live copy). Protected: it runs in lockstep. NeedsSecondary: it
 * has none and waits for one (after a switch-over or its host's failure, or for room). NotProtected: it
 * cannot have one (`reason`: the limits, too few hosts, not running).
 */
export type FaultToleranceState = "Starting" | "Protected" | "NeedsSecondary" | "NotProtected";

export interface VmFaultToleranceStatus {
  state: FaultToleranceState;
  reason?: string;
  secondaryHost?: string;
  /** How far the secondary trails the primary, ms. */
  lagMs?: number;
  /** How much the FT logging link slows the primary, percent. */
  slowdownPercent?: number;
  /** Times the secondary went live, and the last time. */
  switchovers?: number;
  lastSwitchover?: { from: string; to: string; time: string };
  /** Since when the VM has been without a secondary, while it has none. */
  unprotectedSince?: string;
}

export interface VmFailoverStatus {
  /** The host the VM ran on when it failed. */
  fromHost: string;
  /** The host it was restarted on, once it was. */
  toHost?: string;
  /** Why: HostFailure, HostIsolation, StorageFailure (APD). */
  reason: string;
  /** When the failure began (the failed host's last heartbeat). */
  failedAt: string;
  /** Restart attempts so far (vSphere HA makes 5). */
  attempts: number;
  /** When the last attempt was made. */
  lastAttempt?: string;
}

export interface VirtualMachine {
  apiVersion: typeof API_VERSION;
  kind: "VirtualMachine";
  metadata: ObjectMeta;
  spec: VirtualMachineSpec;
  status?: VirtualMachineStatus;
}

// ---------------------------------------------------------------- HAPolicy

export type RestartPriority = "Highest" | "High" | "Medium" | "Low" | "Lowest" | "Disabled";
export type ReadyCondition = "ResourcesAllocated" | "PoweredOn" | "GuestHeartbeat";
export type IsolationResponse = "LeavePoweredOn" | "PowerOff" | "Shutdown";
export type MonitoringSensitivity = "High" | "Medium" | "Low";

export interface HAPolicySpec {
  selector: LabelSelector;
  restartPriority: RestartPriority;
  /** When this policy's VMs count as started, for lower priorities and for policies that start after it. */
  readyCondition: ReadyCondition;
  /** After this long the next priority starts anyway. */
  readyTimeoutSeconds: number;
  /** Other HAPolicies (same namespace) whose VMs must meet their readyCondition first. */
  startAfter: string[];
  /** Extra wait after the VMs this policy's VMs start after are ready. */
  startDelaySeconds: number;
  isolationResponse: IsolationResponse;
  vmMonitoring: {
    enabled: boolean;
    sensitivity: MonitoringSensitivity;
    heartbeatTimeoutSeconds?: number;
    maxResets?: number;
    resetWindowSeconds?: number;
  };
  protection: "Restart" | "Replicate" | "FaultTolerance";
}

export interface HAPolicyStatus {
  observedGeneration?: number;
  vmsProtected?: number;
  vmsUnprotected?: number;
  unprotected?: { vm: string; reason: string }[];
  conflicts?: string[];
  lastFailovers?: { vm: string; fromHost: string; toHost: string; time: string; reason: string }[];
  conditions?: Condition[];
}

export interface HAPolicy {
  apiVersion: typeof API_VERSION;
  kind: "HAPolicy";
  metadata: ObjectMeta;
  spec: HAPolicySpec;
  status?: HAPolicyStatus;
}

// ---------------------------------------------------------------- Fault

export type FaultType = "HostCrash" | "NetworkIsolation" | "NetworkPartition" | "StoragePathLoss" | "GuestHang" | "SlowHost";

export interface FaultSpec {
  type: FaultType;
  target: {
    host?: string;
    /** NetworkPartition: the hosts cut off from the rest (they still reach each other). */
    hosts?: string[];
    /** GuestHang: the VM. */
    vm?: { namespace: string; name: string };
    /** StoragePathLoss: the datastore whose paths fail. */
    datastore?: string;
    /** StoragePathLoss: how many paths fail; all when omitted. */
    paths?: number;
    /**
     * NetworkPartition: the hosts' datastores are cut off from the controller too (a whole site behind a
     * broken WAN link): their datastore heartbeats can no longer be read from outside.
     */
    includeStorage?: boolean;
  };
  startAfterSeconds: number;
  /** The fault heals after this long; it lasts until deleted when omitted. */
  durationSeconds?: number;
  /** SlowHost: how many times slower the host boots and shuts guests down. */
  slowdownFactor?: number;
}

export type FaultPhase = "Pending" | "Active" | "Healed" | "Failed";

export interface FaultStatus {
  observedGeneration?: number;
  phase?: FaultPhase;
  startTime?: string;
  healTime?: string;
  message?: string;
  conditions?: Condition[];
}

export interface Fault {
  apiVersion: typeof API_VERSION;
  kind: "Fault";
  metadata: ObjectMeta;
  spec: FaultSpec;
  status?: FaultStatus;
}

// ---------------------------------------------------------------- VirtualMachineMigration

export type MigrationRequestPhase = "Pending" | "Scheduling" | "PreCopy" | "Switchover" | "ShuttingDown" | "Converting" | "Starting" | "Succeeded" | "Failed" | "Cancelled";

export interface VirtualMachineMigrationSpec {
  vmName: string;
  targetHost?: string;
  /**
   * A hypervisor type other than the VM's: a conversion (V2V), always cold, to a host of that type in the
   * VM's cluster (`targetHost`, or placement's choice). A `targetHost` of another type is a conversion too.
   */
  targetHypervisor?: Hypervisor;
  mode: "Live" | "Cold";
  /** A conversion: whether the NICs keep their MAC addresses (default) or get new ones. */
  keepMacAddresses: boolean;
}

/** What a conversion's pre-check found: what cannot work (refused), and what will not survive the move. */
export interface ConversionPreCheck {
  from: Hypervisor;
  to: Hypervisor;
  /** Why the conversion cannot work; empty when it can. */
  blockers: string[];
  /** What changes or is lost on the way (a NIC model swapped, guest tools, a replica). */
  warnings: string[];
  /** The simulated conversion's time, from the disks' size and the rate, s. */
  estimatedSeconds: number;
  diskMiB: number;
}

/** What Vireo expects of a live migration before anything is copied. */
export interface MigrationEstimate {
  converges: boolean;
  rounds: number;
  downtimeMs: number;
  durationSeconds: number;
  transferMiB: number;
  reason?: string;
}

export interface VirtualMachineMigrationStatus {
  observedGeneration?: number;
  phase?: MigrationRequestPhase;
  sourceHost?: string;
  targetHost?: string;
  estimate?: MigrationEstimate;
  rounds?: number;
  transferredMiB?: number;
  remainingMiB?: number;
  downtimeMs?: number;
  startTime?: string;
  completionTime?: string;
  failureReason?: string;
  attempts?: number;
  /** A conversion: the pre-check's findings, and how far the conversion got. */
  preCheck?: ConversionPreCheck;
  conversion?: { convertedMiB: number; totalMiB: number; startTime?: string; completionTime?: string };
  conditions?: Condition[];
}

export interface VirtualMachineMigration {
  apiVersion: typeof API_VERSION;
  kind: "VirtualMachineMigration";
  metadata: ObjectMeta;
  spec: VirtualMachineMigrationSpec;
  status?: VirtualMachineMigrationStatus;
}

// ---------------------------------------------------------------- RecoveryPlan

export type RecoveryAction = "Failover" | "Migrate" | "Test" | "Failback";
export type RecoveryPlanPhase = "Idle" | "Preparing" | "Running" | "Succeeded" | "Failed" | "WaitingForUser";
export type RecoveryStep = "Preparing" | "WaitingForFencing" | "FinalSync" | "Starting" | "WaitingForReadiness" | "CleaningUp";

export interface RecoveryPlanSpec {
  /** The replicated VMs of the plan's namespace it recovers. */
  selector: LabelSelector;
  action: RecoveryAction;
  /** Overrides the VMs' own network mappings, network by network. */
  networkMapping: NetworkMapping[];
  /** Test: the isolated network every copy's NICs join (fresh MACs). */
  testNetwork?: string;
  /** Test: the copies are cleaned up this long after the test began (status.startTime); they run until the plan is deleted when omitted. */
  testDurationSeconds?: number;
}

export type RecoveryVmResult = "Pending" | "Fencing" | "Syncing" | "Starting" | "Recovered" | "Failed" | "CleanedUp";

export interface RecoveryPlanVmStatus {
  /** "namespace/name" of the VM (for Test, of the VM the copy was made from). */
  vm: string;
  result: RecoveryVmResult;
  /** Test: the copy's name. */
  copy?: string;
  host?: string;
  cluster?: string;
  /** The instance it started from. */
  instanceTime?: string;
  dataLossSeconds?: number;
  dataLossMiB?: number;
  /** From the plan's start (or the failure) to the VM's readiness. */
  recoveryTimeSeconds?: number;
  message?: string;
}

export interface RecoveryPlanStatus {
  observedGeneration?: number;
  phase?: RecoveryPlanPhase;
  step?: RecoveryStep;
  message?: string;
  startTime?: string;
  completionTime?: string;
  vms?: RecoveryPlanVmStatus[];
  conditions?: Condition[];
}

export interface RecoveryPlan {
  apiVersion: typeof API_VERSION;
  kind: "RecoveryPlan";
  metadata: ObjectMeta;
  spec: RecoveryPlanSpec;
  status?: RecoveryPlanStatus;
}

// ---------------------------------------------------------------- LabTopology

export type LabNetworkMode = "Isolated" | "Fenced" | "Bridged";

export interface LabNetwork {
  name: string;
  /** The addresses the lab's NICs get on this network (IPv4 CIDR). */
  cidr: string;
  /**
   * Isolated: each copy its own segment. Fenced: every copy reuses the same internal addresses and MACs
   * behind its own fence, and gets external addresses unique across copies from `externalCidr`. Bridged:
   * one segment shared with everything else.
   */
  mode: LabNetworkMode;
  /** Fenced: where the external addresses come from. */
  externalCidr?: string;
  /** The host network the segment rides on; the network's own name when omitted. */
  uplink?: string;
}

export interface LabVmTemplate {
  cpu: number;
  memoryMiB: number;
  cpuFeatures: string[];
  disks: VmDisk[];
  workload?: VirtualMachineSpec["workload"];
  migration?: VmMigrationSpec;
}

/** What a tier waits for of a tier it depends on (vCloud Director's start-up section). */
export type LabWaitFor = "Started" | "Ready" | "GuestHeartbeat";

export interface LabDependency {
  tier: string;
  waitFor: LabWaitFor;
  /** Extra wait after the tier depended on meets `waitFor`. */
  delaySeconds: number;
  /** After this long without `waitFor` met, the lab is Stalled with the reason. */
  timeoutSeconds: number;
}

export interface LabTier {
  name: string;
  replicas: number;
  /** The VMs' names within the copy: `{index}` is the instance's index, `{tier}` the tier's name. */
  hostnamePattern: string;
  template: LabVmTemplate;
  /** The lab networks each VM of the tier has a NIC on, in order. */
  networks: string[];
  /** Per instance: a fixed hostname, or fixed addresses by network. */
  overrides: { index: number; hostname?: string; addresses?: Record<string, string> }[];
  dependsOn: LabDependency[];
  /** How the tier stops when the lab stops (in reverse dependency order), and the wait after. */
  stop: { action: "GuestShutdown" | "PowerOff"; delaySeconds: number };
}

export interface LabLease {
  /** Counted from the lab's power-on; the lab is stopped at its end ("8h"). */
  runtime?: string;
  /** Counted from the lab's stop; the lab is deleted at its end ("72h"). */
  storage?: string;
  /** From creation; no renewal reaches past it ("720h"). */
  maxLifetime?: string;
  /** Warn this long before each expiry (a LeaseExpiring condition and an Event). */
  warnBefore: string[];
}

export interface LabTopologySpec {
  /** Who the lab belongs to. */
  owner: string;
  /** The HostCluster its VMs are placed in. */
  cluster: string;
  /** Whether the lab runs (started in dependency order) or is stopped (in reverse order). */
  running: boolean;
  /** Copies of the whole lab (per platform). */
  copies: number;
  /** One set of copies per hypervisor, each placed only on hosts of it; any hypervisor when empty. */
  platforms: Hypervisor[];
  networks: LabNetwork[];
  tiers: LabTier[];
  lease?: LabLease;
}

export type LabPhase = "Pending" | "Starting" | "Running" | "Stopping" | "Stopped" | "Expired" | "Stalled";

export interface LabTierStatus {
  name: string;
  ready: number;
  total: number;
  /** Waiting, Starting, Running, Stopping, Stopped. */
  state: LabTierState;
  /** When the tier entered its state: a wait's timeout, a stop's delay count from here. */
  since?: string;
  message?: string;
}

export type LabTierState = "Waiting" | "Starting" | "Running" | "Stopping" | "Stopped";

export interface LabCopyStatus {
  /** The copy's name: `<platform>-<index>`, or `<index>` without platforms. */
  name: string;
  platform?: Hypervisor;
  ready: number;
  total: number;
  tiers: LabTierStatus[];
  /** Why the copy is not running, when one of its VMs cannot be placed (a platform without room). */
  message?: string;
}

export interface LabAddress {
  /** The VM's name. */
  vm: string;
  network: string;
  /** The segment the address is unique in: the network, per copy when Isolated or Fenced. */
  segment: string;
  address: string;
  /** Fenced: the address outside the fence, unique across copies. */
  externalAddress?: string;
  macAddress: string;
}

export interface LabTopologyStatus {
  observedGeneration?: number;
  phase?: LabPhase;
  copies?: LabCopyStatus[];
  addresses?: LabAddress[];
  /** When the lab last powered on, and stopped. */
  startedAt?: string;
  stoppedAt?: string;
  /** The next lease expiry, and what it does. */
  nextExpiry?: { time: string; action: "Stop" | "Delete" };
  /** Set when the runtime lease stopped the lab: it stays stopped until its spec changes (a renewal). */
  leaseStopped?: { time: string; generation: number };
  message?: string;
  conditions?: Condition[];
}

export interface LabTopology {
  apiVersion: typeof API_VERSION;
  kind: "LabTopology";
  metadata: ObjectMeta;
  spec: LabTopologySpec;
  status?: LabTopologyStatus;
}

/** Labels on every VM a lab makes. */
export const LAB_LABEL = "vireo.dev/lab";
export const COPY_LABEL = "vireo.dev/copy";
export const TIER_LABEL = "vireo.dev/tier";
/** An object with this label set to "true" is exempt from leases. */
export const LEASE_EXEMPT_LABEL = "vireo.dev/lease-exempt";

export type VireoObject = Host | HostCluster | VirtualMachine | HAPolicy | Fault | VirtualMachineMigration | RecoveryPlan | LabTopology;

/** The store's key of an object: "Kind/name" or "Kind/namespace/name". */
export function objectKey(kind: Kind, name: string, namespace?: string): string {
  return namespace ? `${kind}/${namespace}/${name}` : `${kind}/${name}`;
}

export function keyOf(obj: VireoObject): string {
  return objectKey(obj.kind, obj.metadata.name, obj.metadata.namespace);
}

/** The provider's id of a VM: "namespace/name". */
export function vmId(vm: Pick<VirtualMachine, "metadata">): string {
  return `${vm.metadata.namespace ?? "default"}/${vm.metadata.name}`;
}

/** Label every Host carries with its own name, so `vireo.dev/host` works as a topology key. */
export const HOST_LABEL = "vireo.dev/host";
/** Label that joins a Host to a HostCluster by convention. */
export const CLUSTER_LABEL = "vireo.dev/cluster";
