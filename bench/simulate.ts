// `vireo simulate` benchmark: how fast a what-if runs. The rack-loss scenario scaled up: 200 hosts in 20
// racks (four HA clusters of 50), 4,000 VMs in four tiers with restart priorities, the afternoon rush lifting
// the web and app tiers, then one rack of ten hosts crashing at the peak for 40 minutes. The fleet is built
// with the scenario format's own `generate` and run as `vireo simulate` runs it: the real controller against
// the simulated hosts on the virtual clock. Figures: simulated seconds per wall-clock second and the wall an
// hour of simulated operation costs, against a drill in real time and the aim of an hour in under 30 s; the
// start-up (placing and booting the fleet) apart, and the share of the simulated hosts' observations; what
// the run found, so a fast run is also a right one; and the shipped rack-loss scenario's speed beside it.
//
// Wall and CPU time of this thread: on a shared machine the wall measures the neighbours too.

import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { loadScenario, parseScenario } from "../controller/simulate/scenario.ts";
import type { Scenario } from "../controller/simulate/scenario.ts";
import { runScenario } from "../controller/simulate/run.ts";
import { SimulatedHosts } from "../controller/provider/sim/index.ts";
import type { RunResult } from "../controller/simulate/run.ts";
import { REPO } from "../test/support/process.ts";

const CLUSTERS = 4;
const RACKS_PER_CLUSTER = 5;
const HOSTS_PER_RACK = 10;
/** The rack lost: the third of cluster c1. */
const LOST_RACK = "r03";
/** The aim: an hour of simulated operation in under 30 s of wall. */
const AIM_WALL_PER_HOUR_S = 30;

/** The tiers of each cluster's 1,000 VMs: how many, their size, load and restart priority. */
const TIERS = [
  { tier: "db", count: 100, cpu: 8, memoryMiB: 32_768, profile: "Steady", cpuPercent: 40, priority: "Highest" },
  { tier: "app", count: 300, cpu: 4, memoryMiB: 16_384, profile: "Diurnal", cpuPercent: 50, priority: "High" },
  { tier: "web", count: 400, cpu: 2, memoryMiB: 8_192, profile: "Bursty", cpuPercent: 30, priority: "Low" },
  { tier: "batch", count: 200, cpu: 4, memoryMiB: 16_384, profile: "Diurnal", cpuPercent: 50, priority: "Lowest" },
] as const;

const rack = (cluster: number, r: number) => `r${String((cluster - 1) * RACKS_PER_CLUSTER + r).padStart(2, "0")}`;

function clusterYaml(c: number): string {
  return `    - apiVersion: vireo.dev/v1alpha1
      kind: HostCluster
      metadata: {name: c${c}}
      spec:
        hostSelector: {matchLabels: {vireo.dev/cluster: c${c}}}
        placement: {strategy: Spread}
        ha: {enabled: true, failureDetectionSeconds: 15, admissionControl: {policy: HostFailuresToTolerate, hostFailures: 1}}
`;
}

function policyYaml(t: (typeof TIERS)[number]): string {
  return `    - apiVersion: vireo.dev/v1alpha1
      kind: HAPolicy
      metadata: {name: ${t.tier}, namespace: fleet}
      spec: {selector: {matchLabels: {tier: ${t.tier}}}, restartPriority: ${t.priority}}
`;
}

function hostsYaml(c: number, r: number): string {
  const name = rack(c, r);
  return `    - count: ${HOSTS_PER_RACK}
      object:
        apiVersion: vireo.dev/v1alpha1
        kind: Host
        metadata: {name: "esx-${name}-{index}", labels: {vireo.dev/cluster: c${c}, topology.vireo.dev/rack: ${name}}}
        spec: {hypervisor: esx, cpu: {cores: 64, vendor: intel, features: [sse4_2, avx, avx2], overcommitRatio: 4}, memoryMiB: 524288, datastores: [ds-c${c}], networks: [prod]}
`;
}

