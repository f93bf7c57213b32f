// What the cluster planner reads and what it returns. The engine gathers a ClusterSituation from the store
// and the latest observation; planCluster turns it into a ClusterPlan; the engine executes the plan's
// actions, records their outcomes in the cluster's memory, and publishes the plan's verdicts for the VMs.

import type { BalancingRecommendation, HostCluster, HostClusterStatus, HostPhase, MigrationEstimate, VirtualMachine, VirtualMachineMigration, VmStatusNetwork } from "../../api/types.ts";
import type { MigrationObservation } from "../../core/migration.ts";
import type { ConversionObservation } from "../../core/conversion.ts";
import type { ConversionVerdict } from "./conversions.ts";
import type { Host } from "../../api/types.ts";
import type { HostObservation, VmObservation } from "../../core/observation.ts";
import type { ClusterSnapshot } from "../../placement/types.ts";
import type { Action } from "../actions.ts";
import type { FailoverReason, RestartAttempts } from "../ha/failover.ts";
import type { Protection } from "../ha/protection.ts";
import type { WaitReason } from "../ha/restart-order.ts";
import type { ReplicaObservation } from "../../core/replication.ts";
import type { SecondaryObservation } from "../../core/fault-tolerance.ts";
import type { FaultToleranceNote } from "../ha/fault-tolerance.ts";
import type { PlanFacts, ReplicaRole } from "../replication/role.ts";
import type { ReplicaSite } from "../replication/settings.ts";
import type { SiteState } from "../replication/site.ts";
import type { RecoveryRecord, ReplicationNote } from "../replication/status.ts";

/** A host as the planners see it: declared, observed, its phase and why it takes no new VM, if it takes none. */
export interface HostFacts {
  name: string;
  /** The declared host; undefined once its object is deleted (it is being removed). */
  host?: Host;
  observed?: HostObservation;
  cluster?: HostCluster;
  phase: HostPhase;
  /** Why the host takes no new VMs, or undefined when it may. */
  unavailable?: string;
  /**
   * Silent on the network, and its heartbeat datastores cannot be read: it may have failed or run on behind
   * a broken link. Only a person can tell (a Failover recovery plan is that person's word).
   */
  unconfirmed?: boolean;
}

/** One VM of the cluster with everything a stage may look at. */
export interface VmFacts {
  /** The VM as declared where it is now: in its own cluster as written, away from home as recovered (replication/role.ts). */
  vm: VirtualMachine;
  /** The VM as written. */
  declared: VirtualMachine;
  /** Home, away running from its replica, or recovering into this cluster. */
  role: ReplicaRole;
  /** Its replica, as the replica's site reports it. */
  replica?: ReplicaObservation;
  /** The RecoveryPlans selecting it, newest first. */
  plans: readonly PlanFacts[];
  /** "namespace/name", the provider's id. */
  id: string;
  /** The VM as its host last reported it. */
  instance?: VmObservation;
  /** The host the instance is on, member of this cluster or not. */
  instanceHost?: HostFacts;
  protection: Protection;
  /** The MACs of the VM's networks, as assigned. */
  networks: readonly VmStatusNetwork[];
  /** Its fault-tolerant secondary, as the hosts report it. */
  secondary?: SecondaryObservation;
}

/** What HA remembers of a failover between rounds: for the VM's status and the recovery time. */
export interface FailoverRecord {
  fromHost: string;
  toHost?: string;
  reason: string;
  failedAt: number;
  attempts: number;
  lastAttempt?: number;
}

/** What one round hands the next: restart attempts (vSphere's retry schedule), failovers under way, balancing. */
export interface ClusterMemory {
  attempts: ReadonlyMap<string, RestartAttempts>;
  failovers: ReadonlyMap<string, FailoverRecord>;
  balancing: BalancingMemory;
  /** Live moves the cluster itself began (evacuation, balancing), by VM id: how they went so far. */
  moves: ReadonlyMap<string, MoveRecord>;
}

/** What balancing remembers between passes. */
export interface BalancingMemory {
  /** When the last pass ran; the next is due `intervalSeconds` later. */
  lastPassAt?: number;
  /** VMs balancing moved, by id: how often within the last 24 h, and until when each is held down. */
  holdDowns: ReadonlyMap<string, HoldDown>;
}

/** BEHAVIOUR.md, Balancing (descheduler): a VM just moved stays put 15 min, doubling per repeat within 24 h, at most 6 h. */
export interface HoldDown {
  moves: number;
  lastMoveAt: number;
  until: number;
}

