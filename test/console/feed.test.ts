// The console's server side without a browser: the snapshot, the stream of changes (only what changed,
// numbered, replayed to a browser that reconnects), the VM detail, and a server that is read-only and
// locked down. The store, status writer and event recorder are wired as `vireo run` wires them.

import { test } from "node:test";
import type { TestContext } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import type { VireoObject, VirtualMachine, VirtualMachineStatus } from "../../controller/api/types.ts";
import { keyOf } from "../../controller/api/types.ts";
import type { EventRecorder, StatusWriter } from "../../controller/engine/context.ts";
import { ObjectStore } from "../../controller/sources/store.ts";
import { createConsole, isLoopback, serveWithConsole, type ConsoleParts } from "../../controller/observe/console.ts";
import { EventRing } from "../../controller/observe/console-events.ts";
import { FleetFeed, type FleetChanges, type FleetSnapshot } from "../../controller/observe/console-feed.ts";
import { serveConsole } from "../../controller/observe/http.ts";
import { T0, clusterObject, hostObject, vmObject } from "../support/objects.ts";

const NO_EVENTS: EventRecorder = { record: () => undefined };
const NO_STATUS: StatusWriter = { writeStatus: async () => undefined };

interface Fixture {
  store: ObjectStore;
  parts: ConsoleParts;
  base: string;
  /** Writes status as the engine does: through the status writer, then into the store. */
  writeStatus(object: VireoObject, status: NonNullable<VireoObject["status"]>): Promise<void>;
}

async function fixture(t: TestContext, objects: VireoObject[]): Promise<Fixture> {
  const store = new ObjectStore();
  const parts = createConsole({ store, now: () => T0, mode: "file" });
  for (const object of objects) store.upsert(object);
  const server = await serveConsole("127.0.0.1:0", parts.sources);
  t.after(async () => { parts.close(); await server.close(); });
  const writer = parts.statusWriter(NO_STATUS);
  return {
    store,
    parts,
    base: `http://${server.address}`,
    writeStatus: async (object, status) => {
      await writer.writeStatus(object, status);
      store.setStatus(keyOf(object), status);
    },
  };
}

async function snapshot(base: string): Promise<FleetSnapshot> {
  const res = await fetch(`${base}/api/fleet`);
  assert.equal(res.status, 200);
  return (await res.json()) as FleetSnapshot;
}

/** Reads a server-sent event stream: each event's name, id and parsed data, in order. */
class Stream {
  private buffer = "";
  private readonly events: { event: string; id?: string; data: unknown }[] = [];
  private readonly controller = new AbortController();
  private readonly reading: Promise<void>;

