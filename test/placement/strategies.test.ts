import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { HOST_LABEL } from "../../controller/api/types.ts";
import type { PlacementStrategy, VmPlacement } from "../../controller/api/types.ts";
import { batchOrder, hostsThatFit, placeBatch } from "../../controller/placement/index.ts";
import type { CandidateHost, ClusterSnapshot, PlacedVm, VmRequest } from "../../controller/placement/index.ts";

const GiB = 1024;

function host(name: string, memoryGiB = 64, cores = 16, labels: Record<string, string> = {}): CandidateHost {
  return {
    name,
    labels: { [HOST_LABEL]: name, ...labels },
    hypervisor: "kvm",
    cpu: { cores, vendor: "intel", features: [], overcommitRatio: 4 },
    memoryMiB: memoryGiB * GiB,
    datastores: [],
    networks: [],
  };
}

function vm(id: string, cpu: number, memoryGiB: number, placement: Partial<VmPlacement> = {}): VmRequest {
  return {
    id,
    namespace: "shop",
    labels: { app: id.split("-")[0] ?? id },
    cpu,
    memoryMiB: memoryGiB * GiB,
    cpuFeatures: [],
    datastores: [],
    networks: [],
    placement: { cluster: "prod", ...placement },
  };
}

function running(id: string, onHost: string, cpu: number, memoryGiB: number): PlacedVm {
  return { id, namespace: "shop", labels: {}, host: onHost, cpu, memoryMiB: memoryGiB * GiB };
}

function cluster(strategy: PlacementStrategy, hosts: CandidateHost[], placed: PlacedVm[] = []): ClusterSnapshot {
  return { hosts, placed, strategy };
}

function hostOf(plan: ReturnType<typeof placeBatch>, id: string): string | undefined {
  return plan.placements.find((p) => p.vm === id)?.host;
}

describe("Spread", () => {
  it("places a VM on the host whose scarcer resource stays least used", () => {
    // h1: memory half used, vCPUs idle; h2: both resources 40 % used. The busiest resource decides: h2.
    const s = cluster("Spread", [host("h1"), host("h2")], [running("a", "h1", 1, 32), running("b", "h2", 25, 25)]);
    assert.equal(hostOf(placeBatch(s, [vm("web-1", 1, 1)]), "web-1"), "h2");
  });

  it("counts vCPUs against cores × overcommit ratio when judging load", () => {
    // Both hosts run 24 vCPUs; h1 has 16 cores × 4, h2 8 cores × 4, so h2 is the busier.
    const s = cluster("Spread", [host("h2", 64, 8), host("h1", 64, 16)], [running("a", "h1", 24, 1), running("b", "h2", 24, 1)]);
    assert.equal(hostOf(placeBatch(s, [vm("web-1", 1, 1)]), "web-1"), "h1");
  });

  it("spreads equal VMs evenly over equal hosts", () => {
    const s = cluster("Spread", [host("h1"), host("h2"), host("h3")]);
    const plan = placeBatch(s, Array.from({ length: 9 }, (_, i) => vm(`web-${i}`, 2, 4)));
    const perHost = new Map<string, number>();
    for (const p of plan.placements) perHost.set(p.host, (perHost.get(p.host) ?? 0) + 1);
    assert.deepEqual([...perHost.values()], [3, 3, 3]);
  });

  it("breaks ties by host name", () => {
    const s = cluster("Spread", [host("h3"), host("h1"), host("h2")]);
    assert.equal(hostOf(placeBatch(s, [vm("web-1", 1, 1)]), "web-1"), "h1");
  });
});