/** One live move the cluster began on its own account, and the attempts it took. */
export interface MoveRecord {
  stage: "evacuation" | "balancing";
  /** The migration's key, as the hosts report it. */
  key: string;
  target: string;
  /** When it was asked for: until the hosts report it, it counts as under way for a while. */
  startedAt: number;
  /** Live attempts that failed so far (evacuation retries a bounded number of times). */
  failures: number;
  lastFailure?: string;
}

export interface ClusterSituation {
  cluster: HostCluster;
  /** The cluster's member hosts, by name. */
  hosts: readonly HostFacts[];
  /** Every VM declared in the cluster. */
  vms: readonly VmFacts[];
  /** The placement view of the cluster: its hosts as candidates and the VMs holding resources on them. */
  snapshot: ClusterSnapshot;
  memory: ClusterMemory;
  /** Migrations the hosts report for the cluster's VMs: under way, or the last one of each VM once ended. */
  migrations: readonly MigrationObservation[];
  /** Conversions to another hypervisor type the hosts report for the cluster's VMs: under way, or the last one of each VM. */
  conversions?: readonly ConversionObservation[];
  /** VirtualMachineMigration requests naming the cluster's VMs, not yet ended. */
  requests: readonly VirtualMachineMigration[];
  /** Every declared host's cluster (undefined: none), to tell a missing target from another cluster's. */
  hostClusters: ReadonlyMap<string, string | undefined>;
  /** The last round's verdicts on the requests, by "namespace/name": a move begun stays begun. */
  previousRequests?: ReadonlyMap<string, RequestVerdict>;
  /** Balancing recommendations a person approved (`vireo balance approve`), by id. */
  approvedRecommendations?: readonly string[];
  /** Whether the cluster's site is lost (every host silent), as far as the controller can tell. */
  site: SiteState;
  /** The clusters the VMs replicate to (and this one), by name: what a replica may be placed on. */
  replicaSites: ReadonlyMap<string, ReplicaSite>;
  now: number;
}

/**
 * The planner's word on one VM, read by the VM's own reconcile to say where it stands. Only VMs the
 * cluster holds back or moves get one; a VM with none is left to its lifecycle.
 */
export type VmVerdict =
  /** HA restarts it after a failure, but not yet (lease, restart order, retry, capacity, power-on slots). */
  | { kind: "Waiting"; reason: WaitReason | SiteWaitReason; message: string; until?: number }
  /** HA tried every attempt and gave up: the VM is Failed. */
  | { kind: "RestartFailed"; message: string }
  /** Admission control keeps its power-on back: the cluster could not absorb a host failure with it running. */
  | { kind: "NotAdmitted"; message: string; /** Refused even were it the only VM waiting: its own rules or size. */ ownReason: boolean; /** The higher-priority VM it waits behind, if any. */ behind?: string }
  /** No host can take it now; kube-scheduler's per-reason message. */
  | { kind: "Unschedulable"; message: string }
  /** It is being moved off a host that must be emptied, or by a request: cold (shut down now) or live (soon). */
  | { kind: "Evacuating"; host: string; message: string; cold: boolean }
  /** It cannot leave a host that must be emptied: why (policy Never, pinned, no room, live attempts failed). */
  | { kind: "EvacuationBlocked"; host: string; message: string }
  /** It migrates live now. */
  | { kind: "Migrating"; target: string; message: string }
  /** A VirtualMachineMigration converts it for another hypervisor type (shut down, converted, started on `target`). */
  | { kind: "Converting"; target: string; message: string };

/**
 * Why a VM of a lost site, or one recovering from its replica, waits: its original may still run
 * (WaitingForFencing), a recovery plan has not released it, a person must tell loss from partition
 * (WaitingForUser), or nothing can recover it (SiteLost: no replica, or not protected by one).
 */
export type SiteWaitReason = "WaitingForFencing" | "WaitingForRecoveryPlan" | "WaitingForUser" | "SiteLost";

/** A verdict, and the generation of the VM it was made for: a spec changed since makes it stale. */
export type PublishedVerdict = VmVerdict & { generation: number | undefined };

/** A start the plan asks for, and what kind of start it is, for the engine's records. */
export type ClusterAction =
  | { stage: "restarts"; action: Extract<Action, { type: "Start" | "Recover" }>; restart: { fromHost: string; reason: FailoverReason; failedAt: number; priority: string }; recovery?: RecoveryRecord }
  | { stage: "placement"; action: Extract<Action, { type: "Start" }> }
  | { stage: "evacuation" | "migrations" | "balancing"; action: Extract<Action, { type: "Stop" | "Migrate" | "CancelMigration" }> }
  | { stage: "migrations"; action: Extract<Action, { type: "Convert" | "Start" }> }
  | { stage: "replication"; action: Extract<Action, { type: "Replicate" | "StopReplication" }> }
  | { stage: "faultTolerance" | "balancing"; action: Extract<Action, { type: "Protect" | "Unprotect" }> };

