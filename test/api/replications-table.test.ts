// `vireo get replications`: one row per replicated VM, read from a state directory as the command reads
// it, with the lag measured at the time of the command.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { get } from "../../controller/cli/get.ts";
import { rpoDuration } from "../../controller/cli/replications.ts";
import { STATE_FORMAT } from "../../controller/state/state-dir.ts";
import type { RecoveryPlan, VirtualMachine, VmReplicationStatus } from "../../controller/api/types.ts";
import { vmObject } from "../support/objects.ts";
import { tempDir } from "../support/process.ts";

const NOW = Date.parse("2026-11-24T12:00:00Z");

function replicated(namespace: string, name: string, rpoSeconds: number, status?: VmReplicationStatus): VirtualMachine {
  const vm = vmObject(name);
  vm.metadata.namespace = namespace;
  vm.spec.replication = { targetCluster: "dr", rpoSeconds, instances: 2, networkMapping: [], keepMacAddresses: true };
  if (status) vm.status = { phase: "Running", replication: status };
  return vm;
}

const VMS: VirtualMachine[] = [
  // Synced 10 minutes ago with a 15-minute RPO: within it.
  replicated("shop", "web-1", 900, {
    state: "Replicating", targetCluster: "dr", datastore: "dr-ds1", rpoSeconds: 900, lastSyncTime: "2026-11-24T11:50:00Z",
    lastSyncDurationSeconds: 42.7, lastSyncMiB: 512.4, nextSyncTime: "2026-11-24T12:05:00Z", lagSeconds: 300, rpoViolated: false,
    instances: ["2026-11-24T11:35:00Z", "2026-11-24T11:50:00Z"],
  }),
  // Its status (written 1 h ago) says the RPO holds, but the replica is 2 h old now with a 1 h RPO.
  replicated("shop", "db-1", 3600, { state: "Replicating", targetCluster: "dr", rpoSeconds: 3600, lastSyncTime: "2026-11-24T10:00:00Z", lagSeconds: 3600, rpoViolated: false }),
  // Not reported on yet.
  replicated("lab", "build-1", 14400),
  // Not replicated: not listed.
  vmObject("cache-1"),
];

const PLAN: RecoveryPlan = {
  apiVersion: "vireo.dev/v1alpha1",
  kind: "RecoveryPlan",
  metadata: { name: "shop-dr", namespace: "shop", creationTimestamp: "2026-11-24T11:55:00Z" },
  spec: { selector: { matchLabels: { app: "shop" } }, action: "Failover", networkMapping: [] },
  status: { phase: "Running", step: "WaitingForReadiness", message: "1 of 2 VMs ready", startTime: "2026-11-24T11:56:00Z" },
};

const state = tempDir("get-replications");
after(() => state.remove());
writeFileSync(join(state.path, "objects.json"), JSON.stringify({ format: STATE_FORMAT, updatedAt: "2026-11-24T11:00:00Z", objects: [...VMS, PLAN].map((object) => ({ object })), manifestErrors: [] }));

async function vireoGet(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await get([...args, "--state-dir", state.path], { out: (t) => { out += `${t}\n`; }, err: (t) => { err += `${t}\n`; } }, NOW);
  return { code, out, err };
}

describe("vireo get replications", () => {
  it("lists the replicated VMs with their state, target, RPO, lag now, last sync point and RPO violation", async () => {
    const { code, out } = await vireoGet("replications");
    assert.equal(code, 0);
    assert.equal(out, [
      "NAMESPACE   NAME      STATE         TARGET   RPO   LAG   LAST SYNC              VIOLATED",
      "lab         build-1                 dr       4h                                 ",
      "shop        db-1      Replicating   dr       1h    2h    2026-11-24T10:00:00Z   true",
      "shop        web-1     Replicating   dr       15m   10m   2026-11-24T11:50:00Z   false",
      "",
    ].join("\n"));
  });

  it("shows the last sync's figures and the instances with -o wide, for one namespace by its alias", async () => {
    const { out } = await vireoGet("repl", "web-1", "-n", "shop", "-o", "wide");
    assert.equal(out, [
      "NAME    STATE         TARGET   RPO   LAG   LAST SYNC              VIOLATED   DATASTORE   SYNC DURATION   SYNC MIB   NEXT SYNC              INSTANCES",
      "web-1   Replicating   dr       15m   10m   2026-11-24T11:50:00Z   false      dr-ds1      42s             512        2026-11-24T12:05:00Z   2",
      "",
    ].join("\n"));
  });

  it("prints the rows as data with -o json", async () => {
    const { out } = await vireoGet("replications", "db-1", "-o", "json");
    assert.deepEqual(JSON.parse(out), { namespace: "shop", name: "db-1", state: "Replicating", targetCluster: "dr", rpoSeconds: 3600, lagSeconds: 7200, lastSyncTime: "2026-11-24T10:00:00Z", rpoViolated: true, instances: 0 });
  });

  it("says so when a VM is not replicated", async () => {
    const { code, err } = await vireoGet("replications", "cache-1");
    assert.equal(code, 1);
    assert.match(err, /replications "cache-1" not found/);
  });
});

describe("vireo get recoveryplans", () => {
  it("prints the CRD's columns, by plural or short name, and the message with -o wide", async () => {
    const plain = await vireoGet("recoveryplans");
    assert.equal(plain.out, [
      "NAMESPACE   NAME      ACTION     PHASE     STEP                  AGE",
      "shop        shop-dr   Failover   Running   WaitingForReadiness   5m",
      "",
    ].join("\n"));
    const wide = await vireoGet("rp", "-n", "shop", "-o", "wide");
    assert.equal(wide.out, [
      "NAME      ACTION     PHASE     STEP                  AGE   MESSAGE",
      "shop-dr   Failover   Running   WaitingForReadiness   5m    1 of 2 VMs ready",
      "",
    ].join("\n"));
  });
});

describe("rpoDuration", () => {
  it("says an RPO or a lag in its two largest units", () => {
    assert.deepEqual([0, 42.7, 300, 615, 3600, 5400, 14400, 86400, 90061].map(rpoDuration), ["0s", "42s", "5m", "10m15s", "1h", "1h30m", "4h", "1d", "1d1h"]);
  });
});
