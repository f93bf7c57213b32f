// Reconciles one LabTopology: expands it into VirtualMachines (planners/labs/expand.ts) with stable
// addresses (addresses.ts), lets each copy's start or stop order decide which tiers may run (order.ts),
// applies the leases (lease.ts), writes the VMs through the object writer — made, changed one at a time,
// or deleted — and reports the lab's status. The VMs themselves are ordinary: placement, HA, migration and
// drift treat them as any other.

import type { LabAddress, LabCopyStatus, LabPhase, LabTierStatus, LabTopology, LabTopologyStatus, VirtualMachine } from "../api/types.ts";
import { COPY_LABEL, keyOf, LAB_LABEL, LEASE_EXEMPT_LABEL, TIER_LABEL, vmId } from "../api/types.ts";
import { findCondition, summarize, type ConditionInput } from "../api/conditions.ts";
import { jsonEqual } from "../api/equal.ts";
import { allocateAddresses, labNetworkProblem } from "../planners/labs/addresses.ts";
import { copiesOf, labVirtualMachine, labVms, nicRequests, TEMPLATE_ANNOTATION, templateDigest, uplinkProblem, type LabVm } from "../planners/labs/expand.ts";
import { leaseVerdict } from "../planners/labs/lease.ts";
import { dependencyOrder, orderCopy, type TierVm } from "../planners/labs/order.ts";
import type { ReconcileResult } from "./runner.ts";
import type { ReconcileContext } from "./context.ts";
import { wakeAt, writeStatusIfChanged } from "./context.ts";
import { execute } from "./executor.ts";

/** How often a lab on its way up or down looks again: its VMs' progress is observed, not announced to it. */
const PROGRESS_INTERVAL_MS = 1_000;