describe("Pack", () => {
  it("fills the fullest host that still fits, leaving others empty", () => {
    const s = cluster("Pack", [host("h1"), host("h2"), host("h3")], [running("a", "h2", 4, 40), running("b", "h3", 4, 20)]);
    assert.equal(hostOf(placeBatch(s, [vm("web-1", 2, 8)]), "web-1"), "h2");
    assert.equal(hostOf(placeBatch(s, [vm("web-1", 2, 30)]), "web-1"), "h3", "h2 has only 24 GiB left");
  });

  it("prefers the host left with the least room in both resources over the one fullest in one", () => {
    // After the VM: h1 would be 91 % cpu but only 55 % memory; h2 84 % memory and 59 % cpu — less room left in all.
    const s = cluster("Pack", [host("h1"), host("h2")], [running("a", "h1", 54, 31), running("b", "h2", 34, 50)]);
    assert.equal(hostOf(placeBatch(s, [vm("web-1", 4, 4)]), "web-1"), "h2");
  });

  it("opens an empty host only when no host in use fits, and then the largest", () => {
    const s = cluster("Pack", [host("small", 32), host("large", 128), host("used", 64)], [running("a", "used", 2, 60)]);
    assert.equal(hostOf(placeBatch(s, [vm("web-1", 1, 4)]), "web-1"), "used");
    assert.equal(hostOf(placeBatch(s, [vm("web-1", 1, 8)]), "web-1"), "large");
  });

  it("uses as few hosts as the VMs need", () => {
    const s = cluster("Pack", Array.from({ length: 6 }, (_, i) => host(`h${i}`)));
    const plan = placeBatch(s, Array.from({ length: 16 }, (_, i) => vm(`web-${i}`, 2, 16)));
    assert.equal(new Set(plan.placements.map((p) => p.host)).size, 4);
  });
});

describe("preferred host affinity", () => {
  const zoned = [host("h1", 64, 16, { zone: "z1" }), host("h2", 64, 16, { zone: "z2" }), host("h3", 64, 16, { zone: "z2" })];
  const prefer = (zone: string, weight = 50): Partial<VmPlacement> => ({
    hostAffinity: { preferred: [{ weight, preference: { matchLabels: { zone } } }] },
  });

  it("draws a VM to the hosts it prefers even when they are busier", () => {
    const s = cluster("Spread", zoned, [running("a", "h1", 8, 32)]);
    assert.equal(hostOf(placeBatch(s, [vm("web-1", 1, 1, prefer("z1"))]), "web-1"), "h1");
  });

  it("still obeys the strategy among the hosts it prefers equally", () => {
    const s = cluster("Spread", zoned, [running("a", "h2", 8, 32)]);
    assert.equal(hostOf(placeBatch(s, [vm("web-1", 1, 1, prefer("z2"))]), "web-1"), "h3");
  });

  it("lets the heavier of two preferences win", () => {
    const both = (z1: number, z2: number): Partial<VmPlacement> => ({
      hostAffinity: {
        preferred: [
          { weight: z1, preference: { matchLabels: { zone: "z1" } } },
          { weight: z2, preference: { matchLabels: { zone: "z2" } } },
        ],
      },
    });
    assert.equal(hostOf(placeBatch(cluster("Pack", zoned), [vm("w-1", 1, 1, both(70, 30))]), "w-1"), "h1");
    assert.equal(hostOf(placeBatch(cluster("Pack", zoned), [vm("w-1", 1, 1, both(30, 70))]), "w-1"), "h2");
  });

  it("is only a preference: a VM goes elsewhere when the preferred hosts are full", () => {
    const s = cluster("Spread", zoned, [running("a", "h1", 8, 64)]);
    const plan = placeBatch(s, [vm("web-1", 1, 1, prefer("z1"))]);
    assert.equal(hostOf(plan, "web-1"), "h2");
  });
});

