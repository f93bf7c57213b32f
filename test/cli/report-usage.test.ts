// `vireo report usage`: read from a state directory as the command reads it, at a fixed time. A team's labs
// (one past its runtime lease, one past its storage lease, one expiring this afternoon, one already Expired,
// one exempt), plain VMs with leases, VMs nobody owns, and — in a second state directory that holds the
// simulator's world — VMs whose observed CPU use makes them idle or not.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { report } from "../../controller/cli/report.ts";
import { UsageError } from "../../controller/cli/args.ts";
import type { UsageReport, ReclaimItem } from "../../controller/cli/usage-report.ts";
import { declaredPeakPercent } from "../../controller/cli/usage-report.ts";
import { STATE_FORMAT } from "../../controller/state/state-dir.ts";
import type { LabLease, LabPhase, LabTopology, VirtualMachine, VirtualMachineStatus } from "../../controller/api/types.ts";
import { API_VERSION, LAB_LABEL, LEASE_EXEMPT_LABEL } from "../../controller/api/types.ts";
import { VirtualClock } from "../../controller/core/clock.ts";
import { SimulatedHosts } from "../../controller/provider/sim/index.ts";
import { hostConfig, vmConfig } from "../support/provider.ts";
import { vmObject } from "../support/objects.ts";
import { tempDir } from "../support/process.ts";

const NOW = Date.parse("2026-11-24T12:00:00Z");
const HOUR = 3_600_000;
const iso = (ms: number): string => new Date(ms).toISOString();

interface VmOptions {
  owner?: string;
  lab?: string;
  cpu?: number;
  memoryGiB?: number;
  status?: VirtualMachineStatus;
  lease?: VirtualMachine["spec"]["lease"];
  createdAgoH?: number;
  exempt?: boolean;
  workload?: VirtualMachine["spec"]["workload"];
}

function vm(namespace: string, name: string, options: VmOptions = {}): VirtualMachine {
  const o = { cpu: 2, memoryGiB: 4, createdAgoH: 72, ...options };
  const object = vmObject(name, { cpu: o.cpu, memoryGiB: o.memoryGiB, ...(o.status ? { status: o.status } : {}) });
  object.metadata.namespace = namespace;
  object.metadata.creationTimestamp = iso(NOW - o.createdAgoH * HOUR);
  object.metadata.labels = { ...(o.lab ? { [LAB_LABEL]: o.lab } : {}), ...(o.exempt ? { [LEASE_EXEMPT_LABEL]: "true" } : {}) };
  object.spec = { ...object.spec, ...(o.owner ? { owner: o.owner } : {}), ...(o.lease ? { lease: o.lease } : {}), ...(o.workload ? { workload: o.workload } : {}) };
  return object;
}

const running = (host: string, startedAgoH = 1): VirtualMachineStatus => ({ phase: "Running", host, startedAt: iso(NOW - startedAgoH * HOUR) });
const stopped: VirtualMachineStatus = { phase: "Stopped" };

function lab(name: string, o: { owner?: string; phase: LabPhase; lease?: LabLease; createdAgoH: number; startedAgoH?: number; stoppedAgoH?: number; next?: { inH: number; action: "Stop" | "Delete" }; exempt?: boolean }): LabTopology {
  return {
    apiVersion: API_VERSION,
    kind: "LabTopology",
    metadata: { name, namespace: "qa", generation: 1, creationTimestamp: iso(NOW - o.createdAgoH * HOUR), ...(o.exempt ? { labels: { [LEASE_EXEMPT_LABEL]: "true" } } : {}) },
    spec: { owner: o.owner ?? "qa-team", cluster: "lab", running: true, copies: 1, platforms: [], networks: [], tiers: [], ...(o.lease ? { lease: o.lease } : {}) },
    status: {
      observedGeneration: 1,
      phase: o.phase,
      ...(o.startedAgoH !== undefined ? { startedAt: iso(NOW - o.startedAgoH * HOUR) } : {}),
      ...(o.stoppedAgoH !== undefined ? { stoppedAt: iso(NOW - o.stoppedAgoH * HOUR) } : {}),
      ...(o.next ? { nextExpiry: { time: iso(NOW + o.next.inH * HOUR), action: o.next.action } } : {}),
    },
  };
}