export async function reconcileLab(ctx: ReconcileContext, key: string, namespace: string, name: string): Promise<ReconcileResult | void> {
  const lab = ctx.store.get(key) as LabTopology | undefined;
  if (!lab || lab.metadata.deletionTimestamp) return removeLabVms(ctx, namespace, name, lab);
  const now = ctx.clock.now();
  const previous = lab.status?.observedGeneration === lab.metadata.generation ? lab.status : { ...lab.status, observedGeneration: lab.metadata.generation };

  // Refused before anything is touched: a cycle, overlapping networks, too few addresses.
  const order = dependencyOrder(lab.spec.tiers);
  const wanted = labVms(lab);
  const problem = !Array.isArray(order)
    ? { reason: "DependencyCycle", message: `tiers depend on each other in a cycle: ${order.cycle.join(" → ")}` }
    : labNetworkProblem(lab.spec.networks) ?? uplinkProblem(lab);
  const allocation = problem ? undefined : allocateAddresses({ lab: `${namespace}/${name}`, networks: lab.spec.networks, nics: nicRequests(wanted), previous: previous?.addresses ?? [] });
  const refusal = problem ?? (allocation && !allocation.ok ? { reason: allocation.reason, message: allocation.message } : undefined);
  if (refusal || !allocation?.ok) {
    const r = refusal!;
    await writeStatusIfChanged(ctx, lab, labStatus(lab, previous, { phase: "Stalled", message: r.message, stalled: r, now }));
    return;
  }
  const addresses = allocation.addresses;
  const addressesByVm = new Map<string, LabAddress[]>();
  for (const a of addresses) addressesByVm.set(a.vm, [...(addressesByVm.get(a.vm) ?? []), a]);
  const existing = labVmsInStore(ctx, lab);

  const lease = leaseVerdict({
    ...(lab.spec.lease ? { lease: lab.spec.lease } : {}),
    exempt: lab.metadata.labels?.[LEASE_EXEMPT_LABEL] === "true",
    createdAt: Date.parse(lab.metadata.creationTimestamp ?? new Date(now).toISOString()),
    ...(previous?.startedAt && !previous.stoppedAt ? { startedAt: Date.parse(previous.startedAt) } : {}),
    ...(previous?.stoppedAt ? { stoppedAt: Date.parse(previous.stoppedAt) } : {}),
    now,
  });
  if (lease.delete) return expire(ctx, lab, previous, existing, now);
  // Stopped by its runtime lease, the lab stays stopped until someone renews it (changes its spec).
  const stoppedBefore = lab.status?.leaseStopped;
  const leaseStopped = lease.stop ? { time: new Date(now).toISOString(), generation: lab.metadata.generation ?? 0 }
    : stoppedBefore && stoppedBefore.generation === (lab.metadata.generation ?? 0) ? stoppedBefore : undefined;
  const running = lab.spec.running && leaseStopped === undefined;

  const copies: LabCopyStatus[] = [];
  let stalled: { reason: string; message: string } | undefined;
  let wake = lease.wakeAt;
  const desired: VirtualMachine[] = [];
  const powerOff: { id: string; tier: string }[] = [];
  for (const copy of copiesOf(lab)) {
    const inCopy = wanted.filter((v) => v.copy.name === copy.name);
    const facts = new Map(lab.spec.tiers.map((t) => [t.name, inCopy.filter((v) => v.tier.name === t.name).map((v) => tierVm(ctx, existing.get(v.name), v))]));
    const decided = orderCopy({ tiers: lab.spec.tiers, vms: facts, previous: previous?.copies?.find((c) => c.name === copy.name)?.tiers ?? [], running, now });
    stalled ??= decided.stalled ? { ...decided.stalled, message: `copy ${copy.name}: ${decided.stalled.message}` } : undefined;
    if (decided.wakeAt !== undefined) wake = Math.min(wake ?? Infinity, decided.wakeAt);
    for (const v of inCopy) {
      desired.push(labVirtualMachine(lab, v, addressesByVm.get(v.name) ?? [], decided.released.has(v.tier.name) ? "Always" : "Halted"));
      if (decided.powerOff.has(v.tier.name)) powerOff.push({ id: `${namespace}/${v.name}`, tier: v.tier.name });
    }
    copies.push(copyStatus(copy.name, copy.platform, decided.tiers, inCopy, existing));
  }

  await writeVms(ctx, desired, existing);
  for (const { id, tier } of powerOff) {
    const instance = ctx.observed.vm(id);
    if (!instance || instance.power === "Off") continue;
    if (await execute(ctx, { type: "Stop", vm: id, mode: "PowerOff", reason: `lab ${name} stops tier ${tier} with PowerOff` }) === "applied") {
      ctx.events.record(lab, "Normal", "TierPoweredOff", `tier ${tier}: ${id} powered off`);
    }
  }

  const allTiers = copies.flatMap((c) => c.tiers);
  const phase: LabPhase = stalled ? "Stalled"
    : running ? (allTiers.every((t) => t.state === "Running") ? "Running" : existing.size === 0 ? "Pending" : "Starting")
    : (allTiers.every((t) => t.state === "Stopped") ? "Stopped" : "Stopping");
  const message = stalled?.message ?? (leaseStopped && lab.spec.running ? "the runtime lease expired: the lab was stopped; renew the lease to run it again" : undefined) ?? copies.find((c) => c.message)?.message;
  const status = labStatus(lab, previous, { phase, ...(message ? { message } : {}), copies, addresses, now, running, ...(stalled ? { stalled } : {}), lease });
  if (leaseStopped) status.leaseStopped = stoppedBefore && !lease.stop ? stoppedBefore : lab.status?.leaseStopped ?? leaseStopped;
  const before = findCondition(lab.status?.conditions, "LeaseExpiring");
  if (await writeStatusIfChanged(ctx, lab, status)) {
    const after = findCondition(status.conditions, "LeaseExpiring");
    if (after?.status === "True" && after.message !== before?.message) ctx.events.record(lab, "Warning", "LeaseExpiring", after.message);
    if (lab.status?.phase !== status.phase) ctx.events.record(lab, phase === "Stalled" ? "Warning" : "Normal", phase, message ?? `lab ${phase}`);
  }
  if (phase === "Starting" || phase === "Stopping" || phase === "Pending") return { requeueAfter: PROGRESS_INTERVAL_MS };
  if (wake !== undefined && Number.isFinite(wake)) return wakeAt(ctx, wake);
}

/** The lab's VMs in the store, by name: those that carry its label in its namespace. */
function labVmsInStore(ctx: ReconcileContext, lab: Readonly<LabTopology>): Map<string, VirtualMachine> {
  const byLab = ctx.store.derived("vm-keys-by-lab", () => {
    const index = new Map<string, string[]>();
    for (const vm of ctx.store.list("VirtualMachine")) {
      const name = vm.metadata.labels?.[LAB_LABEL];
      if (name === undefined) continue;
      const key = `${vm.metadata.namespace ?? "default"}/${name}`;
      index.set(key, [...(index.get(key) ?? []), keyOf(vm)]);
    }
    return index;
  });
  const vms = new Map<string, VirtualMachine>();
  for (const key of byLab.get(`${lab.metadata.namespace ?? "default"}/${lab.metadata.name}`) ?? []) {
    // Read now, with the status it has now: the index holds keys only.
    const vm = ctx.store.get(key) as VirtualMachine | undefined;
    if (vm) vms.set(vm.metadata.name, vm);
  }
  return vms;
}

