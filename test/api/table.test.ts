import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { alignColumns, evaluateJsonPath, formatCell, formatTable, humanDuration, JsonPathError, parseJsonPath } from "../../controller/cli/table.ts";
import type { Host, HostCluster, VirtualMachine } from "../../controller/api/types.ts";

const NOW = Date.parse("2026-11-24T10:03:02Z");
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

function host(name: string, created: string, status?: Host["status"]): Host {
  return {
    apiVersion: "vireo.dev/v1alpha1",
    kind: "Host",
    metadata: { name, creationTimestamp: created },
    spec: { hypervisor: "esx", cpu: { cores: 32, vendor: "intel", features: [], overcommitRatio: 4 }, memoryMiB: 262144, datastores: [], networks: [], storagePaths: 2, maintenance: false },
    ...(status ? { status } : {}),
  };
}

function vm(namespace: string, name: string, ready?: "True" | "False"): VirtualMachine {
  return {
    apiVersion: "vireo.dev/v1alpha1",
    kind: "VirtualMachine",
    metadata: { name, namespace, creationTimestamp: "2026-11-24T10:00:00Z" },
    spec: { runStrategy: "Always", cpu: 4, memoryMiB: 16384, cpuFeatures: [], disks: [], networks: [], placement: { cluster: "prod" }, migration: { policy: "Live" } },
    status: {
      phase: "Running",
      host: "esx-01",
      conditions: ready
        ? [
          { type: "Placed", status: "True", reason: "Placed", message: "", lastTransitionTime: "2026-11-24T10:00:00Z" },
          { type: "Ready", status: ready, reason: "Running", message: "", lastTransitionTime: "2026-11-24T10:00:00Z" },
        ]
        : [],
    },
  };
}

describe("formatTable", () => {
  it("prints hosts with NAME first, the CRD's columns upper-cased, padded like kubectl, and empty cells for what status lacks", () => {
    const table = formatTable("Host", [
      host("esx-01", "2026-11-24T10:00:00Z", { cluster: "prod", phase: "Ready", allocated: { cpu: 12, memoryMiB: 49152 }, vmCount: 3 }),
      host("esx-02", "2026-11-22T08:00:00Z"),
    ], { now: NOW });
    assert.equal(table, [
      "NAME     CLUSTER   HYPERVISOR   PHASE   CPU-ALLOC   MEMORY-ALLOC   VMS   AGE",
      "esx-01   prod      esx          Ready   12          49152          3     3m2s",
      "esx-02             esx                                                   2d2h",
      "",
    ].join("\n"));
  });

  it("puts NAMESPACE first when asked for all namespaces, and reads Ready from the Ready condition", () => {
    const table = formatTable("VirtualMachine", [vm("shop", "db-1", "True"), vm("shop", "db-2", "False"), vm("qa", "web-1")], { now: NOW, allNamespaces: true });
    assert.equal(table, [
      "NAMESPACE   NAME    PHASE     HOST     CPU   MEMORY   READY   AGE",
      "shop        db-1    Running   esx-01   4     16384    True    3m2s",
      "shop        db-2    Running   esx-01   4     16384    False   3m2s",
      "qa          web-1   Running   esx-01   4     16384            3m2s",
      "",
    ].join("\n"));
  });

  it("shows a NAMESPACE column by itself only when the objects span several namespaces", () => {
    assert.match(formatTable("VirtualMachine", [vm("shop", "db-1")], { now: NOW }), /^NAME /);
    assert.match(formatTable("VirtualMachine", [vm("shop", "db-1"), vm("qa", "web-1")], { now: NOW }), /^NAMESPACE /);
    assert.match(formatTable("VirtualMachine", [vm("shop", "db-1"), vm("qa", "web-1")], { now: NOW, allNamespaces: false }), /^NAME /);
  });

  it("never shows a NAMESPACE column for cluster-scoped kinds", () => {
    assert.match(formatTable("Host", [host("esx-01", "2026-11-24T10:00:00Z")], { now: NOW, allNamespaces: true }), /^NAME /);
  });

  it("adds the priority columns with wide output, after AGE as kubectl orders them", () => {
    assert.equal(formatTable("VirtualMachine", [vm("shop", "db-1", "True")], { now: NOW, wide: true }), [
      "NAME   PHASE     HOST     CPU   MEMORY   READY   AGE    CLUSTER   RUNSTRATEGY   RESTARTS   REPLICATION   FT    SECONDARY",
      "db-1   Running   esx-01   4     16384    True    3m2s   prod      Always                                       ",
      "",
    ].join("\n"));
  });

  it("prints booleans of host clusters as kubectl does", () => {
    const cluster: HostCluster = {
      apiVersion: "vireo.dev/v1alpha1",
      kind: "HostCluster",
      metadata: { name: "prod", creationTimestamp: "2026-11-24T10:03:00Z" },
      spec: {
        hostSelector: { matchLabels: { "vireo.dev/cluster": "prod" } },
        placement: { strategy: "Spread" },
        ha: { enabled: true, failureDetectionSeconds: 15, admissionControl: { policy: "HostFailuresToTolerate", hostFailures: 1 } },
        balancing: { mode: "Manual", threshold: 3, intervalSeconds: 300, maxMigrationsPerHost: 2 },
        migration: { bandwidthMiBps: 128, downtimeLimitMs: 300, maxRounds: 30, noProgressTimeoutSeconds: 150, completionTimeoutPerGiBSeconds: 800, autoConverge: false, parallelMigrations: 5, parallelOutboundPerHost: 2 },
        replication: { bandwidthMiBps: 100 },
        faultTolerance: { maxVmsPerHost: 4, maxVcpusPerHost: 8, maxVcpusPerVm: 8, loggingBandwidthMiBps: 1192 },
      },
      status: { hostsReady: 3, hostsTotal: 4, vmsTotal: 12 },
    };
    assert.equal(formatTable("HostCluster", [cluster], { now: NOW }), [
      "NAME   READY-HOSTS   HOSTS   STRATEGY   HA     VMS   READY   AGE",
      "prod   3             4       Spread     true   12            2s",
      "",
    ].join("\n"));
  });

  it("prints nothing for no objects, leaving the 'No resources found' message to the caller", () => {
    assert.equal(formatTable("Host", [], { now: NOW }), "");
  });
});