const LABS: LabTopology[] = [
  // Powered on 9 h ago with an 8 h runtime lease: its runtime ran out an hour ago (the controller is behind).
  lab("shop-3t", { phase: "Running", lease: { runtime: "8h", storage: "72h", warnBefore: ["1h"] }, createdAgoH: 10, startedAgoH: 9, next: { inH: -1, action: "Stop" } }),
  // Stopped 30 h ago with a 24 h storage lease: deleted now.
  lab("perf", { owner: "perf-team", phase: "Stopped", lease: { storage: "24h", warnBefore: [] }, createdAgoH: 60, startedAgoH: 50, stoppedAgoH: 30, next: { inH: -6, action: "Delete" } }),
  // Six hours of runtime left: expiring within the day, nothing to reclaim yet.
  lab("demo", { phase: "Running", lease: { runtime: "8h", warnBefore: ["1h"] }, createdAgoH: 2, startedAgoH: 2, next: { inH: 6, action: "Stop" } }),
  // Two days left: not expiring yet.
  lab("long", { phase: "Running", lease: { runtime: "72h", warnBefore: [] }, createdAgoH: 24, startedAgoH: 24, next: { inH: 48, action: "Stop" } }),
  // Expired in file mode: its VMs are gone, it stays until its manifest is removed.
  lab("old", { phase: "Expired", lease: { storage: "1h", warnBefore: [] }, createdAgoH: 100, startedAgoH: 99, stoppedAgoH: 90 }),
  // Its runtime lease ran out, but the exemption label holds.
  lab("keep", { phase: "Running", lease: { runtime: "1h", warnBefore: [] }, createdAgoH: 5, startedAgoH: 5, exempt: true }),
];

const VMS: VirtualMachine[] = [
  vm("qa", "shop-3t-0-db-0", { owner: "qa-team", lab: "shop-3t", cpu: 4, memoryGiB: 16, status: running("kvm-01", 9) }),
  vm("qa", "shop-3t-0-app-0", { owner: "qa-team", lab: "shop-3t", status: running("kvm-02", 9) }),
  vm("qa", "shop-3t-0-web-0", { owner: "qa-team", lab: "shop-3t", status: running("kvm-01", 9) }),
  vm("qa", "perf-0-load-0", { owner: "perf-team", lab: "perf", cpu: 8, memoryGiB: 8, status: stopped }),
  vm("qa", "perf-0-sut-0", { owner: "perf-team", lab: "perf", cpu: 8, memoryGiB: 8, status: stopped }),
  vm("qa", "demo-0-web-0", { owner: "qa-team", lab: "demo", cpu: 1, memoryGiB: 2, status: running("kvm-02", 2) }),
  vm("qa", "keep-0-web-0", { owner: "qa-team", lab: "keep", cpu: 1, memoryGiB: 2, status: running("kvm-02", 5) }),
  // Plain VMs with leases: one past its ttl and running, one past it and already removed, one with time left, one exempt.
  vm("ci", "tmp-1", { owner: "alice", lease: { ttl: "24h", onExpiry: "Stop" }, createdAgoH: 30, status: running("kvm-01", 29) }),
  vm("ci", "tmp-2", { owner: "alice", lease: { ttl: "24h", onExpiry: "Delete" }, createdAgoH: 30, status: { phase: "Stopped", conditions: [{ type: "Ready", status: "True", reason: "LeaseExpired", message: "the lease expired", lastTransitionTime: iso(NOW - 6 * HOUR) }] } }),
  vm("ci", "tmp-3", { owner: "alice", lease: { ttl: "720h", onExpiry: "Delete" }, createdAgoH: 30, status: running("kvm-01", 29) }),
  vm("ci", "pinned", { owner: "alice", lease: { ttl: "1h", onExpiry: "Delete" }, createdAgoH: 30, exempt: true, status: running("kvm-02", 29) }),
  // Nobody's: an idle one up for two days, a busy one, one that never started.
  vm("shop", "web-1", { cpu: 2, memoryGiB: 4, workload: { profile: "Idle", cpuPercent: 0 }, status: running("esx-01", 48) }),
  vm("shop", "db-1", { cpu: 8, memoryGiB: 32, workload: { profile: "Steady", cpuPercent: 40 }, status: running("esx-02", 48) }),
  vm("shop", "cache-1", { cpu: 1, memoryGiB: 1, status: { phase: "Pending" } }),
];

