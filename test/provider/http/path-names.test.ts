// Every route of hostsim's API checks the host and VM names in its path as the Kubernetes API checks the
// objects' names (DNS-1123; a VM as namespace/name), once, in the router: a name that is a path, a query or
// upper case is refused with 422 Invalid, naming the parameter, and the simulated world is left as it was.
// The routes are read from the API itself, so a new route is tested the day it is added.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { TestContext } from "node:test";
import { VirtualClock } from "../../../controller/core/clock.ts";
import { hostsimRoutes } from "../../../controller/provider/http/routes.ts";
import { route } from "../../../controller/provider/http/router.ts";
import { SimulatedHosts } from "../../../controller/provider/sim/index.ts";
import { hostConfig, serveInProcess, TOKEN, vmConfig } from "./hostsim-support.ts";

async function serve(t: TestContext) {
  return serveInProcess(t, { seed: 5 });
}

async function call(url: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: { code?: string; message?: string } }> {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as { code?: string; message?: string }) : {} };
}

/**
 * Names each parameter must refuse, as they appear in a request's path (percent-encoded where needed). A bare
 * `..` segment never reaches a server: URL parsing removes it, on the client and again on the server.
 */
const REFUSED: Readonly<Record<string, readonly string[]>> = {
  host: ["..%2F..%2Fetc%2Fpasswd", "esx..01", "ESX-01", "esx_01", "esx%2001", "-esx", `${"a".repeat(254)}`],
  namespace: ["..%2F..", "a.b", "Shop", "shop.prod", "%2Fetc", `${"a".repeat(64)}`],
  name: ["web..1", "..%2Fetc%2Fpasswd", "Web-1", "web%3Fx%3D1", "web%231", `${"a".repeat(254)}`],
};
/** A valid value of each parameter, for the other parameters of the same path. */
const VALID: Readonly<Record<string, string>> = { host: "esx-01", namespace: "shop", name: "web-1" };

/** The route's path with `bad` in parameter `at` and valid names in the others. */
function pathWith(pattern: readonly string[], at: string, bad: string): string {
  return `/${pattern.map((part) => (part === `:${at}` ? bad : part.startsWith(":") ? VALID[part.slice(1)]! : part)).join("/")}`;
}

/** What the simulated world holds, to show a refused request changed nothing. */
async function world(sim: SimulatedHosts): Promise<string> {
  const { hosts, vms } = await sim.observe();
  return JSON.stringify({ hosts: hosts.map((h) => h.name), vms: vms.map((v) => [v.id, v.power, v.host]) });
}

