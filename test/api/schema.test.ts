import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { load } from "js-yaml";
import { parseManifestFile } from "../../controller/sources/files/manifests.ts";
import { validateManifest, formatFieldErrors } from "../../controller/api/schema.ts";
import type { FieldError } from "../../controller/api/schema.ts";
import type { Host, HostCluster, VirtualMachine } from "../../controller/api/types.ts";

// The DESIGN.md §7 examples (VM networks written as objects, as types.ts declares them).
const HOST = `
apiVersion: vireo.dev/v1alpha1
kind: Host
metadata:
  name: esx-01
  labels: {vireo.dev/cluster: prod, topology.vireo.dev/rack: r1}
spec:
  hypervisor: esx
  cpu: {cores: 32, vendor: intel, model: cascadelake, features: [sse4_2, avx2, avx512f], overcommitRatio: 4}
  memoryMiB: 262144
  datastores: [shared-ds1, local-esx-01]
  networks: [prod, lab]
  storagePaths: 2
  maintenance: false
`;

const HOST_CLUSTER = `
apiVersion: vireo.dev/v1alpha1
kind: HostCluster
metadata: {name: prod}
spec:
  hostSelector: {matchLabels: {vireo.dev/cluster: prod}}
  cpuBaseline: {vendor: intel, features: [sse4_2, avx2]}
  placement: {strategy: Spread}
  ha:
    enabled: true
    failureDetectionSeconds: 15
    admissionControl: {policy: HostFailuresToTolerate, hostFailures: 1}
  balancing: {mode: Automatic, threshold: 3, intervalSeconds: 300, maxMigrationsPerHost: 2}
`;

const VM = `
apiVersion: vireo.dev/v1alpha1
kind: VirtualMachine
metadata:
  name: db-1
  namespace: shop
  labels: {app: shop, tier: db}
spec:
  runStrategy: Always
  cpu: 4
  memoryMiB: 16384
  cpuFeatures: [avx2]
  disks: [{name: root, sizeGiB: 80, datastore: shared-ds1}]
  networks: [{name: prod}]
  placement:
    cluster: prod
    hostAffinity:
      required: [{matchExpressions: [{key: topology.vireo.dev/rack, operator: In, values: [r1, r2]}]}]
    vmAntiAffinity:
      required: [{labelSelector: {matchLabels: {tier: db}}, topologyKey: vireo.dev/host}]
  migration: {policy: Live}
  replication: {targetCluster: dr, rpoSeconds: 300}
  lease: {ttl: 720h, onExpiry: Stop}
status:
  phase: Running
  host: esx-01
  observedGeneration: 3
  conditions:
  - {type: Ready, status: "True", reason: Running, lastTransitionTime: "2026-11-24T10:00:00Z", observedGeneration: 3}
`;

type Doc = Record<string, any>;

function doc(yaml: string): Doc {
  return load(yaml) as Doc;
}

/** The example with one change applied. */
function changed(yaml: string, change: (d: Doc) => void): Doc {
  const d = doc(yaml);
  change(d);
  return d;
}

function accepted(input: unknown): Doc {
  const result = validateManifest(input);
  if (!result.ok) assert.fail(`expected the manifest to be accepted, got:\n${formatFieldErrors(result.errors)}`);
  return result.object as unknown as Doc;
}

function refused(input: unknown): FieldError[] {
  const result = validateManifest(input);
  assert.equal(result.ok, false, "expected the manifest to be refused");
  return result.ok ? [] : result.errors;
}

/** Asserts that the manifest is refused with an error at exactly `path` whose message contains `message`. */
function refusedAt(input: unknown, path: string, message: string): void {
  const errors = refused(input);
  const hit = errors.find((e) => e.path === path && e.message.includes(message));
  assert.ok(hit, `expected an error at ${JSON.stringify(path)} containing ${JSON.stringify(message)}, got:\n${formatFieldErrors(errors)}`);
}

