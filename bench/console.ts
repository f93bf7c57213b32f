// Console benchmark (issue 12). A fleet of 1,000 hosts in 10 HA clusters running 20,000 VMs, brought up by
// the whole controller on the simulated hosts (virtual clock), with the console wired into it as `vireo run`
// wires it (createConsole: the store's listeners, the status writer and the event recorder feed it) and
// served by the real console server on loopback. Three figures, each beside a baseline and an aim:
//  1. The first payload: the bytes of /api/fleet, raw and as the browser receives it (gzip), against 2 MB,
//     beside the objects themselves as `vireo get -o json` would send them; and what the server spends on it.
//  2. First paint in headless Chromium: from navigation until the clusters and the VM list are drawn,
//     against 1 s; where the time goes by the page's resource timing, and by a CPU profile of one load.
//  3. A drill: a rack of 50 hosts (1,000 VMs) crashes and the controller fails the VMs over, the virtual
//     clock driven at a fixed multiple of real time; the bytes per second the live stream sends, beside
//     re-sending the whole fleet for every batch of changes (the baseline), and how long the page takes to
//     show what the controller wrote.

import { performance } from "node:perf_hooks";
import { get, type IncomingMessage } from "node:http";
import { cpus, loadavg } from "node:os";
import { createGunzip, gzipSync } from "node:zlib";
import type { Page } from "playwright-core";
import type { Host, VireoObject, VirtualMachine } from "../controller/api/types.ts";
import { keyOf } from "../controller/api/types.ts";
import { VirtualClock, settle } from "../controller/core/clock.ts";
import { Controller } from "../controller/engine/controller.ts";
import type { EventRecorder, StatusWriter } from "../controller/engine/context.ts";
import { createConsole, type ConsoleParts } from "../controller/observe/console.ts";
import type { ConsoleEvent } from "../controller/observe/console-events.ts";
import type { FleetSnapshot } from "../controller/observe/console-feed.ts";
import { LabelSets, hostView, vmRow } from "../controller/observe/console-views.ts";
import { serveConsole } from "../controller/observe/http.ts";
import { silentLogger } from "../controller/observe/log.ts";
import type { ObservabilityServer } from "../controller/observe/http.ts";
import { SimulatedHosts } from "../controller/provider/sim/index.ts";
import { withIdentity } from "../controller/sources/identity.ts";
import { formatManifestError, parseManifestFile } from "../controller/sources/files/manifests.ts";
import { ObjectStore } from "../controller/sources/store.ts";
import { launchBrowser, type Browser } from "../test/support/browser.ts";
import { clusterYaml, hostYaml, vmYaml } from "../test/support/scenario.ts";

// ------------------------------------------------------------ the fleet

const CLUSTERS = 10;
const HOSTS_PER_CLUSTER = 100;
const HOSTS = CLUSTERS * HOSTS_PER_CLUSTER;
const VMS = 20_000;
/** One rack: half of cluster c00's hosts. */
const RACK = Array.from({ length: 50 }, (_, i) => hostName(0, i));
const NAMESPACES = ["shop", "billing", "search", "analytics", "platform"];
/** Each tier's restart priority, and a guest load as real fleets have (steady, office hours, bursts). */
const TIERS: readonly { tier: string; priority: string; workload: string }[] = [
  { tier: "db", priority: "Highest", workload: "{profile: Steady, cpuPercent: 30}" },
  { tier: "app", priority: "Medium", workload: "{profile: Diurnal, cpuPercent: 40}" },
  { tier: "web", priority: "Low", workload: "{profile: Bursty, cpuPercent: 20}" },
];
const OWNERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"];

/** The aims of issue 12. */
const PAYLOAD_AIM_BYTES = 2_000_000;
const PAINT_AIM_MS = 1_000;
/** Simulated time runs this many times faster than the wall while the drill is watched. */
const DRILL_SCALE = 3;
/** The controller is driven in steps of this much simulated time. */
const DRILL_STEP_MS = 250;
/** The fleet, quiet, watched for this long (simulated) before the crash: what the stream sends without a drill. */
const STEADY_MS = 10_000;
/** The feed's batching (controller/observe/console-feed.ts, batchMs): a batch goes out this long after its first change. */
const FEED_BATCH_MS = 100;
/** Loads after the first visit, for a median. */
const LOADS_AGAIN = 3;

function hostName(cluster: number, i: number): string {
  return `c${String(cluster).padStart(2, "0")}-h${String(i).padStart(3, "0")}`;
}

function clusterName(cluster: number): string {
  return `c${String(cluster).padStart(2, "0")}`;
}

function fleetYaml(): string {
  let yaml = "";
  for (let c = 0; c < CLUSTERS; c++) {
    yaml += clusterYaml(clusterName(c), "Spread", "{enabled: true, failureDetectionSeconds: 15}");
    for (let h = 0; h < HOSTS_PER_CLUSTER; h++) {
      yaml += hostYaml(hostName(c, h), { cluster: clusterName(c), rack: `${clusterName(c)}-r${Math.floor(h / 50)}`, cores: 64, memoryMiB: 524_288 });
    }
  }
  for (const ns of NAMESPACES) for (const t of TIERS) yaml += policyYaml(ns, t.tier, t.priority);
  for (let v = 0; v < VMS; v++) {
    const { tier, workload } = TIERS[v % TIERS.length]!;
    const ns = NAMESPACES[Math.floor(v / 3) % NAMESPACES.length]!;
    yaml += vmYaml(`${tier}-${String(v).padStart(5, "0")}`, {
      namespace: ns,
      cluster: clusterName(v % CLUSTERS),
      memoryMiB: 4096 * (1 + (v % 3)),
      labels: { app: `${ns}-${tier}-${v % 20}`, tier, env: v % 7 === 0 ? "staging" : "prod" },
      extra: `  owner: ${OWNERS[v % OWNERS.length]}\n  workload: ${workload}\n`,
    });
  }
  return yaml;
}

