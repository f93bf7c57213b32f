// What planners ask the executor to do. Every action names its VM and says why, so logs, events and
// `vireo plan` can explain it. Each is idempotent on the provider side.

import type { HostConfig, VmConfig } from "../core/observation.ts";
import type { MigrationSettings } from "../core/migration.ts";
import type { ReplicationSettings } from "../core/replication.ts";
import type { FaultToleranceSettings } from "../core/fault-tolerance.ts";
import type { ConversionSettings } from "../core/conversion.ts";

export type Action =
  | { type: "RegisterHost"; host: string; config: HostConfig; reason: string }
  | { type: "UnregisterHost"; host: string; reason: string }
  | { type: "Start"; vm: string; host: string; config: VmConfig; reason: string }
  /** `onHost`: only where the plan saw it; a VM the hosts have moved since is left alone (provider.ts). */
  | { type: "Stop"; vm: string; mode: "Shutdown" | "PowerOff"; onHost?: string; reason: string }
  | { type: "Remove"; vm: string; reason: string }
  | { type: "ResetVm"; vm: string; key: string; reason: string }
  /** Live migration to `target` (core/migration.ts); `key` makes it idempotent and names it in observations. */
  | { type: "Migrate"; vm: string; target: string; key: string; settings: MigrationSettings; reason: string }
  | { type: "CancelMigration"; vm: string; key: string; reason: string }
  /** Starts the VM (or, for a test copy, `vm`) on `host` from the replica of `replicaOf` (core/replication.ts). */
  | { type: "Recover"; vm: string; host: string; config: VmConfig; replicaOf: string; reason: string }
  /** Replicates the VM's disks as `settings` say (a new target datastore starts afresh). */
  | { type: "Replicate"; vm: string; settings: ReplicationSettings; reason: string }
  | { type: "StopReplication"; vm: string; reason: string }
  /** A sync of the VM's replica now (a planned migration's final sync); `key` names it. */
  | { type: "SyncReplica"; vm: string; key: string; reason: string }
  /** Gives the VM a fault-tolerant secondary on `host`, or moves its secondary there (core/fault-tolerance.ts). */
  | { type: "Protect"; vm: string; host: string; key: string; settings: FaultToleranceSettings; reason: string }
  | { type: "Unprotect"; vm: string; reason: string }
  /** Converts the VM, which is off, for `target`, a host of another hypervisor type (core/conversion.ts). */
  | { type: "Convert"; vm: string; target: string; config: VmConfig; settings: ConversionSettings; reason: string };

export type ActionType = Action["type"];

/** The idempotency key of an action: the same key twice means the same effect. */
export function actionKey(action: Action): string {
  switch (action.type) {
    case "RegisterHost":
    case "UnregisterHost": return `${action.type}/${action.host}`;
    case "Start": return `Start/${action.vm}@${action.host}`;
    case "Stop": return `Stop/${action.vm}/${action.mode}`;
    case "Remove": return `Remove/${action.vm}`;
    case "ResetVm": return `ResetVm/${action.vm}/${action.key}`;
    case "Migrate": return `Migrate/${action.vm}/${action.key}`;
    case "CancelMigration": return `CancelMigration/${action.vm}/${action.key}`;
    case "Recover": return `Recover/${action.vm}@${action.host}`;
    case "Replicate": return `Replicate/${action.vm}/${action.settings.targetDatastore}`;
    case "StopReplication": return `StopReplication/${action.vm}`;
    case "SyncReplica": return `SyncReplica/${action.vm}/${action.key}`;
    case "Protect": return `Protect/${action.vm}@${action.host}`;
    case "Unprotect": return `Unprotect/${action.vm}`;
    case "Convert": return `Convert/${action.vm}/${action.settings.key}`;
  }
}

export function describeAction(action: Action): string {
  switch (action.type) {
    case "RegisterHost": return `register host ${action.host}: ${action.reason}`;
    case "UnregisterHost": return `unregister host ${action.host}: ${action.reason}`;
    case "Start": return `start ${action.vm} on ${action.host}: ${action.reason}`;
    case "Stop": return `${action.mode === "Shutdown" ? "shut down" : "power off"} ${action.vm}: ${action.reason}`;
    case "Remove": return `remove ${action.vm}: ${action.reason}`;
    case "ResetVm": return `reset ${action.vm}: ${action.reason}`;
    case "Migrate": return `migrate ${action.vm} live to ${action.target}: ${action.reason}`;
    case "CancelMigration": return `cancel the migration of ${action.vm}: ${action.reason}`;
    case "Recover": return `start ${action.vm} on ${action.host} from the replica of ${action.replicaOf}: ${action.reason}`;
    case "Replicate": return `replicate ${action.vm} to datastore ${action.settings.targetDatastore}: ${action.reason}`;
    case "StopReplication": return `stop replicating ${action.vm}: ${action.reason}`;
    case "SyncReplica": return `sync the replica of ${action.vm}: ${action.reason}`;
    case "Protect": return `make ${action.vm}'s fault-tolerant secondary on ${action.host}: ${action.reason}`;
    case "Unprotect": return `drop ${action.vm}'s fault-tolerant secondary: ${action.reason}`;
    case "Convert": return `convert ${action.vm} for ${action.target}: ${action.reason}`;
  }
}
