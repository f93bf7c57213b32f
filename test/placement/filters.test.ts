import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { HOST_LABEL } from "../../controller/api/types.ts";
import { hostsThatFit, placeBatch, unschedulableMessage } from "../../controller/placement/index.ts";
import type { CandidateHost, ClusterSnapshot, PlacedVm, VmRequest } from "../../controller/placement/index.ts";

const GiB = 1024;

function host(name: string, overrides: Partial<CandidateHost> = {}): CandidateHost {
  return {
    name,
    labels: { [HOST_LABEL]: name },
    hypervisor: "kvm",
    cpu: { cores: 16, vendor: "intel", features: ["sse4_2", "avx2"], overcommitRatio: 4 },
    memoryMiB: 64 * GiB,
    datastores: ["shared-ds1"],
    networks: ["prod"],
    ...overrides,
  };
}

function vm(id: string, overrides: Partial<VmRequest> = {}): VmRequest {
  return {
    id,
    namespace: "shop",
    labels: { app: "shop" },
    cpu: 2,
    memoryMiB: 4 * GiB,
    cpuFeatures: [],
    datastores: [],
    networks: [],
    placement: { cluster: "prod" },
    ...overrides,
  };
}

function placed(id: string, onHost: string, cpu: number, memoryMiB: number): PlacedVm {
  return { id, namespace: "shop", labels: { app: "other" }, host: onHost, cpu, memoryMiB };
}

function snapshot(hosts: CandidateHost[], extra: Partial<ClusterSnapshot> = {}): ClusterSnapshot {
  return { hosts, placed: [], strategy: "Spread", ...extra };
}