function policyYaml(namespace: string, tier: string, priority: string): string {
  return `apiVersion: vireo.dev/v1alpha1
kind: HAPolicy
metadata: {name: ${tier}, namespace: ${namespace}}
spec:
  selector: {matchLabels: {tier: ${tier}}}
  restartPriority: ${priority}
---
`;
}

/** A status write, as the console's status writer passed it on: when (wall) and to what. */
interface StatusWrite {
  wallMs: number;
  key: string;
  status: NonNullable<VireoObject["status"]>;
}

/**
 * The controller, the simulated hosts and the console in one process, wired as `vireo run` wires them in
 * file mode (the state directory's writer aside: nothing here is persisted), on a virtual clock.
 */
class ConsoleFleet {
  readonly clock = new VirtualClock();
  readonly store = new ObjectStore();
  readonly sim = new SimulatedHosts({ clock: this.clock, seed: 12 });
  readonly parts: ConsoleParts;
  readonly controller: Controller;
  /** Every status write while `recording`, in order. */
  readonly writes: StatusWrite[] = [];
  recording = false;
  server: ObservabilityServer | undefined;
  private uids = 0;

  constructor() {
    this.parts = createConsole({ store: this.store, now: () => this.clock.now(), mode: "file" });
    const persisted: StatusWriter = {
      writeStatus: async (object, status) => {
        if (this.recording) this.writes.push({ wallMs: Date.now(), key: keyOf(object as VireoObject), status });
      },
    };
    const logged: EventRecorder = { record: () => undefined };
    this.controller = new Controller({
      store: this.store, provider: this.sim, clock: this.clock, log: silentLogger(),
      statusWriter: this.parts.statusWriter(persisted),
      events: this.parts.events(logged),
    });
  }

  async start(yaml: string): Promise<string> {
    const parsed = parseManifestFile("fleet.yaml", yaml);
    if (!parsed.ok) throw new Error(parsed.errors.map(formatManifestError).join("\n"));
    for (const { object } of parsed.documents) this.store.upsert(withIdentity(object, undefined, this.clock.now(), () => `uid-${++this.uids}`));
    await this.controller.start();
    await this.controller.idle();
    this.server = await serveConsole("127.0.0.1:0", this.parts.sources);
    return `http://${this.server.address}`;
  }

  /** Moves simulated time forward, letting the controller finish its work after every timer (as Scenario does). */
  async advance(ms: number): Promise<void> {
    const target = this.clock.now() + ms;
    await this.controller.idle();
    while (this.clock.fireNext(target)) {
      await settle(1);
      await this.controller.idle();
    }
    await this.clock.advanceTo(target);
    await this.controller.idle();
  }

  /** Advances as fast as the CPU allows until `done`, failing after `limitMs` of simulated time. */
  async until(done: () => boolean, limitMs: number, stepMs: number): Promise<void> {
    const start = this.clock.now();
    while (!done()) {
      if (this.clock.now() - start > limitMs) throw new Error(`not reached within ${limitMs / 1000} s of simulated time`);
      await this.advance(stepMs);
    }
  }

