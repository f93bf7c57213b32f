// Conversions to another hypervisor type among the simulated hosts (V2V, as virt-v2v does it): a VM that is
// off has its disks rewritten for the target's platform at the request's rate, then is registered, still
// off, on the target with the converted devices. The VM stays on its source, unable to power on, while it
// converts; whatever ends the conversion early leaves it there as it was.

import { conversionMs } from "../../core/conversion.ts";
import type { ConversionObservation, ConversionSettings } from "../../core/conversion.ts";
import type { VmConfig } from "../../core/observation.ts";
import { ProviderError } from "../provider.ts";
import { requireHost, requireVm } from "./faults.ts";
import type { SimContext } from "./faults.ts";
import { validateVmConfig } from "./vms.ts";
import { attachVm, copyVmConfig, detachVm, isReachable, touch } from "./world.ts";
import type { ConversionRecord, HostRecord, VmRecord, World } from "./world.ts";

const MIB_PER_GIB = 1024;

/** What is wrong with the settings, naming the field, or undefined. */
export function conversionSettingsProblem(settings: unknown): string | undefined {
  if (typeof settings !== "object" || settings === null || Array.isArray(settings)) return "must be an object";
  const fields = settings as Record<string, unknown>;
  if (typeof fields.key !== "string" || fields.key.length === 0) return "key must be a non-empty string";
  const rate = fields.rateMiBps;
  if (typeof rate !== "number" || !Number.isFinite(rate) || rate <= 0) return "rateMiBps must be a positive number";
  return undefined;
}

/** The disks' total size, MiB: what a conversion reads and rewrites. */
export function diskMiBOf(config: Pick<VmConfig, "disks">): number {
  return config.disks.reduce((sum, disk) => sum + disk.sizeGiB * MIB_PER_GIB, 0);
}

/**
 * Begins converting VM `id` for `targetName` into `config`, or refuses with the ProviderError that says
 * why. Returns false when the VM's conversion under `settings.key` was begun already (a no-op).
 */
export function beginConversion(ctx: SimContext, id: string, targetName: string, request: { config: VmConfig; settings: ConversionSettings }): boolean {
  const { world } = ctx;
  const problem = conversionSettingsProblem(request.settings);
  if (problem !== undefined) throw new ProviderError("Invalid", `conversion of VM ${id}: settings.${problem}`);
  validateVmConfig(id, request.config);
  const vm = requireVm(world, id);
  const existing = world.conversions.get(id);
  if (existing?.key === request.settings.key) return false;
  if (existing?.phase === "Converting") throw new ProviderError("Conflict", `VM ${id} is converting already for host ${existing.target} (key ${existing.key})`);
  const source = requireHost(world, vm.host);
  const target = requireHost(world, targetName);
  refuseConversion(vm, source, target, request.config);
  const now = ctx.now();
  const totalMiB = diskMiBOf(request.config);
  const c: ConversionRecord = {
    vm: id,
    key: request.settings.key,
    source: source.name,
    target: targetName,
    from: source.config.hypervisor,
    to: target.config.hypervisor,
    phase: "Converting",
    rateMiBps: request.settings.rateMiBps,
    config: copyVmConfig(request.config),
    startedAt: now,
    endsAt: now + conversionMs(totalMiB, request.settings.rateMiBps),
    totalMiB,
  };
  world.conversions.set(id, c);
  touch(world, vm);
  return true;
}

/** Who is asked (the source answers, the VM is off), for what (another hypervisor type), and where it goes. */
function refuseConversion(vm: VmRecord, source: HostRecord, target: HostRecord, config: VmConfig): void {
  const { id, power } = vm;
  if (!isReachable(source)) throw new ProviderError("Unavailable", `VM ${id}'s host ${source.name} is not responding`);
  if (power !== "Off") throw new ProviderError("Conflict", `VM ${id} is ${power}: only a VM that is off is converted`);
  if (source.config.hypervisor === target.config.hypervisor) {
    throw new ProviderError("Invalid", `host ${target.name} runs ${target.config.hypervisor}, as VM ${id}'s host ${source.name} does: there is nothing to convert`);
  }
  if (!isReachable(target)) throw new ProviderError("Unavailable", `host ${target.name} is not responding`);
  const incompatible = targetProblem(target, config);
  if (incompatible !== undefined) throw new ProviderError("Incompatible", `VM ${id} cannot be converted for host ${target.name}: ${incompatible}`);
}

