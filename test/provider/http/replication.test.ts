// Replication over hostsim's HTTP API, in-process on the virtual clock: the client replicates, syncs,
// fails over and stops replication and sees it all in its observation; partitions cut storage over the
// wire; refusals keep their codes; bodies without the right shape are refused before the simulator sees them.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { TestContext } from "node:test";
import { serveInProcess, TOKEN } from "./hostsim-support.ts";
import { hostConfig, refusal } from "../../support/migration.ts";
import { atSiteB, replicaOf, replication, siteAVm } from "../sim/replication-support.ts";

async function serve(t: TestContext) {
  const served = await serveInProcess(t);
  for (const name of ["a1", "a2"]) await served.client.registerHost(name, hostConfig({ datastores: ["site-a", "a-local"] }));
  await served.client.registerHost("b1", hostConfig({ datastores: ["site-b", "b-local"] }));
  return served;
}

function send(url: string, method: string, path: string, body: unknown): Promise<Response> {
  return fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

describe("replication over hostsim's API", () => {
  it("replicates, syncs on request, cuts storage off, fails over and reports the loss, all through the client", async (t) => {
    const { clock, sim, client } = await serve(t);
    await client.startVm("shop/db", "a1", siteAVm(1, 3));
    await clock.advance(sim.timings.bootMs);
    await client.replicateVm("shop/db", replication());
    await client.replicateVm("shop/db", replication());
    const first = await replicaOf(client, "shop/db");
    assert.deepEqual([first.state, first.syncing?.totalMiB, first.writeRateMiBps], ["Initializing", 1024, 3], "the VM's own write rate came over the wire");
    assert.deepEqual(await client.observe(), await sim.observe());

    await clock.advance(60_000);
    await client.syncReplica("shop/db", "k1");
    await client.syncReplica("shop/db", "k1");
    await clock.advance(1_800);
    const asked = await replicaOf(client, "shop/db");
    assert.deepEqual([asked.lastSync?.key, asked.lastSync?.transferredMiB, asked.instances.length], ["k1", 3 * 60, 2], "60 s of writes at 3 MiB/s, in 1.8 s");

    await client.partitionHosts(["a1", "a2"], { storage: true });
    assert.deepEqual((await client.observe()).unreachableDatastores, ["a-local", "site-a"]);
    await client.healPartition(["a1", "a2"]);
    assert.deepEqual((await client.observe()).unreachableDatastores, []);

    await clock.advance(8_200);
    await client.crashHost("a1");
    await assert.rejects(client.recoverVm("shop/db", "b1", atSiteB(siteAVm(1, 3)), { replicaOf: "shop/db" }), { code: "LockHeld" });
    await clock.advance(sim.timings.lockExpiryMs);
    const recovered = await client.recoverVm("shop/db", "b1", atSiteB(siteAVm(1, 3)), { replicaOf: "shop/db", instanceAt: asked.lastSync!.startedAt });
    assert.deepEqual([recovered.host, recovered.power], ["b1", "Starting"]);
    const truth = await client.groundTruth();
    assert.deepEqual(truth.recoveries, [{ vm: "shop/db", instanceAt: asked.lastSync!.startedAt, stoppedWritingAt: asked.lastSync!.startedAt + 10_000, lostMiB: 30 }]);
    assert.deepEqual(truth.replicas.map((r) => r.state), ["FailedOver"]);
    assert.equal((await client.observe()).splitBrainAttempts, 1);

    await client.stopReplication("shop/db");
    await client.stopReplication("shop/db");
    assert.deepEqual((await client.observe()).replicas, []);
  });

  it("carries the simulator's refusals: NotFound, Conflict, Invalid, Unavailable", async (t) => {
    const { clock, sim, client } = await serve(t);
    assert.equal(await refusal(client.replicateVm("shop/nobody", replication())), "NotFound");
    await client.startVm("shop/db", "a1", siteAVm(1));
    await clock.advance(sim.timings.bootMs);
    await assert.rejects(client.replicateVm("shop/db", replication({ rpoMs: 1_000 })), { code: "Invalid", message: /rpoMs must be between/ });
    assert.equal(await refusal(client.syncReplica("shop/db", "k")), "NotFound");
    await client.replicateVm("shop/db", replication());
    assert.equal(await refusal(client.recoverVm("shop/copy", "b1", atSiteB(siteAVm(1)), { replicaOf: "shop/db" })), "Conflict", "no completed sync yet");
    await clock.advance(20_000);
    assert.equal(await refusal(client.recoverVm("shop/copy", "a2", atSiteB(siteAVm(1)), { replicaOf: "shop/db" })), "Unavailable");
    const copy = await client.recoverVm("shop/copy", "b1", atSiteB(siteAVm(1)), { replicaOf: "shop/db" });
    assert.equal(copy.id, "shop/copy");
    assert.equal(await refusal(client.recoverVm("shop/copy", "b1", atSiteB(siteAVm(1)), { replicaOf: "shop/nobody" })), "NotFound");
  });

  it("refuses replication, sync, recover and partition bodies without the right shape with 422, saying what is wrong", async (t) => {
    const { clock, sim, url, client } = await serve(t);
    await client.startVm("shop/db", "a1", siteAVm(1));
    await clock.advance(sim.timings.bootMs);
    const cases: [string, string, unknown, string][] = [
      ["PUT", "/v1/vms/shop/db/replication", [], "body must be an object"],
      ["PUT", "/v1/vms/shop/db/replication", { ...replication(), targetDatastore: 7 }, "body.targetDatastore must be a non-empty string"],
      ["PUT", "/v1/vms/shop/db/replication", { ...replication(), instances: 1.5 }, "body.instances must be a whole number from 0 to 24"],
      ["PUT", "/v1/vms/shop/db/replication", { ...replication(), linkBandwidthMiBps: "fast" }, "body.linkBandwidthMiBps must be a positive number"],
      ["POST", "/v1/vms/shop/db/replication/sync", { key: "" }, "body.key must not be empty"],
      ["POST", "/v1/vms/shop/db/recover", { host: "b1", config: atSiteB(siteAVm(1)), replicaOf: "db" }, 'body.replicaOf must be a VM id of the form namespace/name, got "db"'],
      ["POST", "/v1/vms/shop/db/recover", { host: "B 1", config: atSiteB(siteAVm(1)), replicaOf: "shop/db" }, 'body.host must be a host name (a lowercase RFC 1123 subdomain of at most 253 characters), got "B 1"'],
      ["POST", "/v1/vms/shop/db/recover", { host: "b1", replicaOf: "shop/db" }, "body.config must be an object"],
      ["POST", "/v1/vms/shop/db/recover", { host: "b1", config: atSiteB(siteAVm(1)), replicaOf: "shop/db", instanceAt: "latest" }, "body.instanceAt must be a number"],
      ["POST", "/v1/sim/partition", { hosts: ["a1"], storage: "yes" }, "body.storage must be true or false"],
    ];
    for (const [method, path, body, message] of cases) {
      const response = await send(url, method, path, body);
      assert.equal(response.status, 422, `${method} ${path} ${JSON.stringify(body).slice(0, 80)}`);
      assert.deepEqual(await response.json(), { code: "Invalid", message });
    }
    assert.equal((await send(url, "PUT", "/v1/vms/shop/db/replication", "{rpo: 1}")).status, 400);
    assert.deepEqual((await client.observe()).replicas, [], "nothing reached the simulator");
    assert.equal((await client.groundTruth()).hosts.some((h) => h.partitioned), false);
    assert.equal((await send(url, "PUT", "/v1/vms/shop/db/replication", { ...replication(), extra: true })).status, 204);
    assert.deepEqual((await replicaOf(client, "shop/db")).settings, replication(), "only the settings replication has");
  });
});
