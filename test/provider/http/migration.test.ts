// Live migration over hostsim's HTTP API, in-process on the virtual clock: the client drives a migration
// and sees it in the observation, long-polls wake at each round, refusals keep their codes, and bodies
// that do not have the right shape are refused before the simulator sees them.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { TestContext } from "node:test";
import { serveInProcess, TOKEN } from "./hostsim-support.ts";
import { guest, hostConfig, migrationOf, refusal, settings, underWay } from "../../support/migration.ts";

async function serve(t: TestContext) {
  const served = await serveInProcess(t);
  for (const name of ["h1", "h2"]) await served.client.registerHost(name, hostConfig());
  await served.client.registerHost("amd", hostConfig({ cpu: { cores: 16, vendor: "amd", features: ["avx2"], overcommitRatio: 4 } }));
  return served;
}

function post(url: string, path: string, body: unknown): Promise<Response> {
  return fetch(`${url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

describe("live migration over hostsim's API", () => {
  it("is driven by the client and seen in the client's observation, round by round, to its end", async (t) => {
    const { clock, sim, client } = await serve(t);
    await client.startVm("shop/db", "h1", guest(4096, 60));
    await clock.advance(sim.timings.bootMs);
    await client.migrateVm("shop/db", "h2", { key: "m1", settings: settings() });
    const first = (await migrationOf(client, "shop/db"))!;
    assert.deepEqual([first.phase, first.rounds, first.dirtyRateMiBps], ["PreCopy", 1, 60], "the VM's own dirty rate came over the wire");
    assert.deepEqual(await client.observe(), await sim.observe());

    let { revision } = await client.watchObservation(0, 0);
    const rounds: number[] = [];
    for (;;) {
      const watching = client.watchObservation(revision, 30);
      await clock.advanceTo(clock.nextTimerAt()!);
      const seen = await watching;
      assert.ok(seen.revision > revision, "a long-poll wakes at each event");
      revision = seen.revision;
      const m = seen.observation.migrations!.find((x) => x.vm === "shop/db")!;
      rounds.push(m.rounds);
      if (!underWay(m)) break;
    }
    const ended = (await migrationOf(client, "shop/db"))!;
    assert.equal(ended.phase, "Succeeded");
    assert.equal(ended.rounds, rounds.at(-1));
    assert.ok(rounds.length >= 5, `rounds seen: ${rounds.join(", ")}`);
    assert.equal((await client.observe()).vms.find((vm) => vm.id === "shop/db")!.host, "h2");
  });

  it("carries the simulator's refusals and no-ops: Incompatible, Conflict, NotFound, the same key, a cancel", async (t) => {
    const { clock, sim, client } = await serve(t);
    await client.startVm("shop/db", "h1", guest(4096, 60));
    await clock.advance(sim.timings.bootMs);
    await assert.rejects(client.migrateVm("shop/db", "amd", { key: "m0", settings: settings() }), { code: "Incompatible", message: /CPU vendor is amd/ });
    assert.equal(await refusal(client.migrateVm("shop/db", "h1", { key: "m0", settings: settings() })), "Conflict");
    assert.equal(await refusal(client.migrateVm("shop/db", "h9", { key: "m0", settings: settings() })), "NotFound");
    assert.equal(await refusal(client.migrateVm("shop/nobody", "h2", { key: "m0", settings: settings() })), "NotFound");
    await client.migrateVm("shop/db", "h2", { key: "m1", settings: settings() });
    await client.migrateVm("shop/db", "h2", { key: "m1", settings: settings() });
    assert.equal(await refusal(client.migrateVm("shop/db", "h2", { key: "m2", settings: settings() })), "Conflict");
    await clock.advance(5_000);
    await client.cancelMigration("shop/db", "m1");
    await client.cancelMigration("shop/db", "m1");
    const m = (await migrationOf(client, "shop/db"))!;
    assert.deepEqual([m.phase, m.key], ["Cancelled", "m1"]);
    assert.equal((await client.observe()).vms[0]!.host, "h1");
  });

  it("refuses a migrate or cancel body without the right shape with 422 and says what is wrong, and a body that is not JSON with 400", async (t) => {
    const { clock, sim, url, client } = await serve(t);
    await client.startVm("shop/db", "h1", guest(4096));
    await clock.advance(sim.timings.bootMs);
    const good = { target: "h2", key: "m1", settings: settings() };
    const cases: [unknown, string | RegExp][] = [
      [{ ...good, target: "H2_not a name" }, 'body.target must be a host name (a lowercase RFC 1123 subdomain of at most 253 characters), got "H2_not a name"'],
      [{ ...good, target: "h".repeat(254) }, /^body\.target must be a host name/],
      [{ ...good, key: "" }, "body.key must not be empty"],
      [{ target: "h2", settings: settings() }, "body.key must be a string"],
      [{ ...good, settings: { ...settings(), bandwidthMiBps: -1 } }, "body.settings.bandwidthMiBps must be a positive number"],
      [{ ...good, settings: { ...settings(), downtimeLimitMs: "300" } }, "body.settings.downtimeLimitMs must be a positive number"],
      [{ ...good, settings: { ...settings(), maxRounds: 2.5 } }, "body.settings.maxRounds must be a whole number"],
      [{ ...good, settings: { ...settings(), autoConverge: "yes" } }, "body.settings.autoConverge must be true or false"],
      [{ target: "h2", key: "m1" }, "body.settings must be an object"],
    ];
    for (const [body, message] of cases) {
      const response = await post(url, "/v1/vms/shop/db/migrate", body);
      assert.equal(response.status, 422, JSON.stringify(body).slice(0, 120));
      const answer = await response.json() as { code: string; message: string };
      assert.equal(answer.code, "Invalid");
      if (typeof message === "string") assert.equal(answer.message, message);
      else assert.match(answer.message, message);
    }
    const cancel = await post(url, "/v1/vms/shop/db/cancel-migration", { key: 7 });
    assert.equal(cancel.status, 422);
    assert.equal((await post(url, "/v1/vms/shop/db/migrate", "{target: h2}")).status, 400);
    const get = await fetch(`${url}/v1/vms/shop/db/migrate`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(get.status, 405);
    assert.equal(await migrationOf(client, "shop/db"), undefined, "nothing reached the simulator");
    assert.equal((await post(url, "/v1/vms/shop/db/migrate", { ...good, extra: true, settings: { ...settings(), extra: 1 } })).status, 204);
    assert.equal((await migrationOf(client, "shop/db"))!.phase, "PreCopy");
  });
});
