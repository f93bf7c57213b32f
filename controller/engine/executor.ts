// The executor: applies a plan's actions to the provider. Each action is idempotent, so running a plan
// twice (after a crash, or a retry) does no harm. Results are not trusted as proof: the next observation is.

import type { Action } from "../planners/actions.ts";
import { describeAction } from "../planners/actions.ts";
import { ProviderError } from "../provider/provider.ts";
import type { ReconcileContext } from "./context.ts";

export type ActionOutcome = "applied" | "refused";

/**
 * Applies one action. A refusal that the next observation will explain (the VM already runs elsewhere,
 * its disks are still locked, the host is full) is logged and reported as "refused"; anything else throws,
 * so the reconcile is retried with backoff.
 */
export async function execute(ctx: ReconcileContext, action: Readonly<Action>): Promise<ActionOutcome> {
  return (await executeReporting(ctx, action)).outcome;
}

/** As `execute`, with the hosts' own words when they refuse (for a status that says why). */
export async function executeReporting(ctx: ReconcileContext, action: Readonly<Action>): Promise<{ outcome: ActionOutcome; message?: string }> {
  if (ctx.dryRun) return { outcome: record(ctx, ctx.dryRun, action) };
  const log = ctx.log.child({ action: action.type, ...("vm" in action ? { vm: action.vm } : {}), ...("host" in action ? { host: action.host } : {}) });
  try {
    switch (action.type) {
      case "RegisterHost": {
        const host = action.config;
        await ctx.provider.registerHost(action.host, host);
        break;
      }
      case "UnregisterHost":
        await ctx.provider.unregisterHost(action.host);
        break;
      case "Start": {
        const observed = await ctx.provider.startVm(action.vm, action.host, action.config);
        ctx.observed.assume(observed);
        break;
      }
      case "Stop":
        await ctx.provider.stopVm(action.vm, action.mode, action.onHost === undefined ? {} : { onHost: action.onHost });
        break;
      case "Remove":
        await ctx.provider.removeVm(action.vm);
        break;
      case "ResetVm":
        await ctx.provider.resetVm(action.vm, action.key);
        break;
      case "Migrate":
        await ctx.provider.migrateVm(action.vm, action.target, { key: action.key, settings: action.settings });
        break;
      case "CancelMigration":
        await ctx.provider.cancelMigration(action.vm, action.key);
        break;
      case "Recover": {
        const observed = await ctx.provider.recoverVm(action.vm, action.host, action.config, { replicaOf: action.replicaOf });
        ctx.observed.assume(observed);
        break;
      }
      case "Replicate":
        await ctx.provider.replicateVm(action.vm, action.settings);
        ctx.observed.assumeReplica(action.vm, action.settings);
        break;
      case "StopReplication":
        await ctx.provider.stopReplication(action.vm);
        break;
      case "SyncReplica":
        await ctx.provider.syncReplica(action.vm, action.key);
        break;
      case "Protect":
        await ctx.provider.protectVm(action.vm, action.host, { key: action.key, settings: action.settings });
        ctx.observed.assumeSecondary(action.vm, action.host, action.key, ctx.clock.now());
        break;
      case "Unprotect":
        await ctx.provider.unprotectVm(action.vm);
        break;
      case "Convert":
        await ctx.provider.convertVm(action.vm, action.target, action.config, action.settings);
        break;
    }
  } catch (error) {
    if (error instanceof ProviderError && isExpectedRefusal(action, error)) {
      ctx.metrics.actions.inc({ type: action.type, result: "refused" });
      log.warn({ code: error.code, err: error.message }, `refused: ${describeAction(action)}`);
      return { outcome: "refused", message: error.message };
    }
    ctx.metrics.actions.inc({ type: action.type, result: "error" });
    throw new Error(`${describeAction(action)} failed`, { cause: error });
  }
  ctx.metrics.actions.inc({ type: action.type, result: "applied" });
  log.debug(describeAction(action));
  return { outcome: "applied" };
}

function isExpectedRefusal(action: Readonly<Action>, error: ProviderError): boolean {
  switch (action.type) {
    case "Start":
    case "Recover": return error.code === "Conflict" || error.code === "LockHeld" || error.code === "InsufficientResources" || error.code === "Unavailable";
    // The replica's state says why (no such VM yet, it failed over): the VM's status reports it.
    case "Replicate":
    case "SyncReplica": return error.code === "NotFound" || error.code === "Conflict";
    case "StopReplication": return error.code === "NotFound";
    // A host out of reach cannot stop anything; the next observation says what became of the VM.
    // A stop bound to a host the VM has left since (onHost) is refused with Conflict: the next round replans.
    case "Stop": return error.code === "NotFound" || error.code === "Unavailable" || error.code === "Conflict";
    case "Remove": return error.code === "NotFound" || error.code === "Unavailable";
    case "ResetVm": return error.code === "NotFound" || error.code === "Conflict" || error.code === "Unavailable";
    // The hosts say why (another vendor, a missing feature, no room, a host down): the migration's status reports it.
    case "Migrate": return error.code !== "Invalid";
    case "CancelMigration": return error.code === "NotFound" || error.code === "Unavailable";
    case "UnregisterHost": return error.code === "NotFound";
    // The hosts say why (no room, a host down, the VM not running): the VM's fault tolerance status reports it.
    case "Protect": return error.code !== "Invalid";
    case "Unprotect": return error.code === "NotFound" || error.code === "Unavailable";
    // The hosts say why (the VM still on, a host down, a datastore out of reach): the migration's status reports it.
    case "Convert": return error.code !== "Invalid";
    case "RegisterHost": return false;
  }
}

/** A dry run (`vireo plan`): the action is noted, not applied; a start counts as placed for the rest of the pass. */
function record(ctx: ReconcileContext, actions: Action[], action: Readonly<Action>): ActionOutcome {
  actions.push(action as Action);
  if (action.type === "Start" || action.type === "Recover") {
    const now = ctx.clock.now();
    ctx.observed.assume({ id: action.vm, host: action.host, power: "Starting", config: action.config, since: now, poweredOnAt: now, cpuUsage: 0, revision: Number.MAX_SAFE_INTEGER });
  }
  return "applied";
}