const state = tempDir("report-usage");
after(() => state.remove());
const objectsPath = join(state.path, "objects.json");
writeFileSync(objectsPath, JSON.stringify({ format: STATE_FORMAT, updatedAt: iso(NOW), objects: [...LABS, ...VMS].map((object) => ({ object })), manifestErrors: [] }));

async function vireoReport(dir: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await report([...args, "--state-dir", dir], { out: (t) => { out += `${t}\n`; }, err: (t) => { err += `${t}\n`; } }, NOW);
  return { code, out, err };
}

describe("vireo report usage", () => {
  it("prints VMs, vCPUs and memory by owner and by lab, the labs expiring within a day or expired, the VMs nobody owns and the idle ones", async () => {
    const { code, out } = await vireoReport(state.path, "usage");
    assert.equal(code, 0);
    assert.equal(out, [
      "VMs by owner:",
      "OWNER       VMS   RUNNING   VCPUS   MEMORY",
      "alice       4     3         8       16Gi",
      "perf-team   2     0         16      16Gi",
      "qa-team     5     5         10      28Gi",
      "<none>      3     2         11      37Gi",
      "",
      "VMs by lab:",
      "NAMESPACE   LAB       OWNER       PHASE     VMS   RUNNING   VCPUS   MEMORY",
      "qa          demo      qa-team     Running   1     1         1       2Gi",
      "qa          keep      qa-team     Running   1     1         1       2Gi",
      "qa          long      qa-team     Running   0     0         0       0",
      "qa          old       qa-team     Expired   0     0         0       0",
      "qa          perf      perf-team   Stopped   2     0         16      16Gi",
      "qa          shop-3t   qa-team     Running   3     3         8       24Gi",
      "",
      "Labs expiring within 1d, or expired:",
      "NAMESPACE   LAB       OWNER       PHASE     ACTION   EXPIRY                     WHEN",
      "qa          old       qa-team     Expired                                       expired",
      "qa          perf      perf-team   Stopped   Delete   2026-11-24T06:00:00.000Z   overdue 6h",
      "qa          shop-3t   qa-team     Running   Stop     2026-11-24T11:00:00.000Z   overdue 1h",
      "qa          demo      qa-team     Running   Stop     2026-11-24T18:00:00.000Z   in 6h",
      "",
      "VMs without an owner:",
      "NAMESPACE   NAME      PHASE     HOST     VCPUS   MEMORY",
      "shop        cache-1   Pending            1       1Gi",
      "shop        db-1      Running   esx-02   8       32Gi",
      "shop        web-1     Running   esx-01   2       4Gi",
      "",
      "Idle VMs (CPU at most 5% for 1d, from status and declared workload):",
      "NAMESPACE   NAME    OWNER    LAB   HOST     PEAK CPU   RUNNING FOR",
      "shop        web-1   <none>         esx-01   1%         2d",
      "",
    ].join("\n"));
  });

  it("gives the same report as data with -o json, and takes the expiry window and idle rule from its flags", async () => {
    const { out } = await vireoReport(state.path, "usage", "-o", "json", "--expiring-within", "72h", "--idle-for", "20h", "--idle-cpu-percent", "25");
    const r = JSON.parse(out) as UsageReport;
    assert.equal(r.time, iso(NOW));
    assert.deepEqual(r.byOwner.find((o) => o.owner === "qa-team"), { owner: "qa-team", vms: 5, running: 5, vcpus: 10, memoryMiB: 28 * 1024 });
    assert.deepEqual(r.byOwner.at(-1), { vms: 3, running: 2, vcpus: 11, memoryMiB: 37 * 1024 });
    assert.deepEqual(r.expiringLabs.map((l) => l.lab), ["old", "perf", "shop-3t", "demo", "long"], "72h reaches the lab with two days left");
    assert.deepEqual(r.unownedVms.map((v) => v.name), ["cache-1", "db-1", "web-1"]);
    assert.deepEqual(r.idle, { cpuPercent: 25, forSeconds: 72_000, basis: "Declared" });
    // Up 29 h with the default workload (Steady 20 %): idle at 25 %, as is the idle web-1; db-1 runs at 40 %.
    assert.deepEqual(r.idleVms.map((v) => `${v.namespace}/${v.name} ${v.peakCpuPercent}`), ["ci/pinned 20", "ci/tmp-1 20", "ci/tmp-3 20", "shop/web-1 1"]);
  });

  it("keeps to one namespace with -n", async () => {
    const { out } = await vireoReport(state.path, "usage", "-n", "ci", "-o", "json");
    const r = JSON.parse(out) as UsageReport;
    assert.deepEqual(r.byOwner.map((o) => o.owner), ["alice"]);
    assert.deepEqual(r.byLab, []);
    assert.deepEqual(r.unownedVms, []);
  });

  it("says what is missing when there is no state", async () => {
    const empty = tempDir("report-empty");
    after(() => empty.remove());
    const { code, err } = await vireoReport(empty.path, "usage");
    assert.equal(code, 1);
    assert.match(err, /no state in .*: is `vireo run` running there\?/);
  });

  it("refuses a bad duration or percentage, and an unknown report", async () => {
    await assert.rejects(vireoReport(state.path, "usage", "--idle-for", "a day"), (e: unknown) => e instanceof UsageError && /--idle-for must be a duration/.test(e.message));
    await assert.rejects(vireoReport(state.path, "usage", "--idle-cpu-percent", "150"), (e: unknown) => e instanceof UsageError && /percentage/.test(e.message));
    await assert.rejects(vireoReport(state.path, "costs"), (e: unknown) => e instanceof UsageError && /unknown report "costs"/.test(e.message));
  });
});

