// What planners ask the executor to do. Every action names its VM and says why, so logs, events and
// `vireo plan` can explain it. Each is idempotent on the provider side.

import type { HostConfig, VmConfig } from "../core/observation.ts";
import type { MigrationSettings } from "../core/migration.ts";

export type Action =
  | { type: "RegisterHost"; host: string; config: HostConfig; reason: string }
  | { type: "UnregisterHost"; host: string; reason: string }
  | { type: "Start"; vm: string; host: string; config: VmConfig; reason: string }
  | { type: "Stop"; vm: string; mode: "Shutdown" | "PowerOff"; reason: string }
  | { type: "Remove"; vm: string; reason: string }
  | { type: "ResetVm"; vm: string; key: string; reason: string }
  /** Live migration to `target` (core/migration.ts); `key` makes it idempotent and names it in observations. */
  | { type: "Migrate"; vm: string; target: string; key: string; settings: MigrationSettings; reason: string }
  | { type: "CancelMigration"; vm: string; key: string; reason: string };

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
  }
}
