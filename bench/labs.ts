// Lab topology benchmark. Two figures, each beside a baseline and a bound:
//  1. 100 labs of 12 VMs (db 2, app 4, web 6; app waits for db to be Ready, web for app) expanded and
//     started on 200 hosts through the whole controller on the virtual clock: the controller's wall and CPU
//     time and the simulated time until every lab is Running, and whether every copy kept its order; beside
//     the same 1,200 VMs in the same labs with no dependsOn (the price of ordering), the floor the boots
//     allow, and the controller's cost per VM at a quarter of the size (how it grows).
//  2. Address allocation for 10,000 NICs in 100 fenced copies (allocateAddresses directly, as every lab
//     reconcile calls it): from scratch and from the previous status (a restart), against a bound of 100 ms
//     and a first-free scan; then the expansion of the same lab into its VirtualMachines with those addresses.
//
// Controller times are CPU time of this thread beside the wall: on a shared machine the wall measures the neighbours too.

import assert from "node:assert/strict";
import { performance } from "node:perf_hooks";
import type { LabAddress, LabTopology, VirtualMachine } from "../controller/api/types.ts";
import { LAB_LABEL, TIER_LABEL, vmId } from "../controller/api/types.ts";
import { findCondition } from "../controller/api/conditions.ts";
import { allocateAddresses, formatIpv4, parseIpv4, type NicRequest } from "../controller/planners/labs/addresses.ts";
import { labVirtualMachine, labVms, nicRequests } from "../controller/planners/labs/expand.ts";
import { DEFAULT_SIM_TIMINGS } from "../controller/provider/sim/index.ts";
import { parseManifestFile } from "../controller/sources/files/manifests.ts";
import { Scenario } from "../test/support/scenario.ts";
import { lab, labFleetYaml, labYaml, tierYaml } from "../test/support/labs.ts";
import { timeObservations } from "./observe-time.ts";

export async function benchLabs(): Promise<void> {
  await benchStart();
  benchAddresses();
}

// ------------------------------------------------------------ 1. 100 labs started in order

const LABS = 100;
const HOSTS = 200;
/** A quarter of the size, on a quarter of the hosts: how the controller's cost per VM grows with the fleet. */
const SMALL = { labs: 25, hosts: 50 };
/** The tiers of every lab, each waiting for the one before it to be Ready. */
const TIERS: readonly { name: string; replicas: number; after?: string }[] = [
  { name: "db", replicas: 2 },
  { name: "app", replicas: 4, after: "db" },
  { name: "web", replicas: 6, after: "app" },
];
const VMS_PER_LAB = TIERS.reduce((n, t) => n + t.replicas, 0);
/** Every lab Running within this much simulated time, or the benchmark fails. */
const RUNNING_LIMIT_MS = 600_000;

function labsYaml(labs: number, ordered: boolean): string {
  const tiers = TIERS.map((t) => tierYaml(t.name, { replicas: t.replicas, ...(ordered && t.after ? { dependsOn: `{tier: ${t.after}, waitFor: Ready}` } : {}) })).join("");
  return Array.from({ length: labs }, (_, i) => labYaml(labName(i), tiers)).join("");
}

function labName(i: number): string {
  return `lab-${String(i).padStart(3, "0")}`;
}

interface StartRun {
  labs: number;
  hosts: number;
  ordered: boolean;
  vms: number;
  /** The first round after the labs were applied: every lab expanded into its VMs, the first tiers placed. */
  expansion: { wallMs: number; cpuMs: number; vms: number };
  /** From applying the labs until every lab is Running. */
  wallMs: number;
  cpuMs: number;
  /** Of the wall: the simulated hosts building their observations (the same thread). */
  observeMs: number;
  simulatedMs: number;
  /** Simulated ms from the apply until each lab was Running, in order. */
  runningAfterMs: number[];
  /** Simulated ms from the apply until every VM of the tier, in every lab, was Ready. */
  tierReadyMs: Map<string, number>;
  /** Labs in which some VM of a tier powered on before every VM of the tier it (would) depend on was Ready. */
  outOfOrder: number;
  /** The least gap, over every lab and dependency, from the last VM of a tier Ready to the first of its dependent on: ms. */
  leastGapMs: number;
  reconciles: Map<string, number>;
  statusWrites: number;
}

