// Which VMs HA protects, and how: the HAPolicy that selects each VM (one winner when several do), or the
// defaults for a VM that must keep running in an HA-enabled cluster. Pure.

import type { HAPolicy, HostCluster, IsolationResponse, ReadyCondition, RestartPriority, VirtualMachine } from "../../api/types.ts";
import { byCodeUnits, selectorMatches } from "../../api/selectors.ts";

/** vSphere HA's restart priorities, highest first (BEHAVIOUR.md, Restart). */
export const PRIORITY_RANK: Readonly<Record<RestartPriority, number>> = { Highest: 5, High: 4, Medium: 3, Low: 2, Lowest: 1, Disabled: 0 };

/** BEHAVIOUR.md, Restart: the next priority starts anyway after 600 s. */
export const DEFAULT_READY_TIMEOUT_SECONDS = 600;

/** BEHAVIOUR.md, VM monitoring: the presets, by sensitivity. */
export const MONITORING_PRESETS = {
  High: { heartbeatTimeoutSeconds: 30, resetWindowSeconds: 3_600, maxResets: 3 },
  Medium: { heartbeatTimeoutSeconds: 60, resetWindowSeconds: 86_400, maxResets: 3 },
  Low: { heartbeatTimeoutSeconds: 120, resetWindowSeconds: 604_800, maxResets: 3 },
} as const;

/** BEHAVIOUR.md, VM monitoring: no reset before the guest has been up this long. */
export const MONITORING_MIN_UPTIME_SECONDS = 120;

export interface VmMonitoring {
  heartbeatTimeoutMs: number;
  resetWindowMs: number;
  maxResets: number;
}

export interface Protection {
  /** Restarted elsewhere after a failure. */
  protected: boolean;
  /** Why not, when it is not. */
  reason?: string;
  /** "namespace/name" of the winning policy; undefined for the runStrategy default. */
  policy?: string;
  priority: RestartPriority;
  readyCondition: ReadyCondition;
  readyTimeoutMs: number;
  /** Policies ("namespace/name") whose VMs must be ready before this VM restarts. */
  startAfter: string[];
  startDelayMs: number;
  isolationResponse: IsolationResponse;
  monitoring?: VmMonitoring;
  /** Other policies that select the VM too (they lost). */
  conflicts: string[];
  /** protection Replicate: once its cluster is lost, the VM recovers from its replica in the target cluster. */
  replicate: boolean;
  /**
   * protection FaultTolerance: the VM keeps a secondary in lockstep on another host (planners/ha/fault-tolerance.ts).
   * HA restarts it too, should it lose its host without a secondary ready to go live.
   */
  faultTolerance: boolean;
}

export function policyKey(policy: Readonly<HAPolicy>): string {
  return `${policy.metadata.namespace ?? "default"}/${policy.metadata.name}`;
}

/**
 * The policy that wins when several select a VM: the highest restart priority (protecting more, never
 * less), then the name — deterministic whatever order the policies arrive in (docs/ha.md).
 */
export function winningPolicy(policies: readonly Readonly<HAPolicy>[]): Readonly<HAPolicy> | undefined {
  return [...policies].sort((a, b) => PRIORITY_RANK[b.spec.restartPriority] - PRIORITY_RANK[a.spec.restartPriority] || byCodeUnits(a.metadata.name, b.metadata.name))[0];
}

/** The policies of the VM's namespace whose selector matches it. */
export function policiesSelecting(vm: Readonly<VirtualMachine>, policies: readonly Readonly<HAPolicy>[]): Readonly<HAPolicy>[] {
  const namespace = vm.metadata.namespace ?? "default";
  const labels = vm.metadata.labels ?? {};
  return policies.filter((p) => (p.metadata.namespace ?? "default") === namespace && !p.metadata.deletionTimestamp && selectorMatches(p.spec.selector, labels));
}

export function protectionOf(vm: Readonly<VirtualMachine>, policies: readonly Readonly<HAPolicy>[], cluster: Readonly<HostCluster> | undefined): Protection {
  const matching = policiesSelecting(vm, policies);
  const winner = winningPolicy(matching);
  const spec = winner?.spec;
  const base: Protection = {
    protected: false,
    priority: spec?.restartPriority ?? "Medium",
    readyCondition: spec?.readyCondition ?? "ResourcesAllocated",
    readyTimeoutMs: (spec?.readyTimeoutSeconds ?? DEFAULT_READY_TIMEOUT_SECONDS) * 1000,
    startAfter: (spec?.startAfter ?? []).map((name) => `${vm.metadata.namespace ?? "default"}/${name}`),
    startDelayMs: (spec?.startDelaySeconds ?? 0) * 1000,
    isolationResponse: spec?.isolationResponse ?? "LeavePoweredOn",
    conflicts: matching.filter((p) => p !== winner).map(policyKey).sort(byCodeUnits),
    replicate: spec?.protection === "Replicate" && vm.spec.replication !== undefined,
    faultTolerance: false,
  };
  if (winner) base.policy = policyKey(winner);
  const monitoring = spec?.vmMonitoring;
  if (monitoring?.enabled) {
    const preset = MONITORING_PRESETS[monitoring.sensitivity];
    base.monitoring = {
      heartbeatTimeoutMs: (monitoring.heartbeatTimeoutSeconds ?? preset.heartbeatTimeoutSeconds) * 1000,
      resetWindowMs: (monitoring.resetWindowSeconds ?? preset.resetWindowSeconds) * 1000,
      maxResets: monitoring.maxResets ?? preset.maxResets,
    };
  }
  const unprotected = whyUnprotected(vm, spec, cluster);
  return unprotected ? { ...base, reason: unprotected } : { ...base, protected: true, faultTolerance: spec?.protection === "FaultTolerance" };
}

function whyUnprotected(vm: Readonly<VirtualMachine>, spec: Readonly<HAPolicy["spec"]> | undefined, cluster: Readonly<HostCluster> | undefined): string | undefined {
  if (!cluster) return `HostCluster ${vm.spec.placement.cluster} does not exist`;
  if (!cluster.spec.ha.enabled) return `HA is disabled in cluster ${cluster.metadata.name}`;
  if (spec?.restartPriority === "Disabled") return "restartPriority is Disabled";
  if (spec?.protection === "Replicate" && !vm.spec.replication) return "protection Replicate needs spec.replication: the VM has no replica to recover from";
  if (vm.spec.runStrategy !== "Always" && vm.spec.runStrategy !== "RerunOnFailure") return `runStrategy ${vm.spec.runStrategy} does not restart the VM after a failure`;
  return undefined;
}