  /**
   * Advances `scale` times faster than the wall, a step at a time, until `done` or `limitMs` of simulated
   * time; between steps the event loop is free, so the console's batches go out as they would in `vireo run
   * --time-scale`. Returns the wall time it took (more than simulated ÷ scale when the controller fell behind).
   */
  async paced(scale: number, limitMs: number, done: () => boolean = () => false): Promise<number> {
    const wallStart = performance.now();
    const simStart = this.clock.now();
    while (!done() && this.clock.now() - simStart < limitMs) {
      await this.advance(DRILL_STEP_MS);
      const due = wallStart + (this.clock.now() - simStart) / scale;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
    return performance.now() - wallStart;
  }

  vms(): VirtualMachine[] {
    return this.store.list("VirtualMachine");
  }

  async stop(): Promise<void> {
    this.parts.close();
    await this.server?.close();
    await this.controller.stop();
    await this.sim.close();
  }
}

function running(vm: VirtualMachine): boolean {
  return vm.status?.phase === "Running" && Boolean(vm.status.host);
}

// ------------------------------------------------------------ 1. the first payload

/** Wall and CPU time of this thread, ms: on a shared machine the wall measures the neighbours too. */
interface Cost {
  wallMs: number;
  cpuMs: number;
}

function timed(run: () => unknown): Cost {
  const cpu = process.threadCpuUsage();
  const start = performance.now();
  run();
  const wallMs = performance.now() - start;
  const used = process.threadCpuUsage(cpu);
  return { wallMs, cpuMs: (used.user + used.system) / 1000 };
}

/** The median cost of `runs` calls. */
function medianCost(runs: number, run: () => unknown): Cost {
  const costs = Array.from({ length: runs }, () => timed(run));
  return { wallMs: median(costs.map((c) => c.wallMs)), cpuMs: median(costs.map((c) => c.cpuMs)) };
}

interface Payload {
  rawBytes: number;
  /** As sent to a browser, which always accepts gzip. */
  wireBytes: number;
  encoding: string;
  /** The objects themselves (the three kinds the console shows), as `vireo get -o json` would send them. */
  objectsBytes: number;
  objectsGzipBytes: number;
  /** How the raw bytes divide: VM rows, host views, cluster views, label sets, events. */
  parts: { name: string; bytes: number; count: number }[];
  /** The server's work for one request, and the parts of snapshot() timed alone. */
  server: { name: string; cost: Cost }[];
}

async function measurePayload(fleet: ConsoleFleet, origin: string): Promise<Payload> {
  const raw = Buffer.from(await (await fetch(`${origin}/api/fleet`, { headers: { "accept-encoding": "identity" } })).arrayBuffer());
  const wire = await rawResponse(`${origin}/api/fleet`, { "accept-encoding": "gzip, deflate, br" });
  const objects = JSON.stringify([...fleet.store.list("HostCluster"), ...fleet.store.list("Host"), ...fleet.vms()]);
  const { feed } = fleet.parts.sources;
  const s = feed.snapshot();
  const text = JSON.stringify(s);
  const size = (value: unknown) => Buffer.byteLength(JSON.stringify(value));
  const vms = fleet.vms();
  return {
    rawBytes: raw.length,
    wireBytes: wire.body.length,
    encoding: String(wire.headers["content-encoding"] ?? "identity"),
    objectsBytes: Buffer.byteLength(objects),
    objectsGzipBytes: gzipSync(objects).length,
    parts: [
      { name: "VM rows", bytes: size(s.vms), count: s.vms.length },
      { name: "host views", bytes: size(s.hosts), count: s.hosts.length },
      { name: "cluster views", bytes: size(s.clusters), count: s.clusters.length },
      { name: "label sets", bytes: size(s.labelSets), count: s.labelSets.length },
      { name: "events", bytes: size(s.events), count: s.events.length },
    ],
    server: [
      { name: "FleetFeed.snapshot() (console-feed.ts)", cost: medianCost(5, () => feed.snapshot()) },
      { name: "  vmRow × 20,000 (console-views.ts)", cost: medianCost(5, () => { const sets = new LabelSets(); for (const vm of vms) vmRow(vm, sets); }) },
      { name: "    of which LabelSets.of", cost: medianCost(5, () => { const sets = new LabelSets(); for (const vm of vms) sets.of(vm.metadata.labels); }) },
      { name: "  hostView × 1,000", cost: medianCost(5, () => fleet.store.list("Host").map(hostView)) },
      { name: "JSON.stringify (replyJson, console-http.ts)", cost: medianCost(5, () => JSON.stringify(s)) },
      { name: "gzip (replyJson: zlib's thread pool, not the event loop)", cost: medianCost(5, () => gzipSync(text)) },
    ],
  };
}

/** A GET whose body is read as it comes off the wire, not decoded. */
function rawResponse(url: string, headers: Record<string, string>): Promise<{ headers: IncomingMessage["headers"]; body: Buffer }> {
  return new Promise((resolve, reject) => {
    get(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    }).on("error", reject);
  });
}

// ------------------------------------------------------------ 2. first paint

interface Paint {
  /** From navigation start (performance.timeOrigin) until the clusters and the VM list are drawn. */
  drawnMs: number;
  /** The page's scripts evaluated (DOMContentLoaded: module scripts run before it). */
  scriptsMs: number;
  /** The script files the page fetched, and when the last of them had arrived. */
  scriptCount: number;
  scriptsFetchedMs: number;
  fleetRequestMs: number;
  fleetFirstByteMs: number;
  fleetLastByteMs: number;
  fleetTransferBytes: number;
  fleetDecodedBytes: number;
  vmRowsDrawn: number;
  tilesDrawn: number;
}

// The page is not this program: what runs in it is given as text, as test/simulate/report.test.ts does.

/** Resolves when every cluster and some VM rows are drawn, with the page's timing of the load. */
const DRAWN_PROBE = `new Promise((resolve) => {
  const check = () => {
    const rows = document.querySelectorAll(".vm-list [role=option]").length;
    if (rows === 0 || document.querySelectorAll("section.cluster").length < ${CLUSTERS}) return requestAnimationFrame(check);
    const drawnMs = performance.now();
    const nav = performance.getEntriesByType("navigation")[0];
    const fleet = performance.getEntriesByType("resource").find((e) => e.name.endsWith("/api/fleet"));
    const scripts = performance.getEntriesByType("resource").filter((e) => e.name.endsWith(".js") || e.name.endsWith(".mjs"));
    resolve({
      scriptCount: scripts.length,
      scriptsFetchedMs: Math.max(0, ...scripts.map((e) => e.responseEnd)),
      drawnMs,
      scriptsMs: nav ? nav.domContentLoadedEventEnd : NaN,
      fleetRequestMs: fleet ? fleet.requestStart : NaN,
      fleetFirstByteMs: fleet ? fleet.responseStart : NaN,
      fleetLastByteMs: fleet ? fleet.responseEnd : NaN,
      fleetTransferBytes: fleet ? fleet.encodedBodySize : NaN,
      fleetDecodedBytes: fleet ? fleet.decodedBodySize : NaN,
      vmRowsDrawn: rows,
      tilesDrawn: document.querySelectorAll("article.tile").length,
    });
  };
  check();
})`;

/** The page's own steps for the first paint, timed alone in the page (median of 3): its model.js on the real snapshot. */
const PAGE_STEPS = `(async () => {
  const { createModel, sortedKeys } = await import("/model.js");
  const text = await (await fetch("/api/fleet")).text();
  const runs = { parse: [], createModel: [], sortedKeys: [] };
  for (let i = 0; i < 3; i++) {
    let t = performance.now();
    const snapshot = JSON.parse(text);
    runs.parse.push(performance.now() - t);
    t = performance.now();
    const model = createModel(snapshot);
    runs.createModel.push(performance.now() - t);
    t = performance.now();
    sortedKeys(model);
    runs.sortedKeys.push(performance.now() - t);
  }
  const median = (xs) => xs.sort((a, b) => a - b)[1];
  return { parse: median(runs.parse), createModel: median(runs.createModel), sortedKeys: median(runs.sortedKeys) };
})()`;

