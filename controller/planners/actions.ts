// What planners ask the executor to do. Every action names its VM and says why, so logs, events and
// `vireo plan` can explain it. Each is idempotent on the provider side.

import type { HostConfig, VmConfig } from "../core/observation.ts";
import type { MigrationSettings } from "../core/migration.ts";
import type { ReplicationSettings } from "../core/replication.ts";

export type Action =
  | { type: "RegisterHost"; host: string; config: HostConfig; reason: string }
  | { type: "UnregisterHost"; host: string; reason: string }
  | { type: "Start"; vm: string; host: string; config: VmConfig; reason: string }
  | { type: "Stop"; vm: string; mode: "Shutdown" | "PowerOff"; reason: string }
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
  | { type: "SyncReplica"; vm: string; key: string; reason: string };

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
  }
}