/** What of the converted VM the target cannot give it: a datastore, a network, a CPU feature. */
function targetProblem(target: HostRecord, config: VmConfig): string | undefined {
  const seen = target.config;
  const datastores = config.disks.filter((disk) => !seen.datastores.includes(disk.datastore)).map((disk) => disk.datastore);
  if (datastores.length > 0) return `it does not see datastore ${[...new Set(datastores)].join(", ")}`;
  const networks = config.nics.filter((nic) => !seen.networks.includes(nic.network)).map((nic) => nic.network);
  if (networks.length > 0) return `it is not connected to network ${[...new Set(networks)].join(", ")}`;
  const missing = config.cpuFeatures.filter((feature) => !seen.cpu.features.includes(feature));
  if (missing.length > 0) return `it lacks CPU feature${missing.length === 1 ? "" : "s"} ${missing.join(", ")}`;
  return undefined;
}

/** Refuses a change to the VM that its conversion under way forbids (a power-on, a move). */
export function refuseWhileConverting(world: World, id: string, change: string): void {
  const c = world.conversions.get(id);
  if (c?.phase === "Converting") throw new ProviderError("Conflict", `VM ${id} is converting for host ${c.target}: it cannot ${change} until the conversion ends`);
}

/** The earliest end of a conversion under way. */
export function nextConversionEnd(world: World): { id: string; due: number } | undefined {
  let next: { id: string; due: number } | undefined;
  for (const c of world.conversions.values()) {
    if (c.phase === "Converting" && (next === undefined || c.endsAt < next.due)) next = { id: c.vm, due: c.endsAt };
  }
  return next;
}

/**
 * The conversion's time is up: the VM is registered on the target, off, with the converted devices. A
 * target that does not answer then cannot take it, and the VM stays on its source.
 */
export function finishConversion(world: World, id: string, at: number): void {
  const c = world.conversions.get(id);
  const vm = world.vms.get(id);
  if (!c || c.phase !== "Converting" || !vm) return;
  const target = world.hosts.get(c.target);
  if (!target || !isReachable(target)) {
    end(world, c, `host ${c.target} is not responding: the converted VM cannot be registered there; it stays on host ${c.source}`, at);
    return;
  }
  detachVm(world, vm);
  vm.host = c.target;
  vm.config = copyVmConfig(c.config);
  attachVm(world, vm);
  touch(world, vm);
  c.phase = "Succeeded";
  c.endsAt = at;
}

/**
 * Fails every conversion the change just broke: its source or target failed, or the VM was powered on or
 * left its source meanwhile (which the refusals prevent). Called after every change to the world.
 */
export function endBrokenConversions(world: World, now: number): void {
  for (const c of world.conversions.values()) {
    if (c.phase !== "Converting") continue;
    const broken = whyBroken(world, c);
    if (broken !== undefined) end(world, c, broken, now);
  }
}

function whyBroken(world: World, c: ConversionRecord): string | undefined {
  for (const name of [c.source, c.target]) {
    const host = world.hosts.get(name);
    if (!host || host.crashedAt !== undefined) return `host ${name} failed; the VM stays on host ${c.source}`;
  }
  const vm = world.vms.get(c.vm);
  if (!vm || vm.host !== c.source || vm.power !== "Off") return `the VM left host ${c.source} or was powered on`;
  return undefined;
}

/** The VM is gone: so is its conversion, under way or not. */
export function forgetConversion(world: World, id: string): void {
  world.conversions.delete(id);
}

function end(world: World, c: ConversionRecord, reason: string, at: number): void {
  c.convertedMiB = convertedBy(c, at);
  c.phase = "Failed";
  c.endsAt = at;
  c.reason = reason;
  const vm = world.vms.get(c.vm);
  if (vm) touch(world, vm);
}

/** What is converted by `at`: the disks go at an even rate from the start to the end. */
function convertedBy(c: ConversionRecord, at: number): number {
  if (c.convertedMiB !== undefined) return c.convertedMiB;
  if (c.phase === "Succeeded") return c.totalMiB;
  const duration = c.endsAt - c.startedAt;
  if (duration <= 0) return c.totalMiB;
  return Math.min(c.totalMiB, (c.totalMiB * Math.max(0, at - c.startedAt)) / duration);
}

export function conversionObservation(c: ConversionRecord, now: number): ConversionObservation {
  return {
    vm: c.vm,
    key: c.key,
    source: c.source,
    target: c.target,
    from: c.from,
    to: c.to,
    phase: c.phase,
    startedAt: c.startedAt,
    endsAt: c.endsAt,
    totalMiB: c.totalMiB,
    convertedMiB: Math.round(convertedBy(c, now) * 1000) / 1000,
    ...(c.reason !== undefined ? { reason: c.reason } : {}),
  };
}
