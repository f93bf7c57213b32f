// The hostsim HTTP server in-process, over a simulator on the virtual clock: the HTTP client sees exactly
// what the simulator says, refusals keep their codes, and the plumbing (auth, bodies, routes) holds.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { TestContext } from "node:test";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { VirtualClock } from "../../../controller/core/clock.ts";
import { silentLogger } from "../../../controller/observe/log.ts";
import { HostsimAuthError, HttpProvider } from "../../../controller/provider/http/client.ts";
import { HostsimConfigError, HostsimServer } from "../../../controller/provider/http/server.ts";
import { SimulatedHosts } from "../../../controller/provider/sim/index.ts";
import { ProviderError } from "../../../controller/provider/provider.ts";
import { hostConfig, refusal, serveInProcess, TOKEN, vmConfig } from "./hostsim-support.ts";

async function serve(t: TestContext, options: { token?: string; insecureNoAuth?: boolean } = { token: TOKEN }) {
  return serveInProcess(t, options);
}

/** A request as any HTTP client would send it; `token: null` sends no Authorization header. */
function raw(url: string, path: string, init: RequestInit = {}, token: string | null = TOKEN): Promise<Response> {
  const headers = new Headers(init.headers);
  if (token !== null) headers.set("authorization", `Bearer ${token}`);
  return fetch(`${url}${path}`, { ...init, headers });
}

