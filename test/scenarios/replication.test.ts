// Replication and disaster recovery on the virtual clock: replicas that keep their RPO, a site lost and
// recovered in the other cluster in priority order, on the mapped network with the VMs' MACs, fenced first.

import { test } from "node:test";
import assert from "node:assert/strict";
import { condition } from "../support/scenario.ts";
import { allReplicated, DR_HOSTS, PROD_HOSTS, ready, startDrFleet } from "../support/dr-fleet.ts";

test("replicated VMs get a first full sync, then incremental syncs that keep the RPO", async () => {
  const s = await startDrFleet([{ name: "db-0", tier: "db", diskGiB: 20, writeRate: 0.5 }]);
  try {
    await s.until(() => ready(s.vm("db-0")));
    await s.until(() => s.vm("db-0").status?.replication?.lastSyncTime !== undefined, 3_600_000);
    const first = s.vm("db-0").status!.replication!;
    assert.equal(first.state, "Replicating");
    assert.equal(first.datastore, "dr-ds");
    // 20 GiB over 100 MiB/s: the first full sync takes about 205 s.
    assert.ok(first.lastSyncMiB! >= 20 * 1024, `first sync shipped ${first.lastSyncMiB} MiB`);
    await s.advance(1_800_000);
    const later = s.vm("db-0").status!.replication!;
    assert.ok(later.lastSyncMiB! < 1024, `an incremental sync ships what changed, not ${later.lastSyncMiB} MiB`);
    assert.equal(later.rpoViolated, false);
    assert.ok(later.lagSeconds! <= 300, `lag ${later.lagSeconds} s within the RPO`);
    assert.equal(condition(s.vm("db-0"), "Replicated")?.reason, "Replicating");
  } finally {
    await s.stop();
  }
});

test("site loss: every prod host crashes; Replicate VMs come up in dr in priority order, on dr-net with their MACs, fenced first; the rest say why", async () => {
  const s = await startDrFleet([
    { name: "db-0", tier: "db" }, { name: "db-1", tier: "db" },
    { name: "app-0", tier: "app" }, { name: "web-0", tier: "web" },
    { name: "plain-0", tier: "none", replicated: false },
  ]);
  try {
    const replicated = ["db-0", "db-1", "app-0", "web-0"];
    await s.until(() => s.vms().every(ready), 600_000);
    await s.until(() => allReplicated(s, replicated), 3_600_000, 10_000);
    await s.advance(200_000);
    const macs = new Map(replicated.map((n) => [n, s.vm(n).status!.networks![0]!.macAddress]));
    const crashedAt = s.clock.now();
    for (const h of PROD_HOSTS) await s.sim.crashHost(h);

    await s.until(() => replicated.every((n) => ready(s.vm(n)) && DR_HOSTS.includes(s.vm(n).status!.host!)), 1_800_000);
    assert.equal(s.sim.splitBrainAttempts(), 0);
    for (const name of replicated) {
      const vm = s.vm(name);
      assert.ok(DR_HOSTS.includes(vm.status!.host!), `${name} runs in dr, on ${vm.status!.host}`);
      const instance = s.sim.observeVm(`default/${name}`)!;
      assert.deepEqual(instance.config.nics.map((n) => n.network), ["dr-net"]);
      assert.equal(instance.config.nics[0]!.macAddress, macs.get(name), `${name} keeps its MAC`);
      assert.equal(instance.config.disks[0]!.datastore, "dr-ds");
      const failover = vm.status!.replication!.failover!;
      assert.equal(failover.fromCluster, "prod");
      assert.equal(failover.toCluster, "dr");
      // Fenced: nothing started before the crashed hosts' leases could have expired.
      assert.ok(Date.parse(failover.time) >= crashedAt + s.sim.timings.lockExpiryMs - s.sim.timings.lockRenewIntervalMs, `${name} recovered at ${failover.time}`);
      const truth = s.sim.groundTruth().recoveries.find((r) => r.vm === `default/${name}`)!;
      const lostSeconds = (truth.stoppedWritingAt - truth.instanceAt) / 1000;
      assert.ok(Math.abs(failover.dataLossSeconds - lostSeconds) <= s.sim.timings.datastoreHeartbeatIntervalMs / 1000,
        `${name}: reported ${failover.dataLossSeconds} s lost, the hosts lost ${lostSeconds} s`);
    }
    // Priority order: the databases answered before the app started, which was not after the web VM.
    const at = (n: string) => Date.parse(s.vm(n).status!.replication!.failover!.time);
    assert.ok(Math.max(at("db-0"), at("db-1")) + s.sim.timings.bootMs <= at("app-0"), "the app VM starts once the databases answer");
    assert.ok(at("app-0") <= at("web-0"));
    const plain = s.vm("plain-0");
    assert.notEqual(plain.status?.phase, "Running");
    assert.match(condition(plain, "Ready")!.message, /no replica/);
  } finally {
    await s.stop();
  }
});