function vmsYaml(c: number, t: (typeof TIERS)[number]): string {
  return `    - count: ${t.count}
      object:
        apiVersion: vireo.dev/v1alpha1
        kind: VirtualMachine
        metadata: {name: "c${c}-${t.tier}-{index}", namespace: fleet, labels: {tier: ${t.tier}, cluster: c${c}}}
        spec:
          cpu: ${t.cpu}
          memoryMiB: ${t.memoryMiB}
          disks: [{name: root, sizeGiB: 40, datastore: ds-c${c}}]
          networks: [{name: prod}]
          placement: {cluster: c${c}}
          workload: {profile: ${t.profile}, cpuPercent: ${t.cpuPercent}}
`;
}

/** The scenario file's text: as a person would write it, with `generate` for the racks and the tiers. */
export function largeRackLossYaml(): string {
  const clusters = Array.from({ length: CLUSTERS }, (_, i) => i + 1);
  let yaml = `name: rack-loss-200-hosts
description: Rack ${LOST_RACK} (ten hosts of cluster c1) crashes at the afternoon peak of 4,000 VMs and is back 40 minutes later.
seed: 1
start: "2026-03-02T12:30:00Z"
duration: 2h
sampleInterval: 30s
fleet:
  objects:
`;
  yaml += clusters.map(clusterYaml).join("") + TIERS.map(policyYaml).join("");
  yaml += "  generate:\n";
  for (const c of clusters) for (let r = 1; r <= RACKS_PER_CLUSTER; r++) yaml += hostsYaml(c, r);
  for (const c of clusters) for (const t of TIERS) yaml += vmsYaml(c, t);
  yaml += `timeline:
  - at: 20m
    note: the afternoon rush reaches the web tier
    workload: {namespace: fleet, vmSelector: {matchLabels: {tier: web}}, profile: Diurnal, cpuPercent: 90}
  - at: 35m
    note: and the app tier behind it
    workload: {namespace: fleet, vmSelector: {matchLabels: {tier: app}}, profile: Diurnal, cpuPercent: 85}
  - at: 1h
    note: rack ${LOST_RACK} loses power
    fault: {type: HostCrash, hostSelector: {matchLabels: {topology.vireo.dev/rack: ${LOST_RACK}}}, duration: 40m}
`;
  return yaml;
}

interface Timed {
  result: RunResult;
  scenario: Scenario;
  parseMs: number;
  wallMs: number;
  cpuMs: number;
  /** CPU time spent building the simulated hosts' observations (the controller's, each second, and the samples'). */
  observeMs: number;
  heapMiB: number;
}

async function timedRun(read: () => Scenario): Promise<Timed> {
  const parseStart = performance.now();
  const scenario = read();
  const parseMs = performance.now() - parseStart;
  // The simulated hosts build an observation synchronously: timing the call times all of it.
  const observe = Object.getOwnPropertyDescriptor(SimulatedHosts.prototype, "observe")!;
  let observeMs = 0;
  Object.defineProperty(SimulatedHosts.prototype, "observe", {
    ...observe,
    value: function timedObserve(this: SimulatedHosts) {
      const before = process.threadCpuUsage();
      const observation = (observe.value as SimulatedHosts["observe"]).call(this);
      const used = process.threadCpuUsage(before);
      observeMs += (used.user + used.system) / 1000;
      return observation;
    },
  });
  try {
    const cpu = process.threadCpuUsage();
    const start = performance.now();
    const result = await runScenario(scenario);
    const wallMs = performance.now() - start;
    const used = process.threadCpuUsage(cpu);
    return { result, scenario, parseMs, wallMs, cpuMs: (used.user + used.system) / 1000, observeMs, heapMiB: process.memoryUsage().heapUsed / 2 ** 20 };
  } finally {
    Object.defineProperty(SimulatedHosts.prototype, "observe", observe);
  }
}

/** The large scenario's first minute alone, with no timeline: the fleet placed and booted. */
function startUpOnly(): Scenario {
  const [fleet] = largeRackLossYaml().split("timeline:\n");
  return parseScenario("rack-loss-200-hosts-start.yaml", fleet!.replace("duration: 2h", "duration: 1m"));
}