describe("vireo report usage --reclaim --dry-run", () => {
  it("lists exactly what expiry stops or deletes now: the lab past its runtime lease, the lab past its storage lease, the plain VM past its ttl", async () => {
    const { code, out } = await vireoReport(state.path, "usage", "--reclaim", "--dry-run");
    assert.equal(code, 0);
    assert.equal(out, [
      "ACTION   KIND             NAMESPACE   NAME      OWNER       LEASE     EXPIRED                    VMS",
      "Delete   LabTopology      qa          perf      perf-team   storage   2026-11-24T06:00:00.000Z   2",
      "Stop     LabTopology      qa          shop-3t   qa-team     runtime   2026-11-24T11:00:00.000Z   3",
      "Stop     VirtualMachine   ci          tmp-1     alice       ttl       2026-11-24T06:00:00.000Z   1",
      "(dry run: nothing was changed)",
      "",
    ].join("\n"));
  });

  it("names the VMs in -o json, and changes nothing", async () => {
    const before = readFileSync(objectsPath);
    const { out } = await vireoReport(state.path, "usage", "--reclaim", "--dry-run", "-o", "json");
    const { dryRun, items } = JSON.parse(out) as { dryRun: boolean; items: ReclaimItem[] };
    assert.equal(dryRun, true);
    assert.deepEqual(items.map((i) => [i.action, `${i.namespace}/${i.name}`, i.vms]), [
      ["Delete", "qa/perf", ["perf-0-load-0", "perf-0-sut-0"]],
      ["Stop", "qa/shop-3t", ["shop-3t-0-app-0", "shop-3t-0-db-0", "shop-3t-0-web-0"]],
      ["Stop", "ci/tmp-1", ["tmp-1"]],
    ]);
    assert.deepEqual(readFileSync(objectsPath), before);
  });

  it("names the lifetime when it runs out before the lease, and a plain VM's Delete", async () => {
    const dir = tempDir("report-lifetime");
    after(() => dir.remove());
    const capped = lab("capped", { phase: "Running", lease: { runtime: "8h", maxLifetime: "4h", warnBefore: [] }, createdAgoH: 5, startedAgoH: 3 });
    const doomed = vm("ci", "doomed", { owner: "bob", lease: { ttl: "2h", onExpiry: "Delete" }, createdAgoH: 3, status: stopped });
    writeFileSync(join(dir.path, "objects.json"), JSON.stringify({ format: STATE_FORMAT, updatedAt: iso(NOW), objects: [capped, doomed].map((object) => ({ object })), manifestErrors: [] }));
    const { out } = await vireoReport(dir.path, "usage", "--reclaim", "--dry-run", "-o", "json");
    const { items } = JSON.parse(out) as { items: ReclaimItem[] };
    // The lifetime ends at creation + 4 h, before runtime would (power-on + 8 h): the lab is deleted, not stopped.
    assert.deepEqual(items.map((i) => [i.action, i.name, i.lease, i.expiredAt]), [
      ["Delete", "capped", "maxLifetime", iso(NOW - HOUR)],
      ["Delete", "doomed", "ttl", iso(NOW - HOUR)],
    ]);
  });

  it("refuses --reclaim without --dry-run: Vireo reclaims by itself", async () => {
    const before = readFileSync(objectsPath);
    const { code, err } = await vireoReport(state.path, "usage", "--reclaim");
    assert.equal(code, 1);
    assert.match(err, /Vireo reclaims by itself as leases expire.*--dry-run/);
    assert.deepEqual(readFileSync(objectsPath), before);
  });
});