test("isolation is not loss: a prod cluster only partitioned from the controller does not fail over", async () => {
  const s = await startDrFleet([{ name: "db-0", tier: "db" }, { name: "app-0", tier: "app" }]);
  try {
    await s.until(() => s.vms().every(ready));
    await s.until(() => allReplicated(s, ["db-0", "app-0"]), 3_600_000, 10_000);
    await s.sim.partitionHosts(PROD_HOSTS);
    await s.advance(900_000);
    for (const name of ["db-0", "app-0"]) {
      const instance = s.sim.observeVm(`default/${name}`)!;
      assert.ok(PROD_HOSTS.includes(instance.host), `${name} still on ${instance.host}`);
      assert.equal(s.vm(name).status?.replication?.failover, undefined);
    }
    assert.equal(s.sim.splitBrainAttempts(), 0);
  } finally {
    await s.stop();
  }
});

test("a site cut off with its storage cannot be told from a loss: replicated VMs wait for a person", async () => {
  const s = await startDrFleet([{ name: "db-0", tier: "db" }]);
  try {
    await s.until(() => ready(s.vm("db-0")));
    await s.until(() => allReplicated(s, ["db-0"]), 3_600_000, 10_000);
    await s.sim.partitionHosts(PROD_HOSTS, { storage: true });
    await s.advance(600_000);
    assert.ok(PROD_HOSTS.includes(s.sim.observeVm("default/db-0")!.host));
    const ready_ = condition(s.vm("db-0"), "Ready");
    assert.equal(ready_?.reason, "WaitingForUser");
    assert.match(ready_!.message, /cannot be told from a partition/);
    assert.equal(s.sim.splitBrainAttempts(), 0);
  } finally {
    await s.stop();
  }
});

test("replication carries on across a live migration and a controller restart", async () => {
  const s = await startDrFleet([{ name: "db-0", tier: "db" }]);
  try {
    await s.until(() => ready(s.vm("db-0")));
    await s.until(() => allReplicated(s, ["db-0"]), 3_600_000, 10_000);
    const from = s.vm("db-0").status!.host!;
    const to = PROD_HOSTS.find((h) => h !== from)!;
    s.apply(`apiVersion: vireo.dev/v1alpha1
kind: VirtualMachineMigration
metadata: {name: move-db, namespace: default}
spec: {vmName: db-0, targetHost: ${to}, mode: Live}
---
`);
    await s.until(() => s.vm("db-0").status?.host === to && ready(s.vm("db-0")), 600_000);
    const before = s.vm("db-0").status!.replication!.lastSyncTime!;
    await s.restartController();
    await s.advance(900_000);
    const after = s.vm("db-0").status!.replication!;
    assert.ok(Date.parse(after.lastSyncTime!) > Date.parse(before), "syncs went on after the move and the restart");
    assert.equal(after.rpoViolated, false);
    assert.equal(condition(s.vm("db-0"), "Replicated")?.status, "True");
  } finally {
    await s.stop();
  }
});

test("a link too slow for what the VMs write: the violation is predicted from the write rate, then happens", async () => {
  // Four VMs writing 4 MiB/s each on a 10 MiB/s link: 16 MiB/s cannot fit.
  const names = ["web-0", "web-1", "web-2", "web-3"];
  const s = await startDrFleet(names.map((name) => ({ name, tier: "web" as const, writeRate: 4, diskGiB: 1 })), { bandwidthMiBps: 10 });
  try {
    await s.until(() => names.every((n) => ready(s.vm(n))));
    await s.advance(5_000);
    const predicted = condition(s.vm("web-0"), "Replicated");
    assert.equal(predicted?.reason, "LinkTooSlow");
    assert.match(predicted!.message, /16 MiB\/s of writes from 4 VMs on 10 MiB\/s: shared evenly, each sync gets 2.5 MiB\/s/);
    await s.until(() => names.some((n) => s.vm(n).status?.replication?.rpoViolated === true), 7_200_000, 10_000);
    assert.ok(s.events.some((e) => e.reason === "RPOViolated"));
  } finally {
    await s.stop();
  }
});

test("deleting a replicated VM removes its replica too", async () => {
  const s = await startDrFleet([{ name: "db-0", tier: "db" }]);
  try {
    await s.until(() => ready(s.vm("db-0")));
    await s.until(() => s.sim.groundTruth().replicas.some((r) => r.vm === "default/db-0"));
    s.delete("VirtualMachine", "db-0", "default");
    await s.advance(10_000);
    assert.deepEqual(s.sim.groundTruth().replicas, []);
    assert.equal(s.sim.observeVm("default/db-0"), undefined);
  } finally {
    await s.stop();
  }
});