describe("Host manifests", () => {
  it("accepts the DESIGN.md example unchanged", () => {
    const host = accepted(doc(HOST)) as Host;
    assert.equal(host.spec.cpu.overcommitRatio, 4);
    assert.deepEqual(host.spec.datastores, ["shared-ds1", "local-esx-01"]);
    assert.equal(host.metadata.namespace, undefined);
  });

  it("fills in the defaults of every optional field", () => {
    const host = accepted(doc(`
apiVersion: vireo.dev/v1alpha1
kind: Host
metadata: {name: kvm-7}
spec: {hypervisor: kvm, cpu: {cores: 16, vendor: amd}, memoryMiB: 65536}
`)) as Host;
    assert.deepEqual(host.spec, {
      hypervisor: "kvm",
      cpu: { cores: 16, vendor: "amd", features: [], overcommitRatio: 4 },
      memoryMiB: 65536,
      datastores: [],
      networks: [],
      storagePaths: 2,
      maintenance: false,
    });
  });

  it("drops a namespace given to the cluster-scoped kind, as the API server does", () => {
    const host = accepted(changed(HOST, (d) => { d.metadata.namespace = "shop"; }));
    assert.equal(host.metadata.namespace, undefined);
  });

  it("refuses a missing memoryMiB", () => refusedAt(changed(HOST, (d) => { delete d.spec.memoryMiB; }), "spec.memoryMiB", "Required value"));
  it("refuses zero memory", () => refusedAt(changed(HOST, (d) => { d.spec.memoryMiB = 0; }), "spec.memoryMiB", "Invalid value: 0: spec.memoryMiB in body should be greater than or equal to 1"));
  it("refuses negative memory", () => refusedAt(changed(HOST, (d) => { d.spec.memoryMiB = -1; }), "spec.memoryMiB", "greater than or equal to 1"));
  it("refuses an unknown hypervisor", () => refusedAt(changed(HOST, (d) => { d.spec.hypervisor = "vmware"; }), "spec.hypervisor", 'Unsupported value: "vmware": supported values: "esx", "hyperv", "kvm", "xen"'));
  it("refuses a string where cores are a number", () => refusedAt(changed(HOST, (d) => { d.spec.cpu.cores = "32"; }), "spec.cpu.cores", 'Invalid value: "string": spec.cpu.cores in body must be of type integer: "string"'));
  it("refuses an unknown field", () => refusedAt(changed(HOST, (d) => { d.spec.gpus = 2; }), "spec.gpus", "field not declared in schema"));
  it("refuses an overcommit ratio above 32", () => refusedAt(changed(HOST, (d) => { d.spec.cpu.overcommitRatio = 64; }), "spec.cpu.overcommitRatio", "should be less than or equal to 32"));
  it("refuses a CPU feature listed twice", () => refusedAt(changed(HOST, (d) => { d.spec.cpu.features.push("avx2"); }), "spec.cpu.features[3]", 'Duplicate value: "avx2"'));
  it("refuses a datastore name that is not a DNS label", () => refusedAt(changed(HOST, (d) => { d.spec.datastores = ["Shared_DS"]; }), "spec.datastores[0]", "should match"));
  it("refuses more datastores than the schema allows", () => refusedAt(changed(HOST, (d) => { d.spec.datastores = Array.from({ length: 65 }, (_, i) => `ds-${i}`); }), "spec.datastores", "Too many: 65: must have at most 64 items"));
  it("refuses zero storage paths", () => refusedAt(changed(HOST, (d) => { d.spec.storagePaths = 0; }), "spec.storagePaths", "greater than or equal to 1"));
  it("refuses a name that is not a DNS subdomain", () => refusedAt(changed(HOST, (d) => { d.metadata.name = "ESX_01"; }), "metadata.name", "a lowercase RFC 1123 subdomain"));
  it("refuses a missing name", () => refusedAt(changed(HOST, (d) => { delete d.metadata.name; }), "metadata.name", "Required value"));
  it("refuses a name too long to be the value of the vireo.dev/host label (CEL rule on the root)", () =>
    refusedAt(changed(HOST, (d) => { d.metadata.name = `esx-${"a".repeat(60)}`; }), "", "at most 63 characters"));
  it("refuses the wrong apiVersion", () => refusedAt(changed(HOST, (d) => { d.apiVersion = "vireo.dev/v1"; }), "apiVersion", 'no matches for kind "Host" in version "vireo.dev/v1"'));
  it("refuses an unknown kind", () => refusedAt(changed(HOST, (d) => { d.kind = "Hypervisor"; }), "kind", 'no matches for kind "Hypervisor"'));
  it("refuses a bad label value", () => refusedAt(changed(HOST, (d) => { d.metadata.labels.rack = "rack 1"; }), "metadata.labels", "a valid label must be an empty string"));
});