describe("vireo report usage: idle VMs from the simulator's world", () => {
  const dir = tempDir("report-idle");
  after(() => dir.remove());
  const names = ["quiet", "trickle", "bursty", "fresh"];

  before(async () => {
    // Powered on two days before the report, except `fresh`, started an hour before it.
    const clock = new VirtualClock(NOW - 48 * HOUR);
    const sim = new SimulatedHosts({ seed: 7, clock, statePath: join(dir.path, "world.json") });
    await sim.registerHost("kvm-01", hostConfig({ hypervisor: "kvm" }));
    await sim.startVm("lab/quiet", "kvm-01", vmConfig({ workload: { profile: "Idle", cpuPercent: 0 } }));
    await sim.startVm("lab/trickle", "kvm-01", vmConfig({ workload: { profile: "Steady", cpuPercent: 3 } }));
    await sim.startVm("lab/bursty", "kvm-01", vmConfig({ workload: { profile: "Bursty", cpuPercent: 10 } }));
    await clock.advance(sim.timings.bootMs);
    await clock.advance(47 * HOUR - sim.timings.bootMs);
    await sim.startVm("lab/fresh", "kvm-01", vmConfig({ workload: { profile: "Idle", cpuPercent: 0 } }));
    await clock.advance(sim.timings.bootMs);
    await sim.flush();
    await sim.close();
    // The declared objects; their status would say nothing of their CPU use.
    const objects = names.map((name) => vm("lab", name, { owner: "qa-team", status: running("kvm-01", 48) }));
    writeFileSync(join(dir.path, "objects.json"), JSON.stringify({ format: STATE_FORMAT, updatedAt: iso(NOW), objects: objects.map((object) => ({ object })), manifestErrors: [] }));
  });

  it("judges by the simulator's usage over the window: idle and trickling guests are idle, a bursty one is not, one up for an hour is not yet", async () => {
    const { out } = await vireoReport(dir.path, "usage", "-o", "json");
    const r = JSON.parse(out) as UsageReport;
    assert.equal(r.idle.basis, "Observed");
    assert.deepEqual(r.idleVms.map((v) => `${v.name} ${v.peakCpuPercent}% on ${v.host}`), ["quiet 1% on kvm-01", "trickle 3% on kvm-01"]);
    assert.ok(r.idleVms.every((v) => v.runningSeconds >= 24 * 3600));
  });

  it("counts a bursty guest idle only under a threshold its bursts stay within (3 × its mean)", async () => {
    const { out } = await vireoReport(dir.path, "usage", "-o", "json", "--idle-cpu-percent", "30");
    assert.deepEqual((JSON.parse(out) as UsageReport).idleVms.map((v) => `${v.name} ${v.peakCpuPercent}%`), ["bursty 30%", "quiet 1%", "trickle 3%"]);
    assert.equal(declaredPeakPercent({ profile: "Bursty", cpuPercent: 10 }), 30, "the declared peak agrees with the simulator's");
  });

  it("says in the table that the figures are the simulator's", async () => {
    const { out } = await vireoReport(dir.path, "usage");
    assert.match(out, /^Idle VMs \(CPU at most 5% for 1d, from the simulator's usage\):$/m);
  });
});