interface PageSteps {
  parse: number;
  createModel: number;
  sortedKeys: number;
}

async function loadOnce(page: Page, origin: string): Promise<Paint> {
  await page.goto(`${origin}/`, { waitUntil: "commit" });
  return (await page.evaluate(DRAWN_PROBE)) as Paint;
}

interface Profiled {
  /** The renderer over one load, ms (Chromium's Performance.getMetrics): its main thread busy (of which script, style, layout), and the CPU time of that thread and of the whole renderer. */
  thread: { task: number; script: number; style: number; layout: number; cpu: number; processCpu: number };
  /** JavaScript self time by script and function, the largest first (V8's sampling profiler). */
  top: { where: string; ms: number }[];
}

/** Two more loads: one under Chromium's metrics (the main thread's busy time), one under V8's CPU profiler. */
async function profileLoad(browser: Browser, origin: string): Promise<Profiled> {
  const page = await browser.newPage();
  try {
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Performance.enable");
    const metrics = async () => new Map((await cdp.send("Performance.getMetrics")).metrics.map((m) => [m.name, m.value]));
    const before = await metrics();
    await loadOnce(page, origin);
    const after = await metrics();
    const delta = (name: string) => ((after.get(name) ?? 0) - (before.get(name) ?? 0)) * 1000;
    await cdp.send("Profiler.enable");
    await cdp.send("Profiler.setSamplingInterval", { interval: 200 });
    await cdp.send("Profiler.start");
    await loadOnce(page, origin);
    const { profile } = await cdp.send("Profiler.stop");
    const byNode = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
    const self = new Map<string, number>();
    const deltas = profile.timeDeltas ?? [];
    (profile.samples ?? []).forEach((id, i) => {
      const frame = byNode.get(id)!;
      const where = frame.url ? `${frame.url.split("/").pop()} ${frame.functionName || "(top level)"}` : frame.functionName;
      self.set(where, (self.get(where) ?? 0) + (deltas[i] ?? 0) / 1000);
    });
    const top = [...self].filter(([where]) => where !== "(idle)").map(([where, ms]) => ({ where, ms })).sort((a, b) => b.ms - a.ms);
    return {
      thread: { task: delta("TaskDuration"), script: delta("ScriptDuration"), style: delta("RecalcStyleDuration"), layout: delta("LayoutDuration"), cpu: delta("ThreadTime"), processCpu: delta("ProcessTime") },
      top: top.slice(0, 8),
    };
  } finally {
    await page.close();
  }
}

// ------------------------------------------------------------ 3. the drill

/**
 * Reads /api/stream as the page's EventSource does — asking for gzip, as a browser does — keeping every
 * chunk as it arrives: the bytes on the wire, and the text they decode to.
 */
class StreamMeter {
  readonly chunks: { wallMs: number; bytes: number; text: string }[] = [];
  private request: ReturnType<typeof get> | undefined;

  open(origin: string, snapshot: Pick<FleetSnapshot, "epoch" | "seq">): Promise<void> {
    return new Promise((resolve, reject) => {
      this.request = get(`${origin}/api/stream?epoch=${snapshot.epoch}&since=${snapshot.seq}`, { headers: { "accept-encoding": "gzip" } }, (res) => {
        const gzipped = res.headers["content-encoding"] === "gzip";
        const gunzip = gzipped ? createGunzip() : undefined;
        // A batch is flushed whole: what a compressed chunk decodes to belongs to that chunk.
        gunzip?.on("data", (text: Buffer) => { const last = this.chunks.at(-1); if (last) last.text += text.toString("utf8"); });
        res.on("data", (chunk: Buffer) => {
          this.chunks.push({ wallMs: Date.now(), bytes: chunk.length, text: gzipped ? "" : chunk.toString("utf8") });
          gunzip?.write(chunk);
        });
        resolve();
      });
      this.request.on("error", reject);
    });
  }

  /** Where the stream is now: what arrives from here on is after the mark. */
  mark(): number {
    return this.chunks.length;
  }

  /** What arrived since `mark`: bytes, the text, and the batches (each `changes` event's data). */
  since(mark: number): { bytes: number; text: string; batches: string[] } {
    const inside = this.chunks.slice(mark);
    const text = inside.map((c) => c.text).join("");
    const batches = text.split("\n\n").filter((e) => /^event: changes$/m.test(e)).map((e) => e.split("\n").find((l) => l.startsWith("data: "))!.slice(6));
    return { bytes: inside.reduce((n, c) => n + c.bytes, 0), text, batches };
  }

  close(): void {
    this.request?.destroy();
  }
}


/**
 * In the page: records every change of the header's summary ("1000 hosts (50 not ready) · 18989/20000 VMs
 * running"), and when each batch reaches the browser, on an EventSource of its own beside the page's.
 */
function watchPage(from: Pick<FleetSnapshot, "epoch" | "seq">): string {
  return `(() => {
  window.summaries = [];
  window.arrivals = [];
  const summary = document.querySelector('[data-role="summary"]');
  const note = () => window.summaries.push([Date.now(), summary.textContent || ""]);
  note();
  new MutationObserver(note).observe(summary, { subtree: true, childList: true, characterData: true });
  const stream = new EventSource("/api/stream?epoch=" + ${JSON.stringify(from.epoch)} + "&since=" + ${from.seq});
  stream.addEventListener("changes", () => window.arrivals.push(Date.now()));
  return new Promise((resolve) => stream.addEventListener("open", () => resolve(true)));
})()`;
}