describe("placement filters", () => {
  it("keep VMs off hosts that are unavailable, counted under the host's own reason", () => {
    const fit = hostsThatFit(
      snapshot([host("h1", { unavailable: "in maintenance" }), host("h2", { unavailable: "not ready" }), host("h3")]),
      vm("web-1"),
    );
    assert.deepEqual(fit, { fits: ["h3"], rejected: { "in maintenance": 1, "not ready": 1 } });
  });

  it("reject hosts of another hypervisor, from the request or from its placement", () => {
    const hosts = [host("esx-1", { hypervisor: "esx" }), host("kvm-1")];
    assert.deepEqual(hostsThatFit(snapshot(hosts), vm("a", { hypervisor: "kvm" })), { fits: ["kvm-1"], rejected: { "hypervisor is not kvm": 1 } });
    assert.deepEqual(hostsThatFit(snapshot(hosts), vm("b", { placement: { cluster: "prod", hypervisor: "esx" } })), {
      fits: ["esx-1"],
      rejected: { "hypervisor is not esx": 1 },
    });
    assert.deepEqual(hostsThatFit(snapshot(hosts), vm("c")).fits.sort(), ["esx-1", "kvm-1"]);
  });

  it("reject hosts whose CPU vendor differs from the cluster baseline's", () => {
    const amd = host("amd-1", { cpu: { cores: 16, vendor: "amd", features: ["sse4_2", "avx2"], overcommitRatio: 4 } });
    const fit = hostsThatFit(snapshot([amd, host("intel-1")], { cpuBaseline: { vendor: "intel", features: ["sse4_2"] } }), vm("a"));
    assert.deepEqual(fit, { fits: ["intel-1"], rejected: { "CPU vendor is not intel": 1 } });
  });

  it("reject hosts missing a required CPU feature, naming the feature", () => {
    const old = host("old-1", { cpu: { cores: 16, vendor: "intel", features: ["sse4_2"], overcommitRatio: 4 } });
    const fit = hostsThatFit(snapshot([old, host("new-1")]), vm("a", { cpuFeatures: ["avx2"] }));
    assert.deepEqual(fit, { fits: ["new-1"], rejected: { "missing CPU feature avx2": 1 } });
  });

  it("reject every host when a VM requires a feature outside the cluster baseline", () => {
    const hosts = [host("h1", { unavailable: "in maintenance" }), host("h2"), host("h3")];
    const fit = hostsThatFit(snapshot(hosts, { cpuBaseline: { features: ["sse4_2"] } }), vm("a", { cpuFeatures: ["avx2", "sse4_2"] }));
    assert.deepEqual(fit, { fits: [], rejected: { "CPU feature avx2 is not in the cluster baseline": 3 } });
  });

  it("accept a VM requiring features within the baseline on hosts that have them", () => {
    const fit = hostsThatFit(snapshot([host("h1")], { cpuBaseline: { vendor: "intel", features: ["sse4_2", "avx2"] } }), vm("a", { cpuFeatures: ["avx2"] }));
    assert.deepEqual(fit, { fits: ["h1"], rejected: {} });
  });

  it("reject hosts that do not see a datastore or lack a network the VM uses", () => {
    const hosts = [host("h1", { datastores: ["ds-a"] }), host("h2", { datastores: ["ds-a", "ds-x"] }), host("h3", { datastores: ["ds-a", "ds-x"], networks: ["prod", "lab"] })];
    const fit = hostsThatFit(snapshot(hosts), vm("a", { datastores: ["ds-x", "ds-a"], networks: ["lab"] }));
    assert.deepEqual(fit, { fits: ["h3"], rejected: { "datastore ds-x not visible": 1, "network lab not available": 1 } });
  });

  it("never overcommit memory: a VM fits exactly the memory left, not a MiB more", () => {
    const hosts = [host("h1", { memoryMiB: 16 * GiB })];
    const s = snapshot(hosts, { placed: [placed("p1", "h1", 1, 12 * GiB)] });
    assert.deepEqual(hostsThatFit(s, vm("a", { memoryMiB: 4 * GiB })).fits, ["h1"]);
    assert.deepEqual(hostsThatFit(s, vm("a", { memoryMiB: 4 * GiB + 1 })).rejected, { "insufficient memory": 1 });
  });

  it("allow vCPUs up to cores × overcommit ratio and no further", () => {
    const hosts = [host("h1", { cpu: { cores: 4, vendor: "intel", features: [], overcommitRatio: 1.5 } })];
    const s = snapshot(hosts, { placed: [placed("p1", "h1", 4, GiB)] });
    assert.deepEqual(hostsThatFit(s, vm("a", { cpu: 2 })).fits, ["h1"]);
    assert.deepEqual(hostsThatFit(s, vm("a", { cpu: 3 })).rejected, { "insufficient cpu": 1 });
  });

  it("OR required host affinity terms and AND the requirements within a term", () => {
    const rack = (r: string, zone: string): Partial<CandidateHost> => ({ labels: { "topology.vireo.dev/rack": r, "topology.vireo.dev/zone": zone } });
    const hosts = [host("h1", rack("r1", "z1")), host("h2", rack("r2", "z1")), host("h3", rack("r3", "z2")), host("h4", rack("r4", "z3"))];
    const request = vm("db-1", {
      placement: {
        cluster: "prod",
        hostAffinity: {
          required: [
            { matchLabels: { "topology.vireo.dev/zone": "z1" }, matchExpressions: [{ key: "topology.vireo.dev/rack", operator: "In", values: ["r1", "r3"] }] },
            { matchExpressions: [{ key: "topology.vireo.dev/zone", operator: "In", values: ["z2"] }] },
          ],
        },
      },
    });
    const fit = hostsThatFit(snapshot(hosts), request);
    assert.deepEqual(fit.fits.sort(), ["h1", "h3"]);
    assert.deepEqual(fit.rejected, { "didn't match host affinity": 2 });
  });

  it("treat an empty required host affinity term as matching no host, like a nodeSelectorTerm", () => {
    const fit = hostsThatFit(snapshot([host("h1")]), vm("a", { placement: { cluster: "prod", hostAffinity: { required: [{}] } } }));
    assert.deepEqual(fit.rejected, { "didn't match host affinity": 1 });
  });

  it("match host affinity on vireo.dev/host even when a host's labels leave it out", () => {
    const bare = host("h2", { labels: {} });
    const request = vm("a", { placement: { cluster: "prod", hostAffinity: { required: [{ matchLabels: { [HOST_LABEL]: "h2" } }] } } });
    assert.deepEqual(hostsThatFit(snapshot([host("h1"), bare]), request).fits, ["h2"]);
  });

  it("count each host once, under the first reason that rejects it", () => {
    const broken = host("h1", { unavailable: "in maintenance", hypervisor: "esx", memoryMiB: 1 });
    const small = host("h2", { hypervisor: "esx", memoryMiB: 1 });
    const fit = hostsThatFit(snapshot([broken, small, host("h3", { memoryMiB: 1 })]), vm("a", { hypervisor: "kvm" }));
    assert.deepEqual(fit.rejected, { "in maintenance": 1, "hypervisor is not kvm": 1, "insufficient memory": 1 });
  });

  it("ignore a placed VM whose host is not in the snapshot", () => {
    const s = snapshot([host("h1", { memoryMiB: 8 * GiB })], { placed: [placed("p1", "gone", 1, 8 * GiB)] });
    assert.deepEqual(hostsThatFit(s, vm("a", { memoryMiB: 8 * GiB })).fits, ["h1"]);
  });

  it("do not let a VM being moved compete with its own current allocation", () => {
    const s = snapshot([host("h1", { memoryMiB: 8 * GiB })], { placed: [placed("web-1", "h1", 2, 8 * GiB)] });
    assert.deepEqual(hostsThatFit(s, vm("web-1", { memoryMiB: 8 * GiB })).fits, ["h1"]);
    assert.deepEqual(hostsThatFit(s, vm("web-2", { memoryMiB: 8 * GiB })).fits, []);
  });
});