export async function benchSimulate(): Promise<void> {
  const shipped = await timedRun(() => loadScenario(join(REPO, "manifests", "scenarios", "rack-loss-at-peak.yaml")));
  const startUp = await timedRun(startUpOnly);
  const large = await timedRun(() => parseScenario("rack-loss-200-hosts.yaml", largeRackLossYaml()));
  const hosts = (t: Timed) => t.scenario.fleet.filter((o) => o.kind === "Host").length;
  const vms = (t: Timed) => t.result.summary.vms.declared;
  const simulatedS = (t: Timed) => t.scenario.durationMs / 1000;
  const perWallS = (t: Timed) => simulatedS(t) / (t.wallMs / 1000);
  const perHour = (ms: number, simulatedSeconds: number) => `${((ms / 1000) * (3600 / simulatedSeconds)).toFixed(1)} s`;
  const { summary } = large.result;
  const recoveries = summary.recoveries.map((r) => r.seconds).sort((a, b) => a - b);
  const afterStartUp = simulatedS(large) - simulatedS(startUp);

  console.log(`\nsimulate: rack ${LOST_RACK} (${HOSTS_PER_RACK} hosts) lost at the afternoon peak, ${hosts(large)} hosts and ${vms(large).toLocaleString("en")} VMs, ${simulatedS(large) / 3600} h simulated: the real controller against the simulated hosts on the virtual clock, as vireo simulate runs it`);
  console.log(table([
    ["figure", "Vireo", "baseline", "bound"],
    ["simulated s per wall s", perWallS(large).toFixed(1), "1 (the drill in real time)", `≥ ${3600 / AIM_WALL_PER_HOUR_S}: an hour in ${AIM_WALL_PER_HOUR_S} s`],
    ["wall per simulated hour", perHour(large.wallMs, simulatedS(large)), "3,600 s", `< ${AIM_WALL_PER_HOUR_S} s`],
    ["wall / CPU of the whole run", `${(large.wallMs / 1000).toFixed(1)} / ${(large.cpuMs / 1000).toFixed(1)} s`, "", "CPU of this thread; the wall counts the neighbours too"],
    ["  of which the start-up", `${(startUp.wallMs / 1000).toFixed(1)} / ${(startUp.cpuMs / 1000).toFixed(1)} s`, "", `${vms(large).toLocaleString("en")} VMs placed and booted: the first simulated minute, run alone`],
    ["  CPU per simulated hour after it", perHour(large.cpuMs - startUp.cpuMs, afterStartUp), "", ""],
    ["  CPU in the hosts' observations", `${(large.observeMs / 1000).toFixed(1)} s (${((100 * large.observeMs) / large.cpuMs).toFixed(0)} %)`, "", "the controller observes every second"],
    ["reading the scenario", `${large.parseMs.toFixed(0)} ms`, "", ""],
    ["heap after the run", `${large.heapMiB.toFixed(0)} MiB`, "", ""],
    ["timeline records", large.result.timeline.length.toLocaleString("en"), "", ""],
    ["VMs down / back", `${summary.recoveries.length + summary.notRecovered.length} / ${summary.recoveries.length}`, "", "every VM back"],
    ["recovery median / max", recoveries.length === 0 ? "-" : `${recoveries[Math.floor(recoveries.length / 2)]} / ${recoveries.at(-1)} s`, "", ""],
    ["not running at the end / split-brain attempts", `${summary.notRunning.length} / ${summary.splitBrainAttempts}`, "", "0 / 0"],
    ["shipped rack-loss-at-peak: simulated s per wall s", perWallS(shipped).toFixed(0), "1", `${hosts(shipped)} hosts, ${vms(shipped)} VMs, ${simulatedS(shipped) / 3600} h`],
  ]));
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => "  " + r.map((cell, i) => (i === 0 || i === r.length - 1 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("   ").trimEnd()).join("\n");
}