/** A lab VM as the order sees it: on or not, since when started, Ready, answering. */
function tierVm(ctx: ReconcileContext, vm: VirtualMachine | undefined, v: LabVm): TierVm {
  if (!vm) return { name: v.name, on: false };
  const instance = ctx.observed.vm(vmId(vm));
  const on = instance !== undefined && instance.power !== "Off";
  const ready = findCondition(vm.status?.conditions, "Ready");
  const readyNow = isReady(vm) && ready?.status === "True" && vm.metadata.annotations?.[TEMPLATE_ANNOTATION] === templateDigest(v.tier);
  return {
    name: v.name,
    on,
    ...(on && instance.poweredOnAt !== undefined ? { startedAt: instance.poweredOnAt } : {}),
    ...(readyNow ? { readyAt: Date.parse(ready.lastTransitionTime) } : {}),
    ...(on && instance.power === "Running" && instance.guestHeartbeat !== undefined ? { heartbeatAt: instance.since } : {}),
  };
}

/**
 * Makes the VMs the lab wants and deletes those it no longer does. A changed template replaces a tier's
 * VMs one at a time: the next is changed (a cold power cycle) only once every VM of its tier already on
 * the new template is Ready.
 */
async function writeVms(ctx: ReconcileContext, desired: readonly VirtualMachine[], existing: ReadonlyMap<string, VirtualMachine>): Promise<void> {
  const wantedNames = new Set(desired.map((vm) => vm.metadata.name));
  const replacing = new Set<string>();
  for (const vm of desired) {
    const current = existing.get(vm.metadata.name);
    if (!current) {
      await ctx.objects.apply(vm);
      continue;
    }
    const digest = vm.metadata.annotations?.[TEMPLATE_ANNOTATION];
    const group = `${vm.metadata.labels?.[COPY_LABEL]}/${vm.metadata.labels?.[TIER_LABEL]}`;
    if (current.metadata.annotations?.[TEMPLATE_ANNOTATION] !== digest) {
      const peers = desired.filter((d) => `${d.metadata.labels?.[COPY_LABEL]}/${d.metadata.labels?.[TIER_LABEL]}` === group).map((d) => existing.get(d.metadata.name));
      const settling = peers.some((p) => p && p.metadata.annotations?.[TEMPLATE_ANNOTATION] === digest && !isReady(p));
      if (settling || replacing.has(group)) continue;
      replacing.add(group);
    }
    if (!sameDeclaration(current, vm)) await ctx.objects.apply(vm);
  }
  for (const [name, vm] of existing) if (!wantedNames.has(name)) await ctx.objects.delete(vm);
}

/** Ready for the spec it has now: a status written for an earlier generation does not count. */
function isReady(vm: Readonly<VirtualMachine>): boolean {
  return vm.status?.observedGeneration === vm.metadata.generation && vm.status?.phase === "Running" && findCondition(vm.status.conditions, "Ready")?.status === "True";
}

/** Whether the stored VM already says what the lab wants (the stored one is defaulted: compare what the lab sets). */
function sameDeclaration(current: Readonly<VirtualMachine>, wanted: Readonly<VirtualMachine>): boolean {
  const c = current.spec;
  const w = wanted.spec;
  return c.runStrategy === w.runStrategy && c.cpu === w.cpu && c.memoryMiB === w.memoryMiB && c.owner === w.owner
    && jsonEqual(c.cpuFeatures, w.cpuFeatures) && jsonEqual(c.disks, w.disks)
    && jsonEqual(c.networks.map((n) => [n.name, n.macAddress]), w.networks.map((n) => [n.name, n.macAddress]))
    && c.placement.hypervisor === w.placement.hypervisor && c.placement.cluster === w.placement.cluster
    && Object.entries(wanted.metadata.labels ?? {}).every(([k, v]) => current.metadata.labels?.[k] === v)
    && current.metadata.annotations?.[TEMPLATE_ANNOTATION] === wanted.metadata.annotations?.[TEMPLATE_ANNOTATION];
}

function copyStatus(name: string, platform: LabCopyStatus["platform"], tiers: LabTierStatus[], vms: readonly LabVm[], existing: ReadonlyMap<string, VirtualMachine>): LabCopyStatus {
  const unschedulable = vms.map((v) => existing.get(v.name)).find((vm) => vm?.status?.phase === "Unschedulable");
  const status: LabCopyStatus = { name, ...(platform ? { platform } : {}), ready: tiers.reduce((n, t) => n + t.ready, 0), total: tiers.reduce((n, t) => n + t.total, 0), tiers };
  if (unschedulable) status.message = `${unschedulable.metadata.name} is Unschedulable: ${findCondition(unschedulable.status?.conditions, "Ready")?.message ?? "no host fits"}`;
  return status;
}

