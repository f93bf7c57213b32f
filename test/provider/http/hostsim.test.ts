// `vireo hostsim` as a real process on loopback: authentication, every provider operation through the
// HTTP client with the simulator's own refusals, long-polls, live migration, replication, and a world that
// survives SIGTERM and SIGKILL.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { TestContext } from "node:test";
import { DEFAULT_MIGRATION_SETTINGS } from "../../../controller/core/migration.ts";
import type { Observation, VmObservation } from "../../../controller/core/observation.ts";
import { tempDir, vireoSync } from "../../support/process.ts";
import { TOKEN, eventually, hostConfig, refusal, startHostsim, vmConfig, writeToken } from "./hostsim-support.ts";
import type { RunningHostsim } from "./hostsim-support.ts";

async function launch(t: TestContext) {
  const dir = tempDir("hostsim");
  const state = join(dir.path, "state", "world.json");
  const tokenFile = writeToken(dir.path);
  const hostsim = await startHostsim({ state, tokenFile });
  t.after(async () => {
    await hostsim.process.stop("SIGKILL");
    dir.remove();
  });
  return { dir, state, tokenFile, hostsim };
}

function vmsOf(observation: Observation): Map<string, VmObservation> {
  return new Map(observation.vms.map((vm) => [vm.id, vm]));
}

async function allRunning(hostsim: RunningHostsim, ids: string[]): Promise<Observation> {
  return eventually(async () => {
    const observation = await hostsim.client.observe();
    return ids.every((id) => vmsOf(observation).get(id)?.power === "Running") ? observation : undefined;
  }, 15_000, `${ids.join(", ")} Running`);
}