async function startLabs(labs: number, hosts: number, ordered: boolean): Promise<StartRun> {
  const s = await Scenario.start(labFleetYaml(Array.from({ length: hosts }, (_, h) => ({ name: `esx-${String(h).padStart(3, "0")}`, hypervisor: "esx" }))));
  const observations = timeObservations(s.sim);
  try {
    const yaml = labsYaml(labs, ordered);
    const reconcilesBefore = await reconcileCounts(s);
    const writesBefore = s.statusWrites;
    const appliedAt = s.clock.now();
    const cpu = process.threadCpuUsage();
    const start = performance.now();
    s.apply(yaml);
    await s.controller.idle();
    const expandedCpu = process.threadCpuUsage(cpu);
    const expansion = { wallMs: performance.now() - start, cpuMs: cpuMs(expandedCpu), vms: s.vms().length };
    const runningAt = new Map<string, number>();
    await s.until(() => {
      for (let i = 0; i < labs; i++) {
        const name = labName(i);
        if (!runningAt.has(name) && lab(s, name).status?.phase === "Running") runningAt.set(name, s.clock.now() - appliedAt);
      }
      return runningAt.size === labs;
    }, RUNNING_LIMIT_MS, 1_000);
    const wallMs = performance.now() - start;
    const used = process.threadCpuUsage(cpu);
    const order = orderOf(s, appliedAt);
    const reconcilesAfter = await reconcileCounts(s);
    return {
      labs, hosts, ordered, vms: s.vms().length, expansion, wallMs, cpuMs: cpuMs(used), observeMs: observations.ms(),
      simulatedMs: s.clock.now() - appliedAt,
      runningAfterMs: [...runningAt.values()].sort((a, b) => a - b),
      ...order,
      reconciles: new Map([...reconcilesAfter].map(([kind, n]) => [kind, n - (reconcilesBefore.get(kind) ?? 0)])),
      statusWrites: s.statusWrites - writesBefore,
    };
  } finally {
    await s.stop();
  }
}

/** When each VM powered on (the hosts' word) and became Ready (its status), tier against tier, lab by lab. */
function orderOf(s: Scenario, appliedAt: number): Pick<StartRun, "tierReadyMs" | "outOfOrder" | "leastGapMs"> {
  const byLab = new Map<string, VirtualMachine[]>();
  for (const vm of s.vms()) {
    const lab = vm.metadata.labels![LAB_LABEL]!;
    byLab.set(lab, [...(byLab.get(lab) ?? []), vm]);
  }
  const tierReadyMs = new Map<string, number>();
  let outOfOrder = 0;
  let leastGapMs = Number.POSITIVE_INFINITY;
  for (const vms of byLab.values()) {
    const tier = (name: string) => vms.filter((vm) => vm.metadata.labels![TIER_LABEL] === name);
    const readyAt = (vm: VirtualMachine) => Date.parse(findCondition(vm.status?.conditions, "Ready")!.lastTransitionTime);
    const startedAt = (vm: VirtualMachine) => s.sim.observeVm(vmId(vm))!.poweredOnAt!;
    let kept = true;
    for (const t of TIERS) {
      const lastReady = Math.max(...tier(t.name).map(readyAt));
      tierReadyMs.set(t.name, Math.max(tierReadyMs.get(t.name) ?? 0, lastReady - appliedAt));
      if (!t.after) continue;
      const gap = Math.min(...tier(t.name).map(startedAt)) - Math.max(...tier(t.after).map(readyAt));
      leastGapMs = Math.min(leastGapMs, gap);
      if (gap < 0) kept = false;
    }
    if (!kept) outOfOrder++;
  }
  return { tierReadyMs, outOfOrder, leastGapMs };
}