interface StatusInput {
  phase: LabPhase;
  message?: string;
  stalled?: { reason: string; message: string };
  copies?: LabCopyStatus[];
  addresses?: LabAddress[];
  running?: boolean;
  lease?: ReturnType<typeof leaseVerdict>;
  now: number;
}

function labStatus(lab: Readonly<LabTopology>, previous: LabTopologyStatus | undefined, s: StatusInput): LabTopologyStatus {
  const nowIso = new Date(s.now).toISOString();
  const status: LabTopologyStatus = { observedGeneration: lab.metadata.generation, phase: s.phase };
  status.copies = s.copies ?? previous?.copies ?? [];
  status.addresses = s.addresses ?? previous?.addresses ?? [];
  // A run begins when the lab is asked to run after a stop (or for the first time), and ends once it is stopped.
  let startedAt = previous?.startedAt;
  let stoppedAt = previous?.stoppedAt;
  if (s.running === true && (startedAt === undefined || stoppedAt !== undefined)) {
    startedAt = nowIso;
    stoppedAt = undefined;
  }
  if (s.running === false && s.phase === "Stopped" && stoppedAt === undefined) stoppedAt = nowIso;
  if (startedAt) status.startedAt = startedAt;
  if (stoppedAt) status.stoppedAt = stoppedAt;
  if (s.lease?.next) status.nextExpiry = { time: new Date(s.lease.next.at).toISOString(), action: s.lease.next.action };
  if (s.message) status.message = s.message;
  const warning = s.lease?.warning;
  const conditions: ConditionInput[] = [
    warning
      ? { type: "LeaseExpiring", status: true, reason: warning.action === "Stop" ? "RuntimeLeaseExpiring" : "StorageLeaseExpiring", message: `the lab is ${warning.action === "Stop" ? "stopped" : "deleted"} at ${new Date(warning.at).toISOString()} (less than ${warning.before} away); renew its lease to keep it` }
      : { type: "LeaseExpiring", status: false, reason: "LeaseValid", message: s.lease?.next ? `next expiry at ${new Date(s.lease.next.at).toISOString()}` : "no lease expires" },
  ];
  const settled = s.phase === "Running" || s.phase === "Stopped" || s.phase === "Expired";
  status.conditions = summarize(lab.status?.conditions, {
    ready: settled && !s.stalled,
    reason: s.phase,
    message: s.message ?? `lab ${s.phase}`,
    ...(s.stalled ? { stalled: s.stalled } : {}),
    conditions,
  }, nowIso, lab.metadata.generation);
  return status;
}

/**
 * The storage lease (or the lifetime) ran out: the lab goes. In API mode the lab object is deleted, and the
 * garbage collector takes its VMs; in file mode, whose manifests Vireo never edits, its VMs are deleted and
 * the lab stays, Expired, until its manifest is removed.
 */
async function expire(ctx: ReconcileContext, lab: LabTopology, previous: LabTopologyStatus | undefined, existing: ReadonlyMap<string, VirtualMachine>, now: number): Promise<void> {
  if (lab.status?.phase !== "Expired") ctx.events.record(lab, "Warning", "Expired", "the lab's storage lease (or its maximum lifetime) expired: it is deleted");
  for (const vm of existing.values()) await ctx.objects.delete(vm);
  if (ctx.finalizers) {
    await ctx.objects.delete(lab);
    return;
  }
  await writeStatusIfChanged(ctx, lab, labStatus(lab, previous, { phase: "Expired", message: "the storage lease expired: its VMs were deleted", copies: [], addresses: [], now }));
}

/**
 * A lab deleted: its VMs go. In API mode the garbage collector deletes them by their owner reference; in
 * file mode (and for VMs a crash left behind) Vireo deletes every VM labelled with a lab that is gone.
 */
async function removeLabVms(ctx: ReconcileContext, namespace: string, name: string, lab: LabTopology | undefined): Promise<void> {
  if (ctx.finalizers && lab) return;
  for (const vm of ctx.store.list("VirtualMachine")) {
    if ((vm.metadata.namespace ?? "default") !== namespace || vm.metadata.labels?.[LAB_LABEL] !== name) continue;
    const owned = vm.metadata.ownerReferences?.some((o) => o.kind === "LabTopology" && o.name === name);
    // In API mode the collector deletes what the lab owned; Vireo still cleans what nothing owns.
    if (ctx.finalizers && owned) continue;
    await ctx.objects.delete(vm);
  }
}