describe("hostsim's path parameters, checked by the router", () => {
  const routes = hostsimRoutes({ sim: new SimulatedHosts({ clock: new VirtualClock(), seed: 1 }), timeScale: 1 });
  const withParameters = routes.filter((r) => r.pattern.some((part) => part.startsWith(":")));

  it("covers every route that takes a name: hosts by :host, VMs by :namespace/:name", () => {
    assert.ok(withParameters.length >= 29, `only ${withParameters.length} routes take parameters`);
    for (const r of withParameters) {
      const parameters = r.pattern.filter((part) => part.startsWith(":")).join("/");
      assert.ok([":host", ":namespace/:name"].includes(parameters), `${r.method} ${r.path}`);
    }
  });

  for (const r of withParameters) {
    it(`${r.method} ${r.path} refuses a name the API would refuse with 422, and changes nothing`, async (t) => {
      const { sim, url } = await serve(t);
      await sim.registerHost("esx-01", hostConfig());
      await sim.startVm("shop/web-1", "esx-01", vmConfig());
      const before = await world(sim);
      for (const part of r.pattern.filter((p) => p.startsWith(":"))) {
        const parameter = part.slice(1);
        for (const bad of REFUSED[parameter]!) {
          const path = pathWith(r.pattern, parameter, bad);
          const answer = await call(url, r.method, path, r.takesBody ? {} : undefined);
          assert.equal(answer.status, 422, `${r.method} ${path}: ${JSON.stringify(answer.body)}`);
          assert.equal(answer.body.code, "Invalid");
          assert.match(answer.body.message ?? "", new RegExp(`^path parameter ${parameter} must be `), `${r.method} ${path}`);
        }
      }
      assert.equal(await world(sim), before, "the world is as it was");
    });
  }

  it("refuses the traversal names of the report: a host named ../../etc/passwd is not registered, and no VM ../../../etc/passwd is removed", async (t) => {
    const { sim, url } = await serve(t);
    const put = await call(url, "PUT", "/v1/hosts/..%2F..%2Fetc%2Fpasswd", hostConfig());
    assert.deepEqual(put, { status: 422, body: { code: "Invalid", message: 'path parameter host must be a host name (a lowercase RFC 1123 subdomain of at most 253 characters), got "../../etc/passwd"' } });
    assert.deepEqual((await sim.observe()).hosts, []);
    const removed = await call(url, "DELETE", "/v1/vms/..%2F..%2F..%2Fetc/passwd");
    assert.equal(removed.status, 422);
    assert.match(removed.body.message ?? "", /^path parameter namespace must be a namespace \(a lowercase RFC 1123 label of at most 63 characters\), got "\.\.\/\.\.\/\.\.\/etc"$/);
  });

  it("still serves the longest names the API accepts", async (t) => {
    const { sim, url } = await serve(t);
    const host = `${"h".repeat(63)}.${"o".repeat(63)}.${"s".repeat(63)}.${"t".repeat(61)}`;
    assert.equal(host.length, 253);
    assert.equal((await call(url, "PUT", `/v1/hosts/${host}`, hostConfig())).status, 204);
    const vm = `${"n".repeat(63)}/${"v".repeat(253)}`;
    assert.equal((await call(url, "POST", `/v1/vms/${vm}/start`, { host, config: vmConfig() })).status, 200);
    assert.equal(sim.observeVm(vm)?.host, host);
  });

  it("checks the host and VM names in request bodies the same way", async (t) => {
    const { sim, url } = await serve(t);
    await sim.registerHost("esx-01", hostConfig());
    await sim.startVm("shop/web-1", "esx-01", vmConfig());
    const before = await world(sim);
    const cases: [string, string, unknown, string][] = [
      ["POST", "/v1/vms/shop/db-1/start", { host: "../esx-01", config: vmConfig() }, "body.host must be a host name"],
      ["POST", "/v1/sim/vms/shop/web-1/move", { host: "ESX-01" }, "body.host must be a host name"],
      ["POST", "/v1/sim/vms/shop/rogue/create", { host: "esx 01", cpu: 1, memoryMiB: 512 }, "body.host must be a host name"],
      ["POST", "/v1/sim/partition", { hosts: ["esx-01", "../x"] }, "body.hosts[1] must be a host name"],
      ["POST", "/v1/sim/partition/heal", { hosts: ["Esx-01"] }, "body.hosts[0] must be a host name"],
      ["POST", "/v1/vms/shop/web-2/recover", { host: "esx-01", config: vmConfig(), replicaOf: "shop/../web-1" }, "body.replicaOf must be a VM id of the form namespace/name"],
    ];
    for (const [method, path, body, message] of cases) {
      const answer = await call(url, method, path, body);
      assert.equal(answer.status, 422, `${method} ${path}: ${JSON.stringify(answer.body)}`);
      assert.ok(answer.body.message?.startsWith(message), `${method} ${path}: ${answer.body.message}`);
    }
    assert.equal(await world(sim), before);
  });

  it("refuses, at start-up, a route whose parameter it has no check for", () => {
    assert.throws(() => route("GET", "/v1/datastores/:datastore", false, () => ({ status: 204 })), /no check for the path parameter :datastore/);
  });
});