/** Reconciles so far by kind, as the controller's own counter has them. */
async function reconcileCounts(s: Scenario): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const { labels, value } of (await s.controller.ctx.metrics.reconciles.get()).values) {
    const kind = String(labels.kind);
    counts.set(kind, (counts.get(kind) ?? 0) + value);
  }
  return counts;
}

async function benchStart(): Promise<void> {
  // A warm-up at the small size, so that no measured run pays for compiling the controller's code.
  await startLabs(SMALL.labs, SMALL.hosts, true);
  const ordered = await startLabs(LABS, HOSTS, true);
  const flat = await startLabs(LABS, HOSTS, false);
  const small = await startLabs(SMALL.labs, SMALL.hosts, true);
  for (const run of [ordered, flat, small]) assert.equal(run.vms, run.labs * VMS_PER_LAB, "every lab made all its VMs");
  const { bootMs } = DEFAULT_SIM_TIMINGS;
  const chain = TIERS.length;
  const perVm = (r: StartRun) => `${(r.cpuMs / r.vms).toFixed(2)} ms`;
  console.log(`\nlabs: ${LABS} labs of ${VMS_PER_LAB} VMs (${TIERS.map((t) => `${t.name} ${t.replicas}`).join(", ")}) = ${ordered.vms.toLocaleString("en")} VMs expanded and started on ${HOSTS} hosts (whole controller, virtual clock, observing every second)`);
  console.log(table([
    ["", "db → app → web", "no order", "bound"],
    ["simulated: every lab Running", fmtSeconds(ordered.simulatedMs), fmtSeconds(flat.simulatedMs), `floor ${fmtSeconds(chain * bootMs)} / ${fmtSeconds(bootMs)}: one ${bootMs / 1000} s boot per tier in the chain`],
    ["  first / median lab Running", `${fmtSeconds(ordered.runningAfterMs[0]!)} / ${fmtSeconds(median(ordered.runningAfterMs))}`, `${fmtSeconds(flat.runningAfterMs[0]!)} / ${fmtSeconds(median(flat.runningAfterMs))}`, ""],
    ...TIERS.map((t) => [`  every ${t.name} VM Ready`, fmtSeconds(ordered.tierReadyMs.get(t.name)!), fmtSeconds(flat.tierReadyMs.get(t.name)!), ""]),
    ["labs with a tier on before its dependency Ready", `${ordered.outOfOrder} of ${LABS}`, `${flat.outOfOrder} of ${LABS}`, "0 with the order"],
    ["  least gap, dependency Ready → dependent on", fmtSeconds(ordered.leastGapMs), fmtSeconds(flat.leastGapMs), "≥ 0 s"],
    ["controller wall, apply → every lab Running", `${(ordered.wallMs / 1000).toFixed(1)} s`, `${(flat.wallMs / 1000).toFixed(1)} s`, `< simulated: it keeps up with real time ${ordered.wallMs < ordered.simulatedMs && flat.wallMs < flat.simulatedMs ? "(met)" : "(MISSED)"}`],
    ["  CPU", `${(ordered.cpuMs / 1000).toFixed(1)} s`, `${(flat.cpuMs / 1000).toFixed(1)} s`, ""],
    ["  of which the hosts' observations", `${(ordered.observeMs / 1000).toFixed(1)} s`, `${(flat.observeMs / 1000).toFixed(1)} s`, "the simulated hosts, not the controller"],
    ["  expansion: first round after the apply", `${(ordered.expansion.wallMs / 1000).toFixed(2)} s (CPU ${(ordered.expansion.cpuMs / 1000).toFixed(2)})`, `${(flat.expansion.wallMs / 1000).toFixed(2)} s (CPU ${(flat.expansion.cpuMs / 1000).toFixed(2)})`, `${ordered.expansion.vms.toLocaleString("en")} / ${flat.expansion.vms.toLocaleString("en")} VMs made in it`],
    ["reconciles: LabTopology / VM / cluster / host", reconcileRow(ordered), reconcileRow(flat), ""],
    ["status writes", ordered.statusWrites.toLocaleString("en"), flat.statusWrites.toLocaleString("en"), ""],
    ["price of ordering: simulated / CPU", `+${fmtSeconds(ordered.simulatedMs - flat.simulatedMs)} / +${((ordered.cpuMs - flat.cpuMs) / 1000).toFixed(1)} s`, "", `+${fmtSeconds((chain - 1) * bootMs)}: the boots of the tiers that wait`],
    [`controller CPU per VM, ${ordered.vms.toLocaleString("en")} VMs / ${small.vms} (${SMALL.labs} labs, ${SMALL.hosts} hosts)`, `${perVm(ordered)} / ${perVm(small)}`, "", "equal if the cost grows linearly with the fleet"],
  ]));
}