describe("a batch", () => {
  it("never gives two VMs the last free room of a host", () => {
    const s = cluster("Pack", [host("h1", 16), host("h2", 16)]);
    const plan = placeBatch(s, ["a", "b", "c"].map((id) => vm(id, 1, 12)));
    assert.equal(plan.placements.length, 2);
    assert.notEqual(plan.placements[0]?.host, plan.placements[1]?.host);
    assert.equal(plan.unschedulable[0]?.message, "0/2 hosts fit: 2 insufficient memory");
  });

  it("decides VMs with required rules first, then the largest, then by id", () => {
    const ruled = vm("z-ruled", 1, 1, { vmAntiAffinity: { required: [{ labelSelector: { matchLabels: { app: "z" } }, topologyKey: HOST_LABEL }] } });
    const vms = [vm("b-small", 1, 2), vm("a-small", 1, 2), vm("big", 2, 32), vm("mid", 8, 8), ruled];
    const order = batchOrder(cluster("Pack", [host("h1")]), vms).map((r) => r.id);
    assert.deepEqual(order, ["z-ruled", "big", "mid", "a-small", "b-small"]);
  });

  it("decides VMs that only some hosts can take before VMs that can go anywhere", () => {
    const hosts = [host("h1"), { ...host("h2"), networks: ["lab"] }, { ...host("h3"), unavailable: "in maintenance" }];
    const lab = { ...vm("lab-1", 1, 1), networks: ["lab"] };
    const order = batchOrder(cluster("Pack", hosts), [vm("big", 8, 32), lab]).map((r) => r.id);
    assert.deepEqual(order, ["lab-1", "big"]);
    const everywhere = batchOrder(cluster("Pack", hosts.map((h) => ({ ...h, networks: ["lab"] }))), [vm("big", 8, 32), lab]).map((r) => r.id);
    assert.deepEqual(everywhere, ["big", "lab-1"], "a host in maintenance restricts no one");
  });

  it("keeps room on the only hosts a restricted VM can use", () => {
    // Largest first alone would put the 40-GiB VM on the lab host (largest, Pack opens it) and strand lab-1.
    const hosts = [host("plain", 48), { ...host("labhost", 64), networks: ["lab"] }];
    const lab = { ...vm("lab-1", 2, 30), networks: ["lab"] };
    const plan = placeBatch(cluster("Pack", hosts), [vm("big", 2, 40), lab]);
    assert.equal(plan.unschedulable.length, 0);
    assert.equal(hostOf(plan, "lab-1"), "labhost");
  });

  it("gives the room to the VM with required rules when there is room for one", () => {
    const s = cluster("Pack", [host("h1", 16, 16, { zone: "z1" }), host("h2", 1)]);
    const free = vm("free-1", 1, 12);
    const pinned = vm("pinned-1", 1, 12, { hostAffinity: { required: [{ matchLabels: { zone: "z1" } }] } });
    const plan = placeBatch(s, [free, pinned]);
    assert.deepEqual(plan.placements.map((p) => p.vm), ["pinned-1"]);
  });

  it("interleaves memory-heavy and CPU-heavy VMs so hosts fill on both resources", () => {
    const cpuHeavy = Array.from({ length: 4 }, (_, i) => vm(`c-${i}`, 16, 32));
    const memoryHeavy = Array.from({ length: 4 }, (_, i) => vm(`m-${i}`, 4, 32));
    const order = batchOrder(cluster("Pack", [host("h1")]), [...cpuHeavy, ...memoryHeavy]).map((r) => r.id[0]).join("");
    assert.match(order, /^(cm|mc)+$/);
  });

  it("refuses a batch that names one VM twice", () => {
    assert.throws(() => placeBatch(cluster("Pack", [host("h1")]), [vm("a", 1, 1), vm("a", 1, 2)]), /requested twice/);
  });

  it("gives the same plan whatever the order of its inputs", () => {
    const hosts = [host("h1", 32), host("h2", 64), host("h3", 48, 8)];
    const vms = [vm("a", 2, 8), vm("b", 8, 16), vm("c", 1, 30), vm("d", 4, 4)];
    const first = placeBatch(cluster("Spread", hosts), vms);
    const second = placeBatch(cluster("Spread", [...hosts].reverse()), [...vms].reverse());
    assert.deepEqual(second, first);
  });

  it("lists the hosts that fit best first", () => {
    const s = cluster("Pack", [host("h1"), host("h2"), host("h3")], [running("a", "h3", 1, 40), running("b", "h1", 1, 20)]);
    assert.deepEqual(hostsThatFit(s, vm("web-1", 1, 1)).fits, ["h3", "h1", "h2"]);
  });
});