/** A balancing move, recommended (Manual) or made (Automatic): as the HostCluster's status lists it. */
export type Recommendation = BalancingRecommendation;

/** What a balancing pass found. */
export interface BalancingReport {
  /** The standard deviation of host load (Σ VM demand / host capacity, the larger of CPU and memory), before the pass's moves. */
  imbalance: number;
  /** What the threshold tolerates. */
  target: number;
  /** The imbalance once the pass's moves (Automatic) or recommendations (Manual) are done. */
  projected: number;
  /** When this pass ran; undefined when it was due but skipped (`reason` says why): the next round tries again. */
  passAt?: number;
  recommendations: Recommendation[];
  /** What the pass concluded, or why it was skipped. */
  reason?: string;
}

/** A failover that is over: the VM runs Ready on its new host. */
export interface Recovery {
  vm: string;
  record: FailoverRecord;
  seconds: number;
}

/** The planner's word on one VirtualMachineMigration, by "namespace/name". */
export type RequestVerdict =
  /** Bad or impossible as asked: it fails, Stalled, with the reason; nothing was touched. */
  | { kind: "Refused"; message: string }
  /** It waits (a migration slot, room on the target, a host coming back). */
  | { kind: "Waiting"; message: string; estimate?: MigrationEstimate }
  /** The live copy was asked for this round, or runs (the hosts report how it goes). */
  | { kind: "Live"; source: string; target: string; key: string; estimate?: MigrationEstimate }
  /** A cold move: shut down on `source`, to power on at `target` (placement's choice when absent). */
  | { kind: "Cold"; source: string; target?: string; message: string }
  /** Deleted while it ran: cancelled. */
  | { kind: "Cancelling"; message: string }
  /** A move to another hypervisor type: its pre-check and where it stands (conversions.ts). */
  | ConversionVerdict;

export interface ClusterPlan {
  actions: ClusterAction[];
  /** By VirtualMachineMigration "namespace/name". */
  requestVerdicts: Map<string, RequestVerdict>;
  /** Live moves begun or ended this round on the cluster's own account (evacuation, balancing): the engine records them. */
  moves: Map<string, MoveRecord | undefined>;
  /** By VM id. */
  verdicts: Map<string, PublishedVerdict>;
  status: HostClusterStatus;
  /** When the plan changes by itself (a lease expires, a delay ends, a retry is due), if it does. */
  wakeAt?: number;
  /** Failovers that began this round: the engine records them. */
  newFailovers: { vm: string; record: FailoverRecord }[];
  /** VMs HA no longer handles: their attempts and failover waits are forgotten. */
  settled: string[];
  /** Failovers completed this round. */
  recovered: Recovery[];
  /** Hosts still being registered: the round places nothing and looks again shortly. */
  registering: boolean;
  /** What each stage decided, in order: for logs and `vireo plan`. */
  stages: StageSummary[];
  /** The balancing pass of this round, if one ran. */
  balancing?: BalancingReport;
  /** Hold-downs after this round's balancing moves; the engine records them. */
  holdDowns?: ReadonlyMap<string, HoldDown>;
  /** By VM id: what replication each replicated VM of the cluster should do, and whether its link keeps up. */
  replication: Map<string, ReplicationNote>;
  /** By VM id: each fault-tolerant VM's state, and its secondary's host. */
  faultTolerance: Map<string, FaultToleranceNote>;
}

export interface StageSummary {
  stage: StageName;
  actions: number;
  verdicts: number;
}

export type StageName = "conversions" | "restarts" | "admission" | "placement" | "faultTolerance" | "evacuation" | "migrations" | "balancing" | "replication";

/** What the VMs do to the cluster's capacity as the stages go: the snapshot each stage sees. */
export interface StageState {
  snapshot: ClusterSnapshot;
  requestVerdicts: Map<string, RequestVerdict>;
  /** Moves begun (a record) or over (undefined) this round. */
  moves: Map<string, MoveRecord | undefined>;
  actions: ClusterAction[];
  verdicts: Map<string, VmVerdict>;
  /** VMs a stage has dealt with: later stages leave them alone. */
  handled: Set<string>;
  wakeAt?: number;
}

export type { HostClusterStatus, VirtualMachine };