  constructor(url: string, headers: Record<string, string> = {}) {
    this.reading = fetch(url, { headers, signal: this.controller.signal }).then(async (res) => {
      assert.equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
      const decoder = new TextDecoder();
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) this.take(decoder.decode(chunk, { stream: true }));
    }).catch((error: unknown) => { if ((error as Error).name !== "AbortError") throw error; });
  }

  private take(text: string): void {
    this.buffer += text;
    let end: number;
    while ((end = this.buffer.indexOf("\n\n")) >= 0) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      const fields = new Map(block.split("\n").filter((l) => l && !l.startsWith(":")).map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1).trim()]));
      if (!fields.has("data")) continue;
      this.events.push({ event: fields.get("event") ?? "message", ...(fields.has("id") ? { id: fields.get("id")! } : {}), data: JSON.parse(fields.get("data")!) });
    }
  }

  /** The n-th event (from 0), once it has arrived. */
  async nth(n: number, ms = 5_000): Promise<{ event: string; id?: string; data: unknown }> {
    const deadline = Date.now() + ms;
    while (this.events.length <= n) {
      if (Date.now() > deadline) assert.fail(`event ${n} did not arrive within ${ms} ms; got ${JSON.stringify(this.events)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.events[n]!;
  }

  count(): number {
    return this.events.length;
  }

  async close(): Promise<void> {
    this.controller.abort();
    await this.reading;
  }
}

const running = (host: string): VirtualMachineStatus => ({
  phase: "Running",
  host,
  conditions: [{ type: "Ready", status: "True", reason: "Running", message: `running on ${host}`, lastTransitionTime: new Date(T0).toISOString() }],
});

test("the snapshot holds every cluster, host and VM; VMs with the same labels share one label set", async (t) => {
  const f = await fixture(t, [clusterObject(), hostObject("esx-01"), hostObject("esx-02"), vmObject("web-1", { labels: { app: "web" } }), vmObject("web-2", { labels: { app: "web" } }), vmObject("db-1", { labels: { app: "db", tier: "data" } })]);
  const s = await snapshot(f.base);
  assert.deepEqual(s.clusters.map((c) => c.n), ["prod"]);
  assert.deepEqual(s.hosts.map((h) => h.n).sort(), ["esx-01", "esx-02"]);
  assert.deepEqual(s.vmColumns, ["namespace", "name", "phase", "host", "cluster", "labels", "owner", "lab", "flags"]);
  const rows = new Map(s.vms.map((row) => [row[1], row]));
  assert.equal(rows.size, 3);
  assert.equal(rows.get("web-1")![5], rows.get("web-2")![5]);
  assert.deepEqual(s.labelSets[rows.get("web-1")![5]], { app: "web" });
  assert.deepEqual(s.labelSets[rows.get("db-1")![5]], { app: "db", tier: "data" });
  assert.equal(s.labelSets.length, 2);
  const host = s.hosts.find((h) => h.n === "esx-01")!;
  assert.deepEqual(host.cap, [64, 16 * 1024], "vCPUs are cores times the overcommit ratio");
});

test("the stream sends only what changed: a VM's new phase is its row alone, a change the row does not show is a detail change, and a change nothing shows sends nothing", async (t) => {
  const vm = vmObject("web-1");
  const host = hostObject("esx-01");
  const f = await fixture(t, [clusterObject(), host, vm, vmObject("web-2")]);
  const s = await snapshot(f.base);
  const stream = new Stream(`${f.base}/api/stream?epoch=${s.epoch}&since=${s.seq}`);
  t.after(() => stream.close());

  await f.writeStatus(vm, running("esx-01"));
  const first = (await stream.nth(0)).data as FleetChanges;
  assert.equal(first.seq, s.seq + 1);
  assert.deepEqual(first.vms?.map((row) => [row[1], row[2], row[3]]), [["web-1", "Running", "esx-01"]]);
  assert.equal(first.hosts, undefined, "no host changed");
  assert.equal(first.clusters, undefined, "no cluster changed");

  // Used CPU that moves less than the tenth of a core a bar can show is not worth a message...
  await f.writeStatus(host, { phase: "Ready", used: { cpu: 3.71, memoryMiB: 1024 } });
  const second = (await stream.nth(1)).data as FleetChanges;
  assert.deepEqual(second.hosts?.map((h) => h.us), [[3.7, 1024]]);
  await f.writeStatus(host, { phase: "Ready", used: { cpu: 3.72, memoryMiB: 1024 } });
  // ...and the next thing that changes comes next, with the next number: nothing was sent in between.
  const vmLater = f.store.get(keyOf(vm)) as VirtualMachine;
  await f.writeStatus(vmLater, { ...running("esx-01"), networks: [{ name: "prod", macAddress: "02:00:00:00:00:01" }] });
  const third = (await stream.nth(2)).data as FleetChanges;
  assert.equal(third.seq, second.seq + 1);
  assert.equal(third.hosts, undefined);
  assert.equal(third.vms, undefined, "the row did not change");
  assert.deepEqual(third.details, ["default/web-1"], "the detail did");
});

test("an event goes out in the next batch, the VM's detail carries its own events, and a deleted VM is sent by name", async (t) => {
  const vm = vmObject("web-1");
  const f = await fixture(t, [clusterObject(), hostObject("esx-01"), vm, vmObject("web-2")]);
  const s = await snapshot(f.base);
  const stream = new Stream(`${f.base}/api/stream?epoch=${s.epoch}&since=${s.seq}`);
  t.after(() => stream.close());
  const recorder = f.parts.events(NO_EVENTS);
  recorder.record(vm, "Warning", "FailoverRestart", "restarting on host esx-02 (was on esx-01)");
  recorder.record(vmObject("web-2"), "Normal", "Started", "running on host esx-01");

  const batch = (await stream.nth(0)).data as FleetChanges;
  assert.deepEqual(batch.events?.map((e) => [e.y, e.r, e.o]), [["W", "FailoverRestart", "VirtualMachine/default/web-1"], ["N", "Started", "VirtualMachine/default/web-2"]]);

  const detail = (await (await fetch(`${f.base}/api/vms/default/web-1`)).json()) as { vm: { metadata: { name: string } }; events: { r: string }[] };
  assert.equal(detail.vm.metadata.name, "web-1");
  assert.deepEqual(detail.events.map((e) => e.r), ["FailoverRestart"], "only web-1's own events");
  assert.equal((await fetch(`${f.base}/api/vms/default/nope`)).status, 404);

  f.store.delete(keyOf(vm));
  const gone = (await stream.nth(1)).data as FleetChanges;
  assert.deepEqual(gone.deleted, { vms: ["default/web-1"] });
});

test("a browser that reconnects with Last-Event-ID gets the batches it missed; one of another epoch, or one the backlog no longer reaches, is told to reset", async (t) => {
  const store = new ObjectStore();
  const events = new EventRing(10);
  const feed = new FleetFeed({ store, events, now: () => T0, mode: "file", batchMs: 1, backlog: 2 });
  const server = await serveConsole("127.0.0.1:0", { store, events, feed });
  t.after(async () => { feed.close(); await server.close(); });
  const base = `http://${server.address}`;
  const s = await snapshot(base);
  const add = async (name: string, seq: number) => {
    store.upsert(hostObject(name));
    const deadline = Date.now() + 5_000;
    while ((await snapshot(base)).seq < seq) if (Date.now() > deadline) assert.fail(`batch ${seq} was not made`);
  };
  await add("h1", s.seq + 1);
  await add("h2", s.seq + 2);

  const resumed = new Stream(`${base}/api/stream?epoch=${s.epoch}&since=0`, { "last-event-id": String(s.seq + 1) });
  t.after(() => resumed.close());
  const missed = await resumed.nth(0);
  assert.equal(missed.event, "changes");
  assert.equal(missed.id, String(s.seq + 2), "Last-Event-ID wins over since");
  assert.deepEqual((missed.data as FleetChanges).hosts?.map((h) => h.n), ["h2"]);

  const stranger = new Stream(`${base}/api/stream?epoch=another&since=${s.seq}`);
  t.after(() => stranger.close());
  assert.equal((await stranger.nth(0)).event, "reset");

  await add("h3", s.seq + 3);
  const tooOld = new Stream(`${base}/api/stream?epoch=${s.epoch}&since=${s.seq}`);
  t.after(() => tooOld.close());
  assert.equal((await tooOld.nth(0)).event, "reset", "the backlog of 2 no longer holds batch seq+1");
});

test("the server is read-only and locked down: only GET and HEAD, a CSP without inline script, nosniff, vendored modules that import each other locally, no path out of the console", async (t) => {
  const f = await fixture(t, [clusterObject(), hostObject("esx-01")]);
  for (const method of ["POST", "PUT", "PATCH", "DELETE"]) {
    const res = await fetch(`${f.base}/api/fleet`, { method });
    assert.equal(res.status, 405, method);
    assert.equal(res.headers.get("allow"), "GET, HEAD");
  }
  const page = await fetch(`${f.base}/`);
  assert.equal(page.status, 200);
  const csp = page.headers.get("content-security-policy") ?? "";
  assert.match(csp, /(^|; )script-src 'self'(;|$)/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.equal(page.headers.get("x-content-type-options"), "nosniff");
  const html = await page.text();
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, "no inline script in the page");
  assert.doesNotMatch(html, /https?:\/\//, "nothing from elsewhere");

  const hooks = await (await fetch(`${f.base}/vendor/hooks.mjs`)).text();
  assert.match(hooks, /from"\.\/preact\.mjs"/);
  assert.doesNotMatch(hooks, /from\s*"preact"/);
  assert.doesNotMatch(hooks, /sourceMappingURL/);

  for (const path of ["/%2e%2e/package.json", "/vendor/..%2fpackage.json", "/../controller/cli/vireo.ts", "/app.ts"]) {
    const status = await new Promise<number>((resolve, reject) => {
      request(`${f.base}${path}`, (res) => { res.resume(); resolve(res.statusCode ?? 0); }).on("error", reject).end();
    });
    assert.equal(status, 404, path);
  }
});

test("the console is served beside /metrics on a loopback address, on an address of its own when given one, and not at all beside a non-loopback /metrics", async (t) => {
  const store = new ObjectStore();
  const health = { live: () => true, ready: () => true };
  const { Registry } = await import("prom-client");
  const registry = new Registry();

  const beside = await serveWithConsole({ metrics: "127.0.0.1:0", console: "" }, { registry, health }, createConsole({ store, now: () => T0, mode: "file" }));
  t.after(() => beside.close());
  assert.equal(beside.consoleAddress, beside.address);
  assert.equal((await fetch(`http://${beside.address}/`)).status, 200);
  assert.equal((await fetch(`http://${beside.address}/metrics`)).status, 200);

  const apart = await serveWithConsole({ metrics: "127.0.0.1:0", console: "127.0.0.1:0" }, { registry, health }, createConsole({ store, now: () => T0, mode: "file" }));
  t.after(() => apart.close());
  assert.notEqual(apart.consoleAddress, apart.address);
  assert.equal((await fetch(`http://${apart.address}/`)).status, 404, "not beside /metrics");
  assert.equal((await fetch(`http://${apart.address}/metrics`)).status, 200);
  assert.equal((await fetch(`http://${apart.consoleAddress}/`)).status, 200);
  assert.equal((await fetch(`http://${apart.consoleAddress}/metrics`)).status, 404, "the console's server serves the console alone");

  for (const address of ["127.0.0.1:8080", "127.1.2.3:80", "[::1]:8080", "localhost:8080"]) assert.equal(isLoopback(address), true, address);
  for (const address of ["0.0.0.0:8080", ":8080", "10.0.0.5:8080", "[::]:8080"]) assert.equal(isLoopback(address), false, address);
});
