// Placement: which host each VM goes to. Filters say which hosts may take a VM and why the others
// cannot; scores rank the hosts that may. Shared by first placement, HA restarts and balancing.

export { placeBatch, hostsThatFit, batchOrder } from "./batch.ts";
export { requestOf } from "./requests.ts";
export { unschedulableMessage, reasonsByCount } from "./messages.ts";
export { INSUFFICIENT_CPU, INSUFFICIENT_MEMORY } from "./capacity.ts";
export { HOST_AFFINITY_MISMATCH } from "./host-affinity.ts";
export { VM_AFFINITY_MISMATCH, VM_ANTI_AFFINITY } from "./vm-affinity.ts";
export type {
  BatchPlan,
  CandidateHost,
  ClusterSnapshot,
  CpuBaseline,
  HostFit,
  PlacedVm,
  Placement,
  Unschedulable,
  VmRequest,
} from "./types.ts";