describe("HostCluster manifests", () => {
  it("accepts the DESIGN.md example unchanged", () => {
    const cluster = accepted(doc(HOST_CLUSTER)) as HostCluster;
    assert.equal(cluster.spec.balancing.mode, "Automatic");
    assert.deepEqual(cluster.spec.cpuBaseline, { vendor: "intel", features: ["sse4_2", "avx2"] });
  });

  it("fills in placement, HA and balancing defaults", () => {
    const cluster = accepted(doc(`
apiVersion: vireo.dev/v1alpha1
kind: HostCluster
metadata: {name: lab}
spec: {hostSelector: {matchLabels: {vireo.dev/cluster: lab}}}
`)) as HostCluster;
    assert.deepEqual(cluster.spec, {
      hostSelector: { matchLabels: { "vireo.dev/cluster": "lab" } },
      placement: { strategy: "Spread" },
      ha: { enabled: true, failureDetectionSeconds: 15, admissionControl: { policy: "HostFailuresToTolerate", hostFailures: 1 } },
      balancing: { mode: "Manual", threshold: 3, intervalSeconds: 300, maxMigrationsPerHost: 2 },
      migration: { bandwidthMiBps: 128, downtimeLimitMs: 300, maxRounds: 30, noProgressTimeoutSeconds: 150, completionTimeoutPerGiBSeconds: 800, autoConverge: false, parallelMigrations: 5, parallelOutboundPerHost: 2 },
      replication: { bandwidthMiBps: 100 },
      faultTolerance: { maxVmsPerHost: 4, maxVcpusPerHost: 8, maxVcpusPerVm: 8, loggingBandwidthMiBps: 1192 },
    });
  });

  it("fills in the baseline's features inside a given cpuBaseline", () => {
    const cluster = accepted(changed(HOST_CLUSTER, (d) => { d.spec.cpuBaseline = { vendor: "amd" }; })) as HostCluster;
    assert.deepEqual(cluster.spec.cpuBaseline, { vendor: "amd", features: [] });
  });

  it("accepts each admission control policy with its own fields", () => {
    accepted(changed(HOST_CLUSTER, (d) => { d.spec.ha.admissionControl = { policy: "ReservedPercentage", cpuPercent: 25, memoryPercent: 30 }; }));
    accepted(changed(HOST_CLUSTER, (d) => { d.spec.ha.admissionControl = { policy: "DedicatedFailoverHosts", failoverHosts: ["esx-09"] }; }));
    accepted(changed(HOST_CLUSTER, (d) => { d.spec.ha.admissionControl = { policy: "Disabled" }; }));
  });

  it("refuses a missing host selector", () => refusedAt(changed(HOST_CLUSTER, (d) => { delete d.spec.hostSelector; }), "spec.hostSelector", "Required value"));
  it("refuses a balancing threshold above 5", () => refusedAt(changed(HOST_CLUSTER, (d) => { d.spec.balancing.threshold = 6; }), "spec.balancing.threshold", "Invalid value: 6: spec.balancing.threshold in body should be less than or equal to 5"));
  it("refuses a balancing threshold of 0", () => refusedAt(changed(HOST_CLUSTER, (d) => { d.spec.balancing.threshold = 0; }), "spec.balancing.threshold", "greater than or equal to 1"));
  it("names balancing's off state Disabled: a plain `mode: Off` is YAML 1.1's false, as kubectl reads it, and refused with the field path", () => {
    const manifest = (mode: string) => `apiVersion: vireo.dev/v1alpha1\nkind: HostCluster\nmetadata: {name: lab}\nspec: {hostSelector: {matchLabels: {vireo.dev/cluster: lab}}, balancing: {mode: ${mode}}}\n`;
    const off = parseManifestFile("lab.yaml", manifest("Off"));
    assert.equal(off.ok, false);
    assert.ok(!off.ok && off.errors.some((e) => e.path === "spec.balancing.mode" && /boolean/.test(e.message)), JSON.stringify(off));
    const disabled = parseManifestFile("lab.yaml", manifest("Disabled"));
    assert.ok(disabled.ok && (disabled.documents[0]!.object as HostCluster).spec.balancing.mode === "Disabled");
  });
  it("refuses an unknown balancing mode", () => refusedAt(changed(HOST_CLUSTER, (d) => { d.spec.balancing.mode = "Aggressive"; }), "spec.balancing.mode", 'Unsupported value: "Aggressive": supported values: "Disabled", "Manual", "Automatic"'));
  it("refuses a duration string where seconds are a number", () => refusedAt(changed(HOST_CLUSTER, (d) => { d.spec.ha.failureDetectionSeconds = "15s"; }), "spec.ha.failureDetectionSeconds", "must be of type integer"));
  it("refuses an unknown field under ha", () => refusedAt(changed(HOST_CLUSTER, (d) => { d.spec.ha.restartPriority = "High"; }), "spec.ha.restartPriority", "field not declared in schema"));
  it("requires hostFailures with HostFailuresToTolerate", () =>
    refusedAt(changed(HOST_CLUSTER, (d) => { delete d.spec.ha.admissionControl.hostFailures; }), "spec.ha.admissionControl.hostFailures", "Required value: hostFailures is required when policy is HostFailuresToTolerate"));
  it("forbids hostFailures with another policy", () =>
    refusedAt(changed(HOST_CLUSTER, (d) => { d.spec.ha.admissionControl = { policy: "ReservedPercentage", cpuPercent: 10, memoryPercent: 10, hostFailures: 1 }; }), "spec.ha.admissionControl.hostFailures", "Forbidden: hostFailures may only be set when policy is HostFailuresToTolerate"));
  it("requires both percentages with ReservedPercentage", () =>
    refusedAt(changed(HOST_CLUSTER, (d) => { d.spec.ha.admissionControl = { policy: "ReservedPercentage", cpuPercent: 10 }; }), "spec.ha.admissionControl.memoryPercent", "Required value"));
  it("requires failover hosts with DedicatedFailoverHosts", () =>
    refusedAt(changed(HOST_CLUSTER, (d) => { d.spec.ha.admissionControl = { policy: "DedicatedFailoverHosts" }; }), "spec.ha.admissionControl.failoverHosts", "Required value"));
  it("refuses an empty list of failover hosts", () =>
    refusedAt(changed(HOST_CLUSTER, (d) => { d.spec.ha.admissionControl = { policy: "DedicatedFailoverHosts", failoverHosts: [] }; }), "spec.ha.admissionControl.failoverHosts", "should have at least 1 items"));
  it("refuses an admission control without a policy", () => refusedAt(changed(HOST_CLUSTER, (d) => { d.spec.ha.admissionControl = { hostFailures: 1 }; }), "spec.ha.admissionControl.policy", "Required value"));
  it("refuses an In requirement without values", () =>
    refusedAt(changed(HOST_CLUSTER, (d) => { d.spec.hostSelector = { matchExpressions: [{ key: "vireo.dev/cluster", operator: "In" }] }; }), "spec.hostSelector.matchExpressions[0].values", "values must be non-empty when operator is In or NotIn"));
  it("refuses an unknown placement strategy", () => refusedAt(changed(HOST_CLUSTER, (d) => { d.spec.placement.strategy = "Random"; }), "spec.placement.strategy", 'Unsupported value: "Random"'));
  it("refuses a baseline with too many features", () =>
    refusedAt(changed(HOST_CLUSTER, (d) => { d.spec.cpuBaseline.features = Array.from({ length: 129 }, (_, i) => `f${i}`); }), "spec.cpuBaseline.features", "must have at most 128 items"));
  it("refuses a label value in the selector that is not a label value", () =>
    refusedAt(changed(HOST_CLUSTER, (d) => { d.spec.hostSelector.matchLabels["vireo.dev/cluster"] = "prod cluster"; }), "spec.hostSelector.matchLabels.vireo.dev/cluster", "should match"));
});