describe("alignColumns", () => {
  it("gives every column but the last at least kubectl's minimum width of 6", () => {
    assert.equal(alignColumns([["A", "B", "C"], ["x", "yy", "z"]]), "A     B     C\nx     yy    z\n");
  });
});

describe("humanDuration", () => {
  const cases: [number, string][] = [
    [0, "0s"], [-1 * SECOND, "0s"], [-5 * SECOND, "<invalid>"], [5 * SECOND, "5s"], [119 * SECOND, "119s"],
    [2 * MINUTE, "2m"], [3 * MINUTE + 2 * SECOND, "3m2s"], [10 * MINUTE + 30 * SECOND, "10m"], [179 * MINUTE, "179m"],
    [3 * HOUR, "3h"], [3 * HOUR + 5 * MINUTE, "3h5m"], [8 * HOUR + 5 * MINUTE, "8h"], [47 * HOUR, "47h"],
    [2 * DAY, "2d"], [2 * DAY + 3 * HOUR, "2d3h"], [10 * DAY + 3 * HOUR, "10d"], [729 * DAY, "729d"],
    [730 * DAY, "2y"], [733 * DAY, "2y3d"], [9 * 365 * DAY, "9y"],
  ];
  for (const [ms, expected] of cases) {
    it(`prints ${ms} ms as ${expected}`, () => assert.equal(humanDuration(ms), expected));
  }
});

describe("formatCell", () => {
  it("prints a timestamp it cannot parse as <invalid>, and a value of the wrong type as an empty cell", () => {
    assert.equal(formatCell({ type: "date" }, "yesterday", NOW), "<invalid>");
    assert.equal(formatCell({ type: "integer" }, "three", NOW), "");
    assert.equal(formatCell({ type: "number" }, 1.5, NOW), "1.5");
    assert.equal(formatCell({ type: "integer" }, 7.9, NOW), "7");
  });
});

describe("JSONPath", () => {
  const object = { metadata: { labels: { "vireo.dev/cluster": "prod" } }, spec: { disks: [{ name: "root" }, { name: "data" }] }, status: { conditions: [{ type: "Placed", status: "True" }, { type: "Ready", status: "False" }] } };

  it("selects fields, indexes, every item and filtered items", () => {
    assert.deepEqual(evaluateJsonPath(".spec.disks[1].name", object), ["data"]);
    assert.deepEqual(evaluateJsonPath(".spec.disks[*].name", object), ["root", "data"]);
    assert.deepEqual(evaluateJsonPath('.status.conditions[?(@.type=="Ready")].status', object), ["False"]);
    assert.deepEqual(evaluateJsonPath('.status.conditions[?(@.type!="Ready")].type', object), ["Placed"]);
    assert.deepEqual(evaluateJsonPath("{.spec.disks[0].name}", object), ["root"]);
  });

  it("reads keys with escaped dots", () => {
    assert.deepEqual(evaluateJsonPath(".metadata.labels.vireo\\.dev/cluster", object), ["prod"]);
  });

  it("selects nothing where the object has nothing", () => {
    assert.deepEqual(evaluateJsonPath(".status.phase", object), []);
    assert.deepEqual(evaluateJsonPath(".spec.disks[5].name", object), []);
  });

  it("refuses syntax it does not understand", () => {
    assert.throws(() => parseJsonPath(".spec..disks"), JsonPathError);
    assert.throws(() => parseJsonPath(".spec.disks[?(@.size>1)]"), JsonPathError);
  });
});