function reconcileRow(r: StartRun): string {
  return ["LabTopology", "VirtualMachine", "HostCluster", "Host"].map((kind) => (r.reconciles.get(kind) ?? 0).toLocaleString("en")).join(" / ");
}

// ------------------------------------------------------------ 2. addresses for 10,000 NICs

const COPIES = 100;
/** 100 VMs in each copy, one NIC each, all on one Fenced network: 10,000 NICs, 10,000 external addresses. */
const FENCED_TIERS: readonly { name: string; replicas: number }[] = [{ name: "db", replicas: 10 }, { name: "app", replicas: 40 }, { name: "web", replicas: 50 }];
const FENCED_NETWORKS = "[{name: lab-net, cidr: 192.168.0.0/24, mode: Fenced, externalCidr: 10.64.0.0/18, uplink: lab}]";
const ADDRESS_BOUND_MS = 100;
const TIMED_RUNS = 5;

/** The lab as the API server would hand it over: parsed, validated and defaulted from its manifest. */
function fencedLab(): LabTopology {
  const tiers = FENCED_TIERS.map((t) => tierYaml(t.name, { replicas: t.replicas })).join("");
  const parsed = parseManifestFile("labs.yaml", labYaml("matrix", tiers, { copies: COPIES, networks: FENCED_NETWORKS }));
  if (!parsed.ok) throw new Error(`the benchmark's lab is refused: ${JSON.stringify(parsed.errors)}`);
  const lab = parsed.documents[0]!.object as LabTopology;
  return { ...lab, metadata: { ...lab.metadata, uid: "uid-matrix" } };
}

/** The simplest allocator: every NIC scans its pool from the bottom for the first free address. */
function firstFreeScan(nics: readonly NicRequest[]): Map<string, number> {
  const internalBase = parseIpv4("192.168.0.0")! + 2;
  const externalBase = parseIpv4("10.64.0.0")! + 2;
  const internal = new Map<string, number>();
  const takenExternal = new Set<number>();
  const given = new Map<string, number>();
  for (const nic of nics) {
    if (!internal.has(nic.vmInCopy)) internal.set(nic.vmInCopy, internalBase + internal.size);
    let address = externalBase;
    while (takenExternal.has(address)) address++;
    takenExternal.add(address);
    given.set(nic.vm, address);
  }
  return given;
}

/** The median wall and CPU time of TIMED_RUNS calls after a warm-up, and the last result. */
function timed<T>(run: () => T): { ms: number; cpuMs: number; result: T } {
  let result = run();
  const walls: number[] = [];
  const cpus: number[] = [];
  for (let i = 0; i < TIMED_RUNS; i++) {
    const cpu = process.threadCpuUsage();
    const start = performance.now();
    result = run();
    walls.push(performance.now() - start);
    cpus.push(cpuMs(process.threadCpuUsage(cpu)));
  }
  return { ms: median(walls), cpuMs: median(cpus), result };
}