describe("hostsim server, in-process", () => {
  it("gives the client the same observation and VM reports as the simulator itself", async (t) => {
    const { clock, sim, client } = await serve(t);
    await client.registerHost("h1", hostConfig());
    const started = await client.startVm("shop/db-1", "h1", vmConfig());
    assert.deepEqual(started, sim.observeVm("shop/db-1"));
    await clock.advance(sim.timings.bootMs);
    assert.deepEqual(await client.observe(), await sim.observe());
    assert.equal((await client.observe()).vms[0]!.power, "Running");
  });

  it("maps every refusal of the simulator to a ProviderError with the same code", async (t) => {
    const { client } = await serve(t);
    await client.registerHost("h1", hostConfig());
    await client.registerHost("h2", hostConfig({ datastores: ["local-h2"] }));
    await client.registerHost("small", hostConfig({ memoryMiB: 2048 }));
    assert.equal(await refusal(client.startVm("ns/a", "nowhere", vmConfig())), "NotFound");
    assert.equal(await refusal(client.startVm("ns/a", "h2", vmConfig())), "Invalid");
    assert.equal(await refusal(client.startVm("ns/a", "small", vmConfig())), "InsufficientResources");
    await client.startVm("ns/a", "h1", vmConfig());
    assert.equal(await refusal(client.unregisterHost("h1")), "Conflict");
    await client.isolateHost("h1");
    assert.equal(await refusal(client.startVm("ns/a", "small", vmConfig({ memoryMiB: 1024 }))), "LockHeld");
    assert.equal(await refusal(client.stopVm("ns/a", "PowerOff")), "Unavailable");
    assert.equal(await refusal(client.setStoragePathsUp("h2", 7)), "Invalid");
    assert.equal((await client.observe()).splitBrainAttempts, 1);
  });

  it("drives every out-of-band fault of the simulator through the client", async (t) => {
    const { clock, sim, client } = await serve(t);
    const host = async (name: string) => (await client.groundTruth()).hosts.find((h) => h.name === name)!;
    const power = async (id: string) => (await client.groundTruth()).vms.find((v) => v.id === id)?.power;
    await client.registerHost("h1", hostConfig());
    await client.registerHost("h2", hostConfig());
    await client.startVm("ns/a", "h1", vmConfig());
    await client.startVm("ns/b", "h2", vmConfig({ nics: [{ network: "prod", macAddress: "52:54:00:00:00:02" }], disks: [] }));
    await clock.advance(sim.timings.bootMs);

    await client.isolateHost("h1");
    assert.equal((await host("h1")).isolated, true);
    await client.healIsolation("h1");
    await client.partitionHosts(["h2"]);
    assert.equal((await host("h2")).partitioned, true);
    await client.healPartition(["h2"]);
    assert.equal((await host("h2")).partitioned, false);
    await client.setStoragePathsUp("h1", 1);
    assert.equal((await host("h1")).storagePathsUp, 1);
    await client.setStoragePathsUp("h1", 2);
    await client.slowHost("h2", 3);
    await client.healSlowHost("h2");
    assert.equal((await client.diskLocks()).filter((lock) => lock.vmId === "ns/a").length, 1);

    await client.hangGuest("ns/a");
    await client.healGuestHang("ns/a");
    await client.resetVm("ns/a", "reset-1");
    assert.equal(await power("ns/a"), "Starting");
    await client.resetVm("ns/a", "reset-1");
    await clock.advance(sim.timings.bootMs);
    assert.equal(await power("ns/a"), "Running", "the same reset key resets once");
    await client.guestShutdown("ns/a");
    assert.equal(sim.observeVm("ns/a")?.lastExit?.reason, "GuestShutdown");
    await client.crashVm("ns/b");
    assert.equal(sim.observeVm("ns/b")?.lastExit?.reason, "Crashed");

    await client.startVm("ns/a", "h1", vmConfig());
    await client.crashHost("h1");
    await client.crashHost("h1");
    assert.equal((await host("h1")).up, false);
    await client.recoverHost("h1");
    assert.equal((await host("h1")).up, true);
    assert.equal(await power("ns/a"), "Off");
    assert.equal(await refusal(client.crashHost("nowhere")), "NotFound");
  });

  it("refuses a VM id that is not namespace/name before sending anything", async (t) => {
    const { client } = await serve(t);
    assert.equal(await refusal(client.startVm("no-namespace", "h1", vmConfig())), "Invalid");
    assert.equal(await refusal(client.removeVm("a/b/c")), "Invalid");
  });

  it("refuses host and VM names the Kubernetes API would refuse, escaped or not, before the simulator sees them", async (t) => {
    const { sim, client } = await serve(t);
    assert.equal(await refusal(client.registerHost("h 1", hostConfig())), "Invalid");
    await client.registerHost("h1", hostConfig());
    assert.equal(await refusal(client.startVm("ns/web?x=1#top", "h1", vmConfig())), "Invalid");
    assert.equal(await refusal(client.removeVm("ns/web?x=1#top")), "Invalid");
    assert.deepEqual((await sim.observe()).hosts.map((h) => h.name), ["h1"]);
    assert.equal((await sim.observe()).vms.length, 0);
  });

  it("answers a long-poll as soon as the world changes, with a higher revision", async (t) => {
    const { sim, client } = await serve(t);
    const before = sim.revision();
    const watching = client.watchObservation(before, 30);
    await client.registerHost("h1", hostConfig());
    const seen = await watching;
    assert.ok(seen.revision > before);
    assert.deepEqual(seen.observation.hosts.map((h) => h.name), ["h1"]);
  });

  it("answers a long-poll at once when the revision asked about is already past or from another world", async (t) => {
    const { sim, client } = await serve(t);
    await client.registerHost("h1", hostConfig());
    assert.equal((await client.watchObservation(0, 30)).revision, sim.revision());
    assert.equal((await client.watchObservation(sim.revision() + 100, 30)).revision, sim.revision());
  });

  it("answers the long-polls still waiting when the server closes", async (t) => {
    const { sim, server, client } = await serve(t);
    const waiting = client.watchObservation(sim.revision(), 60);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await server.close();
    assert.equal((await waiting).revision, sim.revision());
  });

  it("refuses requests without the right bearer token, and serves health checks without one", async (t) => {
    const { sim, url } = await serve(t);
    for (const token of [null, "wrong", `${TOKEN}x`, TOKEN.slice(0, -1)]) {
      const response = await raw(url, "/v1/hosts/h1", { method: "PUT", body: JSON.stringify(hostConfig()) }, token);
      assert.equal(response.status, 401);
      assert.match(response.headers.get("www-authenticate") ?? "", /^Bearer/);
      assert.equal((await response.json() as { code: string }).code, "Unauthorized");
    }
    const basic = await raw(url, "/v1/observation", { headers: { authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString("base64")}` } }, null);
    assert.equal(basic.status, 401);
    assert.equal((await sim.observe()).hosts.length, 0);
    assert.equal((await raw(url, "/healthz", {}, null)).status, 200);
    assert.equal((await raw(url, "/readyz", {}, null)).status, 200);
    const refused = await refusal(new HttpProvider({ url, token: "wrong" }).observe());
    assert.equal(refused, "Unavailable");
    await assert.rejects(new HttpProvider({ url, token: "wrong" }).observe(), HostsimAuthError);
  });

  it("answers bad requests with 400, 404, 405, 413 and 422 and a JSON reason", async (t) => {
    const { url } = await serve(t);
    const put = (body: string) => raw(url, "/v1/hosts/h1", { method: "PUT", body, headers: { "content-type": "application/json" } });
    const notJson = await put("{not json");
    assert.equal(notJson.status, 400);
    assert.match((await notJson.json() as { message: string }).message, /not valid JSON/);
    const shape = await put(JSON.stringify({ ...hostConfig(), cpu: "lots" }));
    assert.equal(shape.status, 422);
    assert.deepEqual(await shape.json(), { code: "Invalid", message: "body.cpu must be an object" });
    const huge = await put(JSON.stringify({ ...hostConfig(), padding: "x".repeat(2 * 1024 * 1024) }));
    assert.equal(huge.status, 413);
    const unknown = await raw(url, "/v1/volcanoes");
    assert.equal(unknown.status, 404);
    assert.equal((await unknown.json() as { code: string }).code, "RouteNotFound");
    const method = await raw(url, "/v1/clock", { method: "POST" });
    assert.equal(method.status, 405);
    assert.equal(method.headers.get("allow"), "GET");
    const watch = await raw(url, "/v1/observation?afterRevision=soon");
    assert.equal(watch.status, 400);
  });

  it("says the provider's time and scale on every answer", async (t) => {
    const { clock, url, client } = await serve(t);
    const response = await raw(url, "/v1/observation");
    assert.equal(Number(response.headers.get("vireo-time")), clock.now());
    assert.equal(response.headers.get("vireo-time-scale"), "1");
    assert.deepEqual(await client.clock(), { now: clock.now(), timeScale: 1 });
  });

  it("refuses to serve without a token except on loopback", async () => {
    const sim = new SimulatedHosts({ clock: new VirtualClock(), seed: 1 });
    assert.throws(() => new HostsimServer({ sim, timeScale: 1, token: undefined, log: silentLogger() }), HostsimConfigError);
    assert.throws(() => new HostsimServer({ sim, timeScale: 1, token: "", log: silentLogger() }), HostsimConfigError);
    const open = new HostsimServer({ sim, timeScale: 1, token: undefined, insecureNoAuth: true, log: silentLogger() });
    await assert.rejects(open.listen("0.0.0.0:0"), HostsimConfigError);
    const address = await open.listen("127.0.0.1:0");
    assert.equal((await new HttpProvider({ url: `http://${address}` }).observe()).hosts.length, 0);
    await open.close();
    await sim.close();
  });

  it("reports a simulator that does not answer in time as Unavailable", async (t) => {
    const silent = createServer(() => { /* never answers */ });
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    t.after(() => new Promise<void>((resolve) => { silent.closeAllConnections(); silent.close(() => resolve()); }));
    const { port } = silent.address() as AddressInfo;
    const client = new HttpProvider({ url: `http://127.0.0.1:${port}`, token: TOKEN, timeoutMs: 100 });
    const error = await client.stopVm("ns/a", "PowerOff").then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof ProviderError);
    assert.equal(error.code, "Unavailable");
    assert.match(error.message, /timeout/);
  });

  it("reports a simulator that cannot be reached as Unavailable", async () => {
    const { url } = await (async () => {
      const sim = new SimulatedHosts({ clock: new VirtualClock(), seed: 1 });
      const server = new HostsimServer({ sim, timeScale: 1, token: TOKEN, log: silentLogger() });
      const address = await server.listen("127.0.0.1:0");
      await server.close();
      await sim.close();
      return { url: `http://${address}` };
    })();
    const error = await new HttpProvider({ url, token: TOKEN }).observe().then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof ProviderError);
    assert.equal(error.code, "Unavailable");
    assert.ok(error.cause, "the network failure is kept as the cause");
  });
});