describe("unschedulable messages", () => {
  it("read like kube-scheduler's: count first, most common reason first", () => {
    assert.equal(
      unschedulableMessage(12, { "in maintenance": 2, "insufficient memory": 7, "missing CPU feature avx512f": 3 }),
      "0/12 hosts fit: 7 insufficient memory, 3 missing CPU feature avx512f, 2 in maintenance",
    );
  });

  it("order reasons of equal count by name", () => {
    assert.equal(unschedulableMessage(4, { "network lab not available": 2, "insufficient cpu": 2 }), "0/4 hosts fit: 2 insufficient cpu, 2 network lab not available");
  });

  it("say so when the cluster has no hosts", () => {
    const plan = placeBatch(snapshot([]), [vm("a")]);
    assert.deepEqual(plan.unschedulable, [{ vm: "a", message: "0/0 hosts fit: the cluster has no hosts", reasons: {} }]);
  });

  it("explain a VM that fits nowhere with the reasons of every host", () => {
    const fast = { cores: 16, vendor: "intel" as const, features: ["avx512f"], overcommitRatio: 4 };
    const hosts = [
      ...["h01", "h02", "h03", "h04", "h05", "h06", "h07"].map((n) => host(n, { cpu: fast, memoryMiB: 8 * GiB })),
      ...["h08", "h09", "h10"].map((n) => host(n)),
      ...["h11", "h12"].map((n) => host(n, { cpu: fast, unavailable: "in maintenance" })),
    ];
    const plan = placeBatch(snapshot(hosts), [vm("big", { memoryMiB: 16 * GiB, cpuFeatures: ["avx512f"] })]);
    assert.deepEqual(plan.placements, []);
    assert.deepEqual(plan.unschedulable, [
      {
        vm: "big",
        message: "0/12 hosts fit: 7 insufficient memory, 3 missing CPU feature avx512f, 2 in maintenance",
        reasons: { "insufficient memory": 7, "missing CPU feature avx512f": 3, "in maintenance": 2 },
      },
    ]);
  });

  it("keep a reason named like an object property as a plain key", () => {
    const plan = placeBatch(snapshot([host("h1", { unavailable: "__proto__" })]), [vm("a")]);
    assert.equal(plan.unschedulable[0]?.message, "0/1 hosts fit: 1 __proto__");
    assert.deepEqual(Object.keys(plan.unschedulable[0]?.reasons ?? {}), ["__proto__"]);
  });
});