describe("VirtualMachine manifests", () => {
  it("accepts the DESIGN.md example and ignores its status, as the API server does on create", () => {
    const vm = accepted(doc(VM)) as VirtualMachine;
    assert.equal(vm.status, undefined);
    assert.equal(vm.metadata.namespace, "shop");
    assert.deepEqual(vm.spec.replication, { targetCluster: "dr", rpoSeconds: 300, instances: 0, networkMapping: [], keepMacAddresses: true });
  });

  it("fills in run strategy, lists, migration policy and the namespace", () => {
    const vm = accepted(doc(`
apiVersion: vireo.dev/v1alpha1
kind: VirtualMachine
metadata: {name: web-1}
spec: {cpu: 2, memoryMiB: 4096, placement: {cluster: prod}}
`)) as VirtualMachine;
    assert.equal(vm.metadata.namespace, "default");
    assert.deepEqual(vm.spec, {
      runStrategy: "Always",
      cpu: 2,
      memoryMiB: 4096,
      cpuFeatures: [],
      disks: [],
      networks: [],
      placement: { cluster: "prod" },
      migration: { policy: "Live" },
    });
  });

  it("fills in defaults inside optional objects that are given", () => {
    const vm = accepted(changed(VM, (d) => {
      d.spec.replication = { targetCluster: "dr" };
      d.spec.lease = { ttl: "8h" };
      d.spec.workload = {};
    })) as VirtualMachine;
    assert.deepEqual(vm.spec.replication, { targetCluster: "dr", rpoSeconds: 14400, instances: 0, networkMapping: [], keepMacAddresses: true });
    assert.deepEqual(vm.spec.lease, { ttl: "8h", onExpiry: "Stop" });
    assert.deepEqual(vm.spec.workload, { profile: "Steady", cpuPercent: 20 });
  });

  it("does not modify the manifest it is given", () => {
    const input = doc(VM);
    const before = structuredClone(input);
    validateManifest(input);
    assert.deepEqual(input, before);
  });

  it("accepts distinct unicast MAC addresses", () => {
    accepted(changed(VM, (d) => { d.spec.networks = [{ name: "prod", macAddress: "02:00:00:00:00:01" }, { name: "lab", macAddress: "02:00:00:00:00:02" }]; }));
  });

  it("refuses a missing vCPU count", () => refusedAt(changed(VM, (d) => { delete d.spec.cpu; }), "spec.cpu", "Required value"));
  it("refuses zero memory", () => refusedAt(changed(VM, (d) => { d.spec.memoryMiB = 0; }), "spec.memoryMiB", "Invalid value: 0: spec.memoryMiB in body should be greater than or equal to 1"));
  it("refuses negative memory", () => refusedAt(changed(VM, (d) => { d.spec.memoryMiB = -1024; }), "spec.memoryMiB", "Invalid value: -1024"));
  it("refuses an unknown run strategy", () =>
    refusedAt(changed(VM, (d) => { d.spec.runStrategy = "Sometimes"; }), "spec.runStrategy", 'Unsupported value: "Sometimes": supported values: "Always", "RerunOnFailure", "Once", "Manual", "Halted"'));
  it("refuses a string where vCPUs are a number", () => refusedAt(changed(VM, (d) => { d.spec.cpu = "4"; }), "spec.cpu", 'Invalid value: "string": spec.cpu in body must be of type integer: "string"'));
  it("refuses a fractional vCPU count", () => refusedAt(changed(VM, (d) => { d.spec.cpu = 1.5; }), "spec.cpu", 'must be of type integer: "number"'));
  it("refuses an unknown field", () => refusedAt(changed(VM, (d) => { d.spec.foo = "bar"; }), "spec.foo", "field not declared in schema"));
  it("refuses replication into the VM's own cluster (cross-field CEL rule)", () =>
    refusedAt(changed(VM, (d) => { d.spec.replication.targetCluster = "prod"; }), "spec.replication.targetCluster", "Invalid value: replication.targetCluster must differ from placement.cluster"));
  it("refuses an upper-case MAC address", () =>
    refusedAt(changed(VM, (d) => { d.spec.networks[0].macAddress = "AA:BB:CC:DD:EE:FF"; }), "spec.networks[0].macAddress", "should match '^([0-9a-f]{2}:){5}[0-9a-f]{2}$'"));
  it("refuses a multicast MAC address", () =>
    refusedAt(changed(VM, (d) => { d.spec.networks[0].macAddress = "01:00:5e:00:00:01"; }), "spec.networks[0].macAddress", 'Invalid value: "01:00:5e:00:00:01": macAddress must be a unicast address'));
  it("refuses the same MAC address on two networks", () =>
    refusedAt(changed(VM, (d) => { d.spec.networks = [{ name: "prod", macAddress: "02:00:00:00:00:01" }, { name: "lab", macAddress: "02:00:00:00:00:01" }]; }), "spec.networks", "Invalid value: each macAddress must be unique within the VM"));
  it("refuses more disks than the schema allows", () =>
    refusedAt(changed(VM, (d) => { d.spec.disks = Array.from({ length: 33 }, (_, i) => ({ name: `d${i}`, sizeGiB: 1, datastore: "ds" })); }), "spec.disks", "Too many: 33: must have at most 32 items"));
  it("refuses two disks with the same name", () =>
    refusedAt(changed(VM, (d) => { d.spec.disks.push({ name: "root", sizeGiB: 10, datastore: "shared-ds1" }); }), "spec.disks[1]", 'Duplicate value: {"name":"root"}'));
  it("refuses a disk of zero GiB", () => refusedAt(changed(VM, (d) => { d.spec.disks[0].sizeGiB = 0; }), "spec.disks[0].sizeGiB", "Invalid value: 0: spec.disks[0].sizeGiB in body should be greater than or equal to 1"));
  it("refuses an empty topology key", () =>
    refusedAt(changed(VM, (d) => { d.spec.placement.vmAntiAffinity.required[0].topologyKey = ""; }), "spec.placement.vmAntiAffinity.required[0].topologyKey", "should be at least 1 chars long"));
  it("refuses an empty host affinity term", () =>
    refusedAt(changed(VM, (d) => { d.spec.placement.hostAffinity.required = [{}]; }), "spec.placement.hostAffinity.required[0]", "Required value: a host affinity term must set matchLabels or matchExpressions"));
  it("refuses Exists with values", () =>
    refusedAt(changed(VM, (d) => { d.spec.placement.hostAffinity.required[0].matchExpressions[0] = { key: "rack", operator: "Exists", values: ["r1"] }; }),
      "spec.placement.hostAffinity.required[0].matchExpressions[0].values", "empty when operator is Exists or DoesNotExist"));
  it("refuses a missing placement cluster", () => refusedAt(changed(VM, (d) => { delete d.spec.placement.cluster; }), "spec.placement.cluster", "Required value"));
  it("refuses a lease TTL that is not a duration", () => refusedAt(changed(VM, (d) => { d.spec.lease.ttl = "forever"; }), "spec.lease.ttl", "should match"));
  it("refuses an RPO below 5 minutes", () => refusedAt(changed(VM, (d) => { d.spec.replication.rpoSeconds = 60; }), "spec.replication.rpoSeconds", "greater than or equal to 300"));
  it("refuses a name that is not a DNS subdomain", () => refusedAt(changed(VM, (d) => { d.metadata.name = "DB_1"; }), "metadata.name", "a lowercase RFC 1123 subdomain"));
  it("refuses a namespace that is not a DNS label", () => refusedAt(changed(VM, (d) => { d.metadata.namespace = "Shop.Prod"; }), "metadata.namespace", "a lowercase RFC 1123 label"));
  it("refuses an unknown metadata field", () => refusedAt(changed(VM, (d) => { d.metadata.owner = "alice"; }), "metadata.owner", "field not declared in schema"));
  it("refuses a plural kind", () => refusedAt(changed(VM, (d) => { d.kind = "VirtualMachines"; }), "kind", 'no matches for kind "VirtualMachines" in version "vireo.dev/v1alpha1"'));
  it("refuses a missing apiVersion", () => refusedAt(changed(VM, (d) => { delete d.apiVersion; }), "apiVersion", "Required value"));
  it("refuses a manifest without spec", () => refusedAt(changed(VM, (d) => { delete d.spec; }), "spec", "Required value"));

  it("reports every mistake of a manifest at once", () => {
    const errors = refused(changed(VM, (d) => {
      d.spec.memoryMiB = 0;
      d.spec.runStrategy = "Sometimes";
      d.spec.bogus = true;
    }));
    assert.deepEqual(errors.map((e) => e.path).sort(), ["", "spec.bogus", "spec.memoryMiB", "spec.runStrategy"]);
  });

  it("skips CEL rules after an error that breaks the object's shape, and says so, as the API server does", () => {
    const errors = refused(changed(VM, (d) => {
      d.spec.runStrategy = "Sometimes";
      d.spec.replication.targetCluster = "prod";
    }));
    assert.equal(errors.some((e) => e.path === "spec.replication.targetCluster"), false);
    assert.deepEqual(errors.at(-1), { path: "", message: "Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation" });
  });

  it("still checks CEL rules beside a value out of range, as the API server does", () => {
    const errors = refused(changed(VM, (d) => {
      d.spec.memoryMiB = 0;
      d.spec.replication.targetCluster = "prod";
    }));
    assert.deepEqual(errors.map((e) => e.path).sort(), ["spec.memoryMiB", "spec.replication.targetCluster"]);
  });

  it("reports only the first failing string check of a field, as the API server does", () => {
    const errors = refused(changed(VM, (d) => { d.spec.placement.vmAntiAffinity.required[0].topologyKey = ""; }));
    assert.equal(errors.filter((e) => e.path === "spec.placement.vmAntiAffinity.required[0].topologyKey").length, 1);
  });

  it("refuses an unknown field in status although it ignores status otherwise", () =>
    refusedAt(changed(VM, (d) => { d.status.foo = 1; }), "status.foo", "field not declared in schema"));
});

describe("non-object manifests", () => {
  it("refuses a document that is not an object", () => {
    assert.deepEqual(refused("just a string"), [{ path: "", message: 'Invalid value: "string": a manifest must be an object' }]);
  });
});