describe("vireo hostsim", () => {
  it("refuses requests without the right token with 401, and they change nothing", async (t) => {
    const { hostsim } = await launch(t);
    const put = (headers: Record<string, string>) =>
      fetch(`${hostsim.url}/v1/hosts/h1`, { method: "PUT", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(hostConfig()) });
    const attempts: Record<string, string>[] = [{}, { authorization: "Bearer nope" }, { authorization: TOKEN }, { authorization: `Bearer ${TOKEN} extra` }];
    for (const headers of attempts) {
      const response = await put(headers);
      assert.equal(response.status, 401, JSON.stringify(headers));
      assert.match(response.headers.get("www-authenticate") ?? "", /^Bearer/);
    }
    const crash = await fetch(`${hostsim.url}/v1/sim/hosts/h1/crash`, { method: "POST" });
    assert.equal(crash.status, 401);
    assert.equal((await hostsim.client.observe()).hosts.length, 0);
    assert.equal((await fetch(`${hostsim.url}/healthz`)).status, 200);
  });

  it("serves every provider operation, with the simulator's refusals as the same ProviderError codes", async (t) => {
    const { hostsim } = await launch(t);
    const { client } = hostsim;
    await client.registerHost("h1", hostConfig());
    await client.registerHost("h1", hostConfig());
    await client.registerHost("h2", hostConfig());
    await client.registerHost("local", hostConfig({ datastores: ["local-only"] }));
    assert.equal((await client.observe()).hosts.length, 3);

    const first = await client.startVm("shop/db-1", "h1", vmConfig());
    const again = await client.startVm("shop/db-1", "h1", vmConfig());
    assert.equal(again.poweredOnAt, first.poweredOnAt, "the same start twice is one VM, started once");
    assert.equal((await client.observe()).vms.length, 1);

    assert.equal(await refusal(client.startVm("shop/db-2", "local", vmConfig())), "Invalid", "the host does not see the VM's datastore");
    assert.equal(await refusal(client.startVm("shop/db-1", "h2", vmConfig())), "Conflict", "it runs on h1");
    assert.equal(await refusal(client.startVm("shop/big", "h2", vmConfig({ memoryMiB: 1_000_000 }))), "InsufficientResources");
    assert.equal(await refusal(client.startVm("shop/db-3", "nowhere", vmConfig())), "NotFound");
    assert.equal(await refusal(client.unregisterHost("h1")), "Conflict");

    // h1 is cut off but alive: its lock on db-1's disk still holds, so a second copy is refused and counted.
    await client.isolateHost("h1");
    assert.equal(await refusal(client.startVm("shop/db-1", "h2", vmConfig())), "LockHeld");
    assert.equal((await client.observe()).splitBrainAttempts, 1);
    assert.equal(await refusal(client.stopVm("shop/db-1", "PowerOff")), "Unavailable");
    await client.healIsolation("h1");

    await allRunning(hostsim, ["shop/db-1"]);
    await client.stopVm("shop/db-1", "Shutdown");
    await client.stopVm("shop/db-1", "Shutdown");
    await eventually(async () => ((await client.observe()).vms[0]?.power === "Off" ? true : undefined), 15_000, "db-1 Off");
    await client.removeVm("shop/db-1");
    await client.removeVm("shop/db-1");
    await client.unregisterHost("local");
    await client.unregisterHost("local");
    const after = await client.observe();
    assert.deepEqual(after.vms, []);
    assert.deepEqual(after.hosts.map((h) => h.name).sort(), ["h1", "h2"]);

    await client.startVm("shop/web-1", "h2", vmConfig());
    await client.crashHost("h2");
    assert.equal(await refusal(client.startVm("shop/web-2", "h2", vmConfig())), "Unavailable");
    assert.equal((await client.groundTruth()).vms.find((vm) => vm.id === "shop/web-1")?.power, "Off");
  });

  it("answers a long-poll when the world changes, and with the same revision at its timeout", async (t) => {
    const { hostsim } = await launch(t);
    const { client } = hostsim;
    await client.registerHost("h1", hostConfig());
    const { revision } = await client.watchObservation(0, 0);
    const quiet = await client.watchObservation(revision, 1);
    assert.equal(quiet.revision, revision, "nothing changed: the answer comes at the timeout");
    const watching = client.watchObservation(revision, 30);
    await client.registerHost("h2", hostConfig());
    const changed = await watching;
    assert.ok(changed.revision > revision);
    assert.equal(changed.observation.hosts.length, 2);
  });

  it("answers a body that is not JSON with 400", async (t) => {
    const { hostsim } = await launch(t);
    const response = await fetch(`${hostsim.url}/v1/vms/shop/db-1/start`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: "host=h1&cpu=2",
    });
    assert.equal(response.status, 400);
    const body = await response.json() as { code: string; message: string };
    assert.equal(body.code, "BadRequest");
    assert.match(body.message, /not valid JSON/);
  });

  for (const signal of ["SIGTERM", "SIGKILL"] as const) {
    it(`keeps every VM where it was across a ${signal} and a restart, with its time moving on`, async (t) => {
      const { state, tokenFile, hostsim } = await launch(t);
      const { client } = hostsim;
      await client.registerHost("h1", hostConfig());
      await client.registerHost("h2", hostConfig());
      await client.startVm("shop/db-1", "h1", vmConfig());
      await client.startVm("shop/web-1", "h2", vmConfig({ nics: [{ network: "prod", macAddress: "52:54:00:00:00:02" }] }));
      const before = vmsOf(await allRunning(hostsim, ["shop/db-1", "shop/web-1"]));
      const { now: timeBefore } = await client.clock();

      const code = await hostsim.process.stop(signal);
      if (signal === "SIGTERM") assert.equal(code, 0, hostsim.process.logs());
      const restarted = await startHostsim({ state, tokenFile });
      t.after(() => restarted.process.stop("SIGKILL"));
      const after = await restarted.client.observe();
      assert.ok(after.at >= timeBefore, "time does not run backwards across a restart");
      for (const [id, vm] of before) {
        const now = vmsOf(after).get(id);
        assert.equal(now?.power, "Running", id);
        assert.equal(now?.host, vm.host, id);
        assert.equal(now?.poweredOnAt, vm.poweredOnAt, `${id} was not restarted`);
      }
      assert.equal(after.splitBrainAttempts, 0);
    });
  }

  it("migrates a VM live, and a migration under way when hostsim stops completes after its restart", async (t) => {
    const { state, tokenFile, hostsim } = await launch(t);
    const { client } = hostsim;
    await client.registerHost("h1", hostConfig());
    await client.registerHost("h2", hostConfig());
    // 32 GiB at 128 MiB/s: round 0 takes 256 s of hostsim's time, about 5 s of real time at its scale.
    await client.startVm("shop/db-1", "h1", vmConfig({ memoryMiB: 32_768, workload: { profile: "Idle", cpuPercent: 5 } }));
    const before = vmsOf(await allRunning(hostsim, ["shop/db-1"])).get("shop/db-1")!;
    await client.migrateVm("shop/db-1", "h2", { key: "m1", settings: { ...DEFAULT_MIGRATION_SETTINGS } });
    assert.equal((await client.observe()).migrations?.[0]?.phase, "PreCopy");

    assert.equal(await hostsim.process.stop("SIGTERM"), 0, hostsim.process.logs());
    const saved = JSON.parse(readFileSync(state, "utf8")) as { migrations: { phase: string }[] };
    assert.equal(saved.migrations[0]?.phase, "PreCopy", "saved mid-copy");
    const restarted = await startHostsim({ state, tokenFile });
    t.after(() => restarted.process.stop("SIGKILL"));
    const ended = await eventually(async () => {
      const m = (await restarted.client.observe()).migrations?.find((x) => x.vm === "shop/db-1");
      return m?.phase === "PreCopy" || m?.phase === "Switchover" ? undefined : m;
    }, 30_000, "the migration ended");
    assert.equal(ended?.phase, "Succeeded", ended?.reason);
    const after = vmsOf(await restarted.client.observe()).get("shop/db-1")!;
    assert.deepEqual([after.host, after.power, after.poweredOnAt], ["h2", "Running", before.poweredOnAt]);
    assert.deepEqual((await restarted.client.diskLocks()).map((lock) => lock.host), ["h2"]);
    assert.equal((await restarted.client.observe()).splitBrainAttempts, 0);
  });

  it("replicates a VM, and a full sync under way when hostsim stops completes after its restart", async (t) => {
    const { state, tokenFile, hostsim } = await launch(t);
    const { client } = hostsim;
    await client.registerHost("a1", hostConfig({ datastores: ["site-a"] }));
    await client.registerHost("b1", hostConfig({ datastores: ["site-b"] }));
    await client.startVm("shop/db-1", "a1", vmConfig({ disks: [{ name: "root", sizeGiB: 20, datastore: "site-a" }] }));
    await allRunning(hostsim, ["shop/db-1"]);
    // 20 GiB at 100 MiB/s: the full sync takes 204.8 s of hostsim's time, about 4 s of real time at its scale.
    const settings = { targetDatastore: "site-b", rpoMs: 3_600_000, instances: 2, link: "a-b", linkBandwidthMiBps: 100 };
    await client.replicateVm("shop/db-1", settings);
    const syncing = (await client.observe()).replicas?.[0];
    assert.deepEqual([syncing?.state, syncing?.syncing?.full], ["Initializing", true]);

    assert.equal(await hostsim.process.stop("SIGTERM"), 0, hostsim.process.logs());
    const saved = JSON.parse(readFileSync(state, "utf8")) as { replicas: { syncing?: unknown }[] };
    assert.ok(saved.replicas[0]?.syncing, "saved mid-sync");
    const restarted = await startHostsim({ state, tokenFile });
    t.after(() => restarted.process.stop("SIGKILL"));
    const synced = await eventually(async () => {
      const replica = (await restarted.client.observe()).replicas?.find((r) => r.vm === "shop/db-1");
      return replica?.lastSync ? replica : undefined;
    }, 30_000, "the full sync completed");
    assert.deepEqual([synced.state, synced.lastSync!.startedAt, synced.lastSync!.transferredMiB], ["Replicating", syncing!.syncing!.startedAt, 20_480]);
    assert.deepEqual(synced.settings, settings);
  });

  it("refuses to start without a token file, and without authentication anywhere but loopback", () => {
    const dir = tempDir("hostsim-flags");
    try {
      const state = join(dir.path, "world.json");
      const noToken = vireoSync(["hostsim", "--listen", "127.0.0.1:0", "--state", state]);
      assert.equal(noToken.code, 2);
      assert.match(noToken.stderr, /needs --token-file/);
      const open = vireoSync(["hostsim", "--listen", "0.0.0.0:0", "--state", state, "--insecure-no-auth"]);
      assert.equal(open.code, 1);
      assert.match(open.stderr, /loopback addresses only/);
      const empty = vireoSync(["hostsim", "--listen", "127.0.0.1:0", "--state", state, "--token-file", writeToken(dir.path, "  ")]);
      assert.equal(empty.code, 2);
      assert.match(empty.stderr, /is empty/);
    } finally {
      dir.remove();
    }
  });
});
