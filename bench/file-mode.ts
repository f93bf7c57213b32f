// The file mode at 20,000 VMs on 1,000 hosts: `vireo run --manifests DIR` started on a fresh state directory
// with the fleet already in the directory (the cluster benchmark's shapes, in the default namespace). Prints the
// time from its start until the state directory shows every VM Running, the bytes it wrote to disk per VM
// beside the least it could (the final state, written once), and how long `vireo get vms` takes on that state.

import { mkdirSync, statSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { readSnapshot } from "../controller/state/state-dir.ts";
import { VireoProcess, tempDir, vireoCommand } from "../test/support/process.ts";
import { hostsYaml, vmsYaml, type ClusterSize } from "./cluster-fleet.ts";
import { TIME_SCALE } from "./cluster-vireo.ts";
import { parseSamples, processUsage, sum, table } from "./kube-api.ts";

const SIZE: Readonly<ClusterSize> = { hosts: 1_000, vms: 20_000 };
const FILES = 20;
const GET_RUNS = 3;

export interface FileModeFigures {
  runningSeconds: number;
  bytesWritten: number;
  /** The state directory's files once every VM is Running. */
  stateBytes: number;
  getSeconds: number[];
  cpuSeconds: number;
  peakResidentMiB: number;
}

export async function benchFileMode(): Promise<void> {
  const load = loadavg()[0]!;
  const f = await measureFileMode(SIZE);
  console.log(`\nfile mode: ${SIZE.vms.toLocaleString("en")} VMs on ${SIZE.hosts.toLocaleString("en")} hosts in ${FILES + 1} manifest files, vireo run --manifests --time-scale ${TIME_SCALE} on a fresh state directory, Node's default flags (${cpus().length} cores, load average ${load.toFixed(1)} when it began)`);
  console.log(table([
    ["", "Vireo", "bound"],
    ["every VM Running in the state directory after (s)", f.runningSeconds.toFixed(1), ""],
    ["bytes written to disk per VM, all of it the state directory (KiB)", (f.bytesWritten / SIZE.vms / 1024).toFixed(1), `≥ ${(f.stateBytes / SIZE.vms / 1024).toFixed(1)} (the final state, once)`],
    ["  the state directory's files at the end (MiB)", (f.stateBytes / 2 ** 20).toFixed(1), ""],
    [`vireo get vms on that state, first of ${GET_RUNS} (s)`, f.getSeconds[0]!.toFixed(2), ""],
    [`  median of ${GET_RUNS} (s)`, median(f.getSeconds).toFixed(2), ""],
    ["controller CPU until every VM Running (s)", f.cpuSeconds.toFixed(1), ""],
    ["controller peak resident memory (MiB)", f.peakResidentMiB.toFixed(0), ""],
  ]));
}

export async function measureFileMode(size: Readonly<ClusterSize>): Promise<FileModeFigures> {
  const dir = tempDir("bench-file-mode");
  const manifests = join(dir.path, "manifests");
  const state = join(dir.path, "state");
  mkdirSync(manifests);
  writeFileSync(join(manifests, "fleet.yaml"), hostsYaml(size));
  vmsYaml(size, FILES, undefined).forEach((stream, i) => writeFileSync(join(manifests, `vms-${String(i).padStart(2, "0")}.yaml`), stream));
  let vireo: VireoProcess | undefined;
  try {
    const started = performance.now();
    vireo = new VireoProcess(["run", "--manifests", manifests, "--state-dir", state, "--metrics-addr", "127.0.0.1:0", "--time-scale", String(TIME_SCALE)]);
    const metricsAt = (await vireo.waitForLog(/metrics on http:\/\/([^/\s"]+)\/metrics/))[1]!;
    await until(vireo, async () => sum(parseSamples(await (await fetch(`http://${metricsAt}/metrics`)).text()), "vireo_vms", { phase: "Running" }) === size.vms, 250);
    // The store has them all Running; the state directory follows with its next save.
    await until(vireo, () => Promise.resolve(runningInState(state) === size.vms), 100);
    const runningAt = performance.now();
    const usage = processUsage(vireo.child.pid!);
    const stateBytes = statSync(join(state, "objects.json")).size + statSync(join(state, "world.json")).size;
    const gets = await timeGets(state, size.vms);
    return { runningSeconds: (runningAt - started) / 1000, bytesWritten: usage.bytesWritten, stateBytes, getSeconds: gets, cpuSeconds: usage.cpuSeconds, peakResidentMiB: usage.peakResidentMiB };
  } finally {
    await vireo?.stop();
    dir.remove();
  }
}

/** VMs Running in the state directory's last save; a save being renamed into place reads as none. */
function runningInState(state: string): number {
  const snapshot = readSnapshot(join(state, "objects.json"));
  return snapshot?.objects.filter(({ object }) => object.kind === "VirtualMachine" && (object.status as { phase?: string } | undefined)?.phase === "Running").length ?? 0;
}

/** `vireo get vms` as a user runs it while the controller runs, each printing the whole table. */
async function timeGets(state: string, vms: number): Promise<number[]> {
  const seconds: number[] = [];
  for (let i = 0; i < GET_RUNS; i++) {
    const started = performance.now();
    const r = await vireoCommand(["get", "vms", "--state-dir", state]);
    seconds.push((performance.now() - started) / 1000);
    const rows = r.stdout.split("\n").filter((l) => l.trim() !== "").length;
    if (r.code !== 0 || rows !== vms + 1) throw new Error(`vireo get vms: exit ${r.code}, ${rows} lines: ${r.stderr}`);
  }
  return seconds;
}

function median(values: readonly number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
}

/** Polls `check` every `everyMs` until it holds; fails when the controller exits or after an hour. */
async function until(vireo: VireoProcess, check: () => Promise<boolean>, everyMs: number): Promise<void> {
  const deadline = performance.now() + 3_600_000;
  while (!(await check())) {
    if (vireo.child.exitCode !== null || vireo.child.signalCode !== null) throw new Error(`vireo exited:\n${vireo.logs().slice(-4000)}`);
    if (performance.now() > deadline) throw new Error("not every VM Running within an hour");
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
