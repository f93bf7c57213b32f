// New requests for another hypervisor type, judged in the "migrations" stage: the pre-check, then a target
// of that type by placement's filters and scores and a conversion slot; then the VM is shut down (or, off
// already, converted at once). The conversions stage (conversions.ts) carries them on from the next round.

import type { Hypervisor, VirtualMachineMigration } from "../../api/types.ts";
import { DEFAULT_CONVERSION_RATE_MIBPS } from "../../core/conversion.ts";
import { INSUFFICIENT_CPU, INSUFFICIENT_MEMORY, hostsThatFit, requestOf } from "../../placement/index.ts";
import { conversionPreCheck } from "../migration/pre-check.ts";
import { requestKey } from "../migration/requests.ts";
import { convert, hold, shutDown, type ConversionVerdict } from "./conversions.ts";
import type { ClusterSituation, StageState, VmFacts } from "./types.ts";

/** The hypervisor type a request converts its VM to, when it asks for another than the one the VM is on. */
export function conversionTo(s: Readonly<ClusterSituation>, request: Readonly<VirtualMachineMigration>, f: Readonly<VmFacts>): Hypervisor | undefined {
  const from = f.instanceHost?.host?.spec.hypervisor;
  if (from === undefined) return undefined;
  const asked = request.spec.targetHypervisor;
  if (asked !== undefined && asked !== from) return asked;
  const named = s.hosts.find((h) => h.name === request.spec.targetHost)?.host?.spec.hypervisor;
  return named !== undefined && named !== from ? named : undefined;
}

/** How many more conversions may begin this round: the cluster's parallelMigrations, counted apart from live migrations. */
export function conversionSlots(s: Readonly<ClusterSituation>, state: Readonly<StageState>): { free: number } {
  const busy = [...state.requestVerdicts.values()].filter((v) => v.kind === "Conversion" && (v.step === "ShuttingDown" || v.step === "Converting")).length;
  return { free: s.cluster.spec.migration.parallelMigrations - busy };
}

export interface ConversionAsk {
  request: Readonly<VirtualMachineMigration>;
  f: Readonly<VmFacts>;
  to: Hypervisor;
  /** Why the host the request names cannot be the target, found before the pre-check. */
  targetRefusal?: string;
}

/** A new conversion request: its pre-check, then its target and a slot; then the VM is shut down (or, off already, converted). */
export function judgeConversion(s: Readonly<ClusterSituation>, state: StageState, ask: Readonly<ConversionAsk>, slots: { free: number }): ConversionVerdict {
  const { request, f, to } = ask;
  const i = f.instance!;
  const base = preChecked(s, ask);
  if (base.preCheck.blockers.length > 0) return refused(base, base.preCheck.blockers);
  if (i.power === "Starting" || i.power === "Stopping") return { ...base, message: `waiting for the VM to finish ${i.power === "Starting" ? "starting" : "stopping"} on ${i.host}` };
  const choice = conversionTarget(state, f, to, request.spec.targetHost);
  if (choice.refused !== undefined) return refused({ ...base, preCheck: { ...base.preCheck, blockers: [choice.refused] } }, [choice.refused]);
  if (choice.host === undefined) return { ...base, message: choice.waiting ?? "waiting" };
  if (slots.free <= 0) return { ...base, target: choice.host, message: `waiting for a conversion slot (${s.cluster.spec.migration.parallelMigrations} at once in the cluster)` };
  slots.free -= 1;
  const chosen: ConversionVerdict = { ...base, target: choice.host, since: s.now, powerOn: i.power === "Running" };
  if (i.power === "Off") return convert({ s, state, f, before: { ...chosen, step: "Converting" }, request });
  shutDown(state, f, chosen);
  const message = `shutting down on ${i.host} to be converted for ${to} on ${choice.host}`;
  hold(state, f, { target: choice.host, message, reserve: true });
  return { ...chosen, step: "ShuttingDown", message };
}

/** The request as its pre-check finds it, with what refuses the host it names in front. */
function preChecked(s: Readonly<ClusterSituation>, ask: Readonly<ConversionAsk>): ConversionVerdict {
  const { request, f, to } = ask;
  const i = f.instance!;
  const source = f.instanceHost!.host!;
  const { targetHost, targetHypervisor } = request.spec;
  const preCheck = conversionPreCheck({
    // As written: the cluster pins a VM to the type of the host it is on, which is what a conversion changes.
    vm: f.declared,
    config: i.config,
    power: i.power,
    source,
    to,
    hosts: s.hosts.flatMap((h) => (h.host ? [h.host] : [])),
    ...(targetHost !== undefined ? { targetHost } : {}),
    ...(targetHypervisor !== undefined ? { targetHypervisor } : {}),
    mode: request.spec.mode,
    keepMacAddresses: request.spec.keepMacAddresses !== false,
    rateMiBps: DEFAULT_CONVERSION_RATE_MIBPS,
    ...(f.role.kind !== "Home" ? { elsewhere: `it runs away from its own cluster (${f.role.kind}): convert it once it is back home` } : {}),
  });
  const checked = ask.targetRefusal ? { ...preCheck, blockers: [ask.targetRefusal, ...preCheck.blockers] } : preCheck;
  return { kind: "Conversion", step: "Pending", key: requestKey(request), vm: f.id, from: source.spec.hypervisor, to, source: i.host, preCheck: checked, message: "" };
}

function refused(base: ConversionVerdict, blockers: readonly string[]): ConversionVerdict {
  return { ...base, step: "Refused", message: `refused by its pre-check: ${blockers.join("; ")}` };
}

/** The host of type `to` placement would take the VM to now (the one named, if it can), or why it waits or cannot go. */
function conversionTarget(state: Readonly<StageState>, f: Readonly<VmFacts>, to: Hypervisor, named: string | undefined): { host?: string; waiting?: string; refused?: string } {
  const fit = hostsThatFit(state.snapshot, { ...requestOf(f.vm), hypervisor: to });
  const host = named === undefined ? fit.fits[0] : fit.fits.find((h) => h === named);
  if (host !== undefined) return { host };
  const rejected = Object.entries(fit.rejected).filter(([reason]) => reason !== `hypervisor is not ${to}`);
  const where = named !== undefined ? `host ${named} cannot take it now` : `no ${to} host can take it now`;
  const why = `${where} (${rejected.map(([reason, n]) => `${n} ${reason}`).join(", ") || "no host"})`;
  return rejected.every(([reason]) => TRANSIENT.has(reason)) ? { waiting: why } : { refused: why };
}

/** Why a host of the right kind cannot take the VM now that passes by itself: room, or the host coming back. */
const TRANSIENT: ReadonlySet<string> = new Set([INSUFFICIENT_CPU, INSUFFICIENT_MEMORY, "not ready", "in maintenance", "being removed", "not registered"]);