function benchAddresses(): void {
  const lab = fencedLab();
  const wanted = labVms(lab);
  const nics = nicRequests(wanted);
  const input = { lab: "default/matrix", networks: lab.spec.networks, nics };
  const scratch = timed(() => allocateAddresses({ ...input, previous: [] }));
  if (!scratch.result.ok) throw new Error(`allocation refused: ${scratch.result.message}`);
  const addresses = scratch.result.addresses;
  // What the status held, as it comes back from the store after a restart.
  const previous: LabAddress[] = structuredClone(addresses);
  const restart = timed(() => allocateAddresses({ ...input, previous }));
  assert.ok(restart.result.ok);
  assert.deepEqual(restart.result.addresses, addresses, "a restart keeps every address and MAC");
  const scan = timed(() => firstFreeScan(nics));

  const externals = new Set(addresses.map((a) => a.externalAddress));
  const internals = new Set(addresses.map((a) => a.address));
  const macs = new Set(addresses.map((a) => a.macAddress));
  const perCopy = nics.length / COPIES;
  assert.equal(externals.size, nics.length, "external addresses unique across copies");
  assert.equal(internals.size, perCopy, "every copy reuses the same internal addresses");
  assert.equal(macs.size, perCopy, "every copy reuses the same MACs");

  // The rest of the lab reconcile's expansion: the VirtualMachine of every lab VM, with its NIC's MAC, as
  // the reconcile does it (the addresses indexed by VM once), beside looking each VM's up in the whole list.
  const expand = timed(() => {
    const byVm = new Map<string, LabAddress[]>();
    for (const a of addresses) byVm.set(a.vm, [...(byVm.get(a.vm) ?? []), a]);
    return wanted.map((v) => labVirtualMachine(lab, v, byVm.get(v.name) ?? [], "Always"));
  });
  const expandScanning = timed(() => wanted.map((v) => labVirtualMachine(lab, v, addresses.filter((a) => a.vm === v.name), "Always")));
  assert.deepEqual(expandScanning.result, expand.result, "the same VMs either way");

  const verdict = (t: { cpuMs: number }) => `< ${ADDRESS_BOUND_MS} ms ${t.cpuMs < ADDRESS_BOUND_MS ? "(met)" : "(MISSED)"}`;
  const ms = (t: { ms: number; cpuMs: number }) => `${t.ms.toFixed(1)} (${t.cpuMs.toFixed(1)})`;
  const lastExternal = [...externals].map((a) => parseIpv4(a!)!).reduce((a, b) => Math.max(a, b));
  console.log(`\nlabs: addresses for ${nics.length.toLocaleString("en")} NICs in ${COPIES} fenced copies of ${perCopy} VMs (one Fenced network, 192.168.0.0/24 inside, 10.64.0.0/18 outside; median of ${TIMED_RUNS})`);
  console.log(table([
    ["", "ms (CPU)", "", "bound, on CPU time"],
    ["allocateAddresses, from scratch", ms(scratch), `${externals.size.toLocaleString("en")} external addresses unique (up to ${formatIpv4(lastExternal)}), ${internals.size} internal and ${macs.size} MACs shared by every copy`, verdict(scratch)],
    ["allocateAddresses, from the previous status (restart)", ms(restart), "every address and MAC kept", verdict(restart)],
    ["  baseline: first free address, scanned per NIC", ms(scan), "external addresses only, no MACs, no checks", ""],
    ["labVirtualMachine for every VM, addresses indexed by VM", ms(expand), "what each lab reconcile does after allocating", verdict(expand)],
    ["  baseline: each VM's addresses looked up in the whole list", ms(expandScanning), "the same VMs", ""],
  ]));
}

// ------------------------------------------------------------ formatting

function cpuMs(used: NodeJS.CpuUsage): number {
  return (used.user + used.system) / 1000;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function fmtSeconds(ms: number): string {
  return `${Math.round(ms / 1000).toLocaleString("en")} s`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => "  " + r.map((cell, i) => (i === 0 || i === r.length - 1 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("   ").trimEnd()).join("\n");
}