/** The summary as the page drew it, or as the store had it after a status write: wall time, hosts not ready, VMs running. */
interface Tally {
  wallMs: number;
  notReady: number;
  running: number;
}

async function pageTallies(page: Page): Promise<Tally[]> {
  const raw = (await page.evaluate("window.summaries")) as [number, string][];
  return raw.map(([wallMs, text]) => ({
    wallMs,
    notReady: Number(/\((\d+) not ready\)/.exec(text)?.[1] ?? 0),
    running: Number(/(\d+)\/\d+ VMs? running/.exec(text)?.[1] ?? Number.NaN),
  }));
}

/** The same counts as the page's header (console/app.js Header), after each status write in turn. */
function storeTallies(writes: readonly StatusWrite[], before: { hostsDown: Map<string, boolean>; vmsUp: Map<string, boolean> }): Tally[] {
  const hostsDown = new Map(before.hostsDown);
  const vmsUp = new Map(before.vmsUp);
  let notReady = [...hostsDown.values()].filter(Boolean).length;
  let up = [...vmsUp.values()].filter(Boolean).length;
  const out: Tally[] = [];
  for (const w of writes) {
    if (w.key.startsWith("Host/")) {
      const phase = (w.status as NonNullable<Host["status"]>).phase;
      const down = phase !== "Ready" && phase !== "Maintenance";
      if (down !== hostsDown.get(w.key)) notReady += down ? 1 : -1;
      hostsDown.set(w.key, down);
    } else if (w.key.startsWith("VirtualMachine/")) {
      const s = w.status as NonNullable<VirtualMachine["status"]>;
      const isUp = s.phase === "Running" && Boolean(s.host);
      if (isUp !== vmsUp.get(w.key)) up += isUp ? 1 : -1;
      vmsUp.set(w.key, isUp);
    }
    out.push({ wallMs: w.wallMs, notReady, running: up });
  }
  return out;
}

/** A milestone: the controller's write, its batch in the browser (an EventSource beside the page's), the page drawing it (wall ms). */
interface Milestone {
  written: number;
  onWire: number;
  shown: number;
}

interface Window {
  simulatedMs: number;
  wallMs: number;
  /** CPU time of this thread (controller, simulated hosts, console server) over the window. */
  cpuMs: number;
  /** The longest stretch the event loop was held, in this thread's CPU and in wall ms: no batch leaves meanwhile. */
  loopHeld: Cost;
  bytes: number;
  batches: number;
  largestBatchBytes: number;
  /** The same stream's text, uncompressed. */
  rawBytes: number;
  /** Bytes of each field over the window's batches, and how many items. */
  fields: Map<string, { bytes: number; count: number }>;
  /** Bytes of the events sent, by reason. */
  eventReasons: Map<string, { bytes: number; count: number }>;
}

interface Drill {
  steady: Window;
  drill: Window;
  /** The whole fleet as the baseline would send it for every batch: raw and as the browser receives it. */
  snapshotBytes: number;
  snapshotWireBytes: number;
  rackDown: Milestone;
  recovered: Milestone;
  vmsMoved: number;
  writes: number;
}

/** Watches the event loop with a 10 ms tick; the returned function stops it and says the longest stretch between ticks, by CPU. */
function watchLoop(): () => Cost {
  const cpuNow = () => { const u = process.threadCpuUsage(); return (u.user + u.system) / 1000; };
  let last = { wall: performance.now(), cpu: cpuNow() };
  let longest: Cost = { wallMs: 0, cpuMs: 0 };
  const tick = setInterval(() => {
    const now = { wall: performance.now(), cpu: cpuNow() };
    if (now.cpu - last.cpu > longest.cpuMs) longest = { wallMs: now.wall - last.wall, cpuMs: now.cpu - last.cpu };
    last = now;
  }, 10);
  return () => {
    clearInterval(tick);
    return longest;
  };
}

/** Drives the fleet at DRILL_SCALE for `simulatedMs` or until `done`, then waits for `delivered` (the page has it all). */
async function watchWindow(fleet: ConsoleFleet, meter: StreamMeter, until: { simulatedMs: number; done?: () => boolean; delivered?: () => Promise<boolean> }): Promise<Window> {
  const { simulatedMs, done, delivered } = until;
  const mark = meter.mark();
  const fromSim = fleet.clock.now();
  const loopHeld = watchLoop();
  const cpu = process.threadCpuUsage();
  const wallMs = await fleet.paced(DRILL_SCALE, simulatedMs, done);
  const used = process.threadCpuUsage(cpu);
  const simulated = fleet.clock.now() - fromSim;
  const deadline = Date.now() + 30_000;
  while (delivered && !(await delivered())) {
    if (Date.now() > deadline) throw new Error("the page did not show the drill's end within 30 s");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  // The last batch goes out a batch interval after its first change, and the reader here may be behind the browser.
  await new Promise((resolve) => setTimeout(resolve, 3 * FEED_BATCH_MS));
  return { ...(await streamWindow(meter.since(mark))), simulatedMs: simulated, wallMs, cpuMs: (used.user + used.system) / 1000, loopHeld: loopHeld() };
}

async function streamWindow(stream: { bytes: number; text: string; batches: string[] }): Promise<Omit<Window, "simulatedMs" | "wallMs" | "cpuMs" | "loopHeld">> {
  const fields = new Map<string, { bytes: number; count: number }>();
  const eventReasons = new Map<string, { bytes: number; count: number }>();
  const add = (into: Map<string, { bytes: number; count: number }>, name: string, bytes: number, count: number) => {
    const entry = into.get(name) ?? { bytes: 0, count: 0 };
    entry.bytes += bytes;
    entry.count += count;
    into.set(name, entry);
  };
  for (const data of stream.batches) {
    const batch = JSON.parse(data) as Record<string, unknown>;
    for (const [name, value] of Object.entries(batch)) add(fields, name, Buffer.byteLength(JSON.stringify(value)) + name.length + 4, Array.isArray(value) ? value.length : 1);
    for (const event of (batch["events"] ?? []) as ConsoleEvent[]) add(eventReasons, event.r, Buffer.byteLength(JSON.stringify(event)) + 1, 1);
  }
  return {
    bytes: stream.bytes,
    batches: stream.batches.length,
    largestBatchBytes: Math.max(0, ...stream.batches.map((b) => Buffer.byteLength(b))),
    rawBytes: Buffer.byteLength(stream.text),
    fields,
    eventReasons,
  };
}

async function runDrill(fleet: ConsoleFleet, origin: string, page: Page, snapshot: { raw: number; wire: number }): Promise<Drill> {
  const first = (await (await fetch(`${origin}/api/fleet`)).json()) as FleetSnapshot;
  const meter = new StreamMeter();
  await meter.open(origin, first);
  await page.evaluate(watchPage(first));
  const rack = new Set(RACK);
  const vmsMoved = fleet.vms().filter((vm) => rack.has(vm.status?.host ?? "")).length;
  const total = fleet.vms().length;
  try {
    // The fleet with nothing happening but its guests' load, first: what the stream sends on a quiet day.
    const steady = await watchWindow(fleet, meter, { simulatedMs: STEADY_MS });
    fleet.writes.length = 0;
    fleet.recording = true;
    const before = {
      hostsDown: new Map(fleet.store.list("Host").map((h) => [keyOf(h), h.status?.phase !== "Ready" && h.status?.phase !== "Maintenance"])),
      vmsUp: new Map(fleet.vms().map((vm) => [keyOf(vm), running(vm)])),
    };
    const crashedAt = Date.now();
    for (const host of RACK) await fleet.sim.crashHost(host);
    const recovered = () => fleet.vms().every((vm) => running(vm) && !rack.has(vm.status!.host!));
    const shown = async () => (await pageTallies(page)).some((t) => t.wallMs >= crashedAt && t.running === total && t.notReady === RACK.length);
    const drill = await watchWindow(fleet, meter, { simulatedMs: 600_000, done: recovered, delivered: shown });
    fleet.recording = false;
    if (!recovered()) throw new Error("the rack's VMs did not all run elsewhere within 10 simulated minutes");
    const store = storeTallies(fleet.writes, before);
    const seen = (await pageTallies(page)).filter((t) => t.wallMs >= crashedAt);
    const arrivals = (await page.evaluate("window.arrivals")) as number[];
    const milestone = (reached: (t: Tally) => boolean): Milestone => {
      const written = store.find(reached)!.wallMs;
      return { written, onWire: arrivals.find((t) => t >= written) ?? Number.NaN, shown: seen.find((t) => t.wallMs >= written && reached(t))!.wallMs };
    };
    const lowest = Math.min(...store.map((t) => t.running));
    const afterLowest = store.slice(store.findIndex((t) => t.running === lowest));
    const recoveredAt = afterLowest.find((t) => t.running === total)!.wallMs;
    return {
      steady,
      drill,
      snapshotBytes: snapshot.raw,
      snapshotWireBytes: snapshot.wire,
      rackDown: milestone((t) => t.notReady >= RACK.length),
      recovered: milestone((t) => t.running === total && t.wallMs >= recoveredAt),
      vmsMoved,
      writes: fleet.writes.length,
    };
  } finally {
    fleet.recording = false;
    meter.close();
  }
}

// ------------------------------------------------------------ the run

export async function benchConsole(): Promise<void> {
  const start = timedStart();
  const loadAtStart = loadavg()[0]!;
  const fleet = new ConsoleFleet();
  const startedAt = fleet.clock.now();
  let browser: Browser | undefined;
  try {
    const origin = await fleet.start(fleetYaml());
    await fleet.until(() => fleet.vms().every(running), 600_000, 5_000);
    // A little past the last boot, so the clusters' failover capacity and balance are computed.
    await fleet.advance(5_000);
    const up = { ...start.elapsed(), simulatedMs: fleet.clock.now() - startedAt };

    const payload = await measurePayload(fleet, origin);
    browser = await launchBrowser({ allowedOrigins: [origin] });
    const page = await browser.newPage();
    // The browser already running, as a person's is: the origin's renderer started on a file that is not the page.
    await page.goto(`${origin}/favicon.svg`);
    const first = await loadOnce(page, origin);
    const again: Paint[] = [];
    for (let i = 0; i < LOADS_AGAIN; i++) again.push(await loadOnce(page, origin));
    const steps = (await page.evaluate(PAGE_STEPS)) as PageSteps;
    const profiled = await profileLoad(browser, origin);
    // The same page, loaded last, watches the drill live.
    await loadOnce(page, origin);
    await page.locator('[data-role="connection"]', { hasText: "live" }).waitFor({ timeout: 30_000 });
    const drill = await runDrill(fleet, origin, page, { raw: payload.rawBytes, wire: payload.wireBytes });
    print({ payload, first, again, steps, profiled, drill, up, total: start.elapsed(), errors: browser.pageErrors(), loadAverage: [loadAtStart, loadavg()[0]!] });
  } finally {
    await browser?.close();
    await fleet.stop();
  }
}

function timedStart(): { elapsed: () => Cost } {
  const cpu = process.cpuUsage();
  const wall = performance.now();
  return {
    elapsed: () => {
      const used = process.cpuUsage(cpu);
      return { wallMs: performance.now() - wall, cpuMs: (used.user + used.system) / 1000 };
    },
  };
}

// ------------------------------------------------------------ printing

interface Results {
  payload: Payload;
  first: Paint;
  again: Paint[];
  steps: PageSteps;
  profiled: Profiled;
  drill: Drill;
  up: Cost & { simulatedMs: number };
  total: Cost;
  errors: string[];
  /** The machine's 1-minute load average at the start and the end. */
  loadAverage: number[];
}

function print(r: Results): void {
  console.log(`\nconsole (load average ${r.loadAverage.map((l) => l.toFixed(1)).join(" → ")} on ${cpus().length} cores: wall figures grow with it, CPU figures do not): ${HOSTS.toLocaleString("en")} hosts in ${CLUSTERS} HA clusters of ${HOSTS_PER_CLUSTER}, ${VMS.toLocaleString("en")} VMs (${NAMESPACES.length} namespaces, steady, diurnal and bursty guests) brought up by the whole controller on the simulated hosts; the console wired as \`vireo run\` wires it, its own server on loopback; Debian's Chromium, headless`);
  printPayload(r.payload);
  printPaint(r);
  printDrill(r.drill);
  console.log(`  fleet up in ${fmtS(r.up.wallMs)} (CPU ${fmtS(r.up.cpuMs)}, simulated ${fmtS(r.up.simulatedMs)}); the whole benchmark ${fmtS(r.total.wallMs)} (this process's CPU ${fmtS(r.total.cpuMs)}); page errors: ${r.errors.length === 0 ? "none" : r.errors.join("; ")}`);
}

function printPayload(p: Payload): void {
  console.log("  1. the first payload: GET /api/fleet");
  console.log(table([
    ["", "console snapshot", "baseline: the objects as JSON", "aim"],
    ["bytes the browser receives", `${mb(p.wireBytes)} (${p.encoding})`, `${mb(p.objectsGzipBytes)} (gzip)`, `< ${mb(PAYLOAD_AIM_BYTES)} ${met(p.wireBytes < PAYLOAD_AIM_BYTES)}`],
    ["  uncompressed", mb(p.rawBytes), mb(p.objectsBytes), "what JSON.parse reads in the page"],
    ...p.parts.map((part) => [`  ${part.name} (${part.count.toLocaleString("en")})`, `${mb(part.bytes)} (${Math.round((100 * part.bytes) / p.rawBytes)} %)`, "", part.name === "VM rows" ? `${Math.round(part.bytes / part.count)} B a VM` : ""]),
  ]));
  console.log(table([
    ["the server's work for one /api/fleet", "wall", "CPU"],
    ...p.server.map((s) => [s.name, ms(s.cost.wallMs), ms(s.cost.cpuMs)]),
  ]));
}

function printPaint(r: Results): void {
  const { first } = r;
  const again = (pick: (x: Paint) => number) => median(r.again.map(pick));
  console.log("  2. first paint: navigation → every cluster and the VM list drawn (performance.now() in the page)");
  console.log(table([
    ["", "first visit", `again (median of ${r.again.length})`, "aim"],
    ["clusters and VM list drawn", ms(first.drawnMs), ms(again((x) => x.drawnMs)), `< ${ms(PAINT_AIM_MS)}: first ${met(first.drawnMs < PAINT_AIM_MS)}, again ${met(again((x) => x.drawnMs) < PAINT_AIM_MS)}`],
    [`  ${first.scriptCount} scripts fetched, the last at`, ms(first.scriptsFetchedMs), ms(again((x) => x.scriptsFetchedMs)), "app.js, its modules, then theirs (Preact, hooks, htm): a waterfall, each fetched anew (no-cache, no validator)"],
    ["  scripts run (DOMContentLoaded) at", ms(first.scriptsMs), ms(again((x) => x.scriptsMs)), ""],
    ["  /api/fleet asked at", ms(first.fleetRequestMs), ms(again((x) => x.fleetRequestMs)), "by app.js's first effect, after its first render"],
    ["  /api/fleet first byte at", ms(first.fleetFirstByteMs), ms(again((x) => x.fleetFirstByteMs)), "the server's snapshot, JSON and gzip in between (table above)"],
    ["  /api/fleet last byte at", ms(first.fleetLastByteMs), ms(again((x) => x.fleetLastByteMs)), `${mb(first.fleetTransferBytes)} on the wire, ${mb(first.fleetDecodedBytes)} decoded`],
    ["  last byte → drawn", ms(first.drawnMs - first.fleetLastByteMs), ms(again((x) => x.drawnMs - x.fleetLastByteMs)), `in it, timed alone: JSON.parse ${ms(r.steps.parse)}, createModel ${ms(r.steps.createModel)}, sortedKeys ${ms(r.steps.sortedKeys)} (model.js)`],
    ["rows / tiles drawn", `${first.vmRowsDrawn} / ${first.tilesDrawn}`, "", `of ${VMS.toLocaleString("en")} VMs / ${HOSTS.toLocaleString("en")} hosts: only what is in view`],
  ]));
  const t = r.profiled.thread;
  const serverCpu = r.payload.server.filter((s) => !s.name.startsWith(" ")).reduce((n, s) => n + s.cost.cpuMs, 0);
  console.log(table([
    ["the work in a load, apart from waiting", "", ""],
    ["  the server's CPU for /api/fleet", ms(serverCpu), "snapshot, JSON, gzip (table above)"],
    ["  the page's main thread, CPU", ms(t.cpu), `one more load (Chromium's Performance.getMetrics); the whole renderer ${ms(t.processCpu)} CPU`],
    ["  the page's main thread, busy (wall)", ms(t.task), `of which script ${ms(t.script)}, style ${ms(t.style)}, layout ${ms(t.layout)}; the rest parsing, compiling, loading`],
    ["  sum of the CPU above", ms(serverCpu + t.cpu), `against the aim of ${ms(PAINT_AIM_MS)}: what a load costs on a machine to itself, network aside`],
  ]));
  console.log("  one more load under V8's sampling profiler, the page's JavaScript by self time ((program) is the browser's own work):");
  console.log(table([["script and function", "self"], ...r.profiled.top.map((x) => [x.where, ms(x.ms)])]));
}

function printDrill(d: Drill): void {
  const rate = (bytes: number, w: Window) => `${kb(bytes / (w.simulatedMs / 1000))}/s`;
  const baseline = (w: Window) => `${rate(w.batches * d.snapshotWireBytes, w)} (${rate(w.batches * d.snapshotBytes, w)} raw)`;
  const versus = (w: Window) => (w.bytes > 0 ? `${(w.batches * d.snapshotWireBytes / w.bytes).toFixed(1)}× / ${(w.batches * d.snapshotBytes / w.bytes).toFixed(1)}×` : "");
  const field = (name: string) => d.drill.fields.get(name) ?? { bytes: 0, count: 0 };
  const share = (name: string) => `${kb(field(name).bytes)} (${Math.round((100 * field(name).bytes) / d.drill.rawBytes)} % of the uncompressed stream)`;
  const lag = (m: Milestone) => `${ms(m.shown - m.written)}`;
  const split = (m: Milestone) => `write → batch in the browser ${ms(m.onWire - m.written)}, → drawn ${ms(m.shown - m.onWire)}`;
  console.log(`  3. a drill: rack ${clusterName(0)}-r0 (${RACK.length} hosts, ${d.vmsMoved.toLocaleString("en")} VMs) crashes; simulated time driven at ${DRILL_SCALE}× the wall; the stream read as the page's EventSource reads it`);
  console.log(table([
    ["per simulated second", "live stream (as sent)", "baseline: the whole fleet per batch (gzip)", "baseline ÷ stream: gzip / raw"],
    [`quiet fleet, ${fmtS(d.steady.simulatedMs)} before the crash`, rate(d.steady.bytes, d.steady), baseline(d.steady), d.steady.batches === 0 ? "no batch: the guests' load alone wakes no host reconcile (engine/observer.ts hostChanged)" : versus(d.steady)],
    [`drill: crash → ${d.vmsMoved.toLocaleString("en")} VMs running elsewhere, ${fmtS(d.drill.simulatedMs)}`, rate(d.drill.bytes, d.drill), baseline(d.drill), versus(d.drill)],
    ["  the whole drill", kb(d.drill.bytes), `${mb(d.drill.batches * d.snapshotWireBytes)} (${mb(d.drill.batches * d.snapshotBytes)} raw)`, `${d.drill.batches} batches, the largest ${kb(d.drill.largestBatchBytes)}`],
    ["  the same stream uncompressed", rate(d.drill.rawBytes, d.drill), "", `${kb(d.drill.rawBytes)}: the stream is gzipped (one window, flushed whole per batch) for a browser that accepts it`],
    [`  of it: VM rows (${field("vms").count.toLocaleString("en")})`, share("vms"), "", `${d.writes.toLocaleString("en")} status writes in the drill`],
    [`          events (${field("events").count.toLocaleString("en")})`, share("events"), "", `by reason: ${[...d.drill.eventReasons].sort(([, a], [, b]) => b.bytes - a.bytes).slice(0, 4).map(([reason, e]) => `${reason} ${e.count.toLocaleString("en")} (${kb(e.bytes)})`).join(", ")}`],
    [`          host views (${field("hosts").count.toLocaleString("en")})`, share("hosts"), "", ""],
    [`          cluster views, details, label sets`, kb(field("clusters").bytes + field("details").bytes + field("labelSets").bytes), "", ""],
    ["page: the rack's 50th host down, written → drawn", lag(d.rackDown), "", split(d.rackDown)],
    ["page: the last VM Running, written → all drawn", lag(d.recovered), "", split(d.recovered)],
    ["  the event loop held at most, CPU (wall)", `${ms(d.drill.loopHeld.cpuMs)} (${ms(d.drill.loopHeld.wallMs)})`, "", "by the controller's reconciles, on the thread the console's feed and server share: no batch leaves meanwhile"],
    ["drill wall / simulated / CPU of this thread", `${fmtS(d.drill.wallMs)} / ${fmtS(d.drill.simulatedMs)} / ${fmtS(d.drill.cpuMs)}`, "", `${(d.drill.simulatedMs / d.drill.wallMs).toFixed(1)}× real time achieved; the controller, the page and the neighbours share the CPU`],
  ]));
}

function met(ok: boolean): string {
  return ok ? "(met)" : "(MISSED)";
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

function ms(value: number): string {
  return `${Math.round(value).toLocaleString("en")} ms`;
}

function fmtS(value: number): string {
  return `${(value / 1000).toFixed(1)} s`;
}

function mb(bytes: number): string {
  return `${(bytes / 1_000_000).toFixed(2)} MB`;
}

function kb(bytes: number): string {
  return `${(bytes / 1000).toFixed(1)} kB`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => "  " + r.map((cell, i) => (i === 0 || i === r.length - 1 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("   ").trimEnd()).join("\n");
}
