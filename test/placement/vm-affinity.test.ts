import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { HOST_LABEL } from "../../controller/api/types.ts";
import type { VmAffinityTerm, VmPlacement } from "../../controller/api/types.ts";
import { hostsThatFit, placeBatch } from "../../controller/placement/index.ts";
import type { CandidateHost, ClusterSnapshot, PlacedVm, VmRequest } from "../../controller/placement/index.ts";

const GiB = 1024;
const RACK = "topology.vireo.dev/rack";

/** Hosts h1…hN, two per rack (h1,h2 in r1; h3,h4 in r2; …). */
function hosts(count: number, strategy: ClusterSnapshot["strategy"] = "Spread", placed: PlacedVm[] = []): ClusterSnapshot {
  const list = Array.from({ length: count }, (_, i): CandidateHost => {
    const name = `h${i + 1}`;
    return {
      name,
      labels: { [HOST_LABEL]: name, [RACK]: `r${Math.floor(i / 2) + 1}` },
      hypervisor: "kvm",
      cpu: { cores: 16, vendor: "intel", features: [], overcommitRatio: 4 },
      memoryMiB: 64 * GiB,
      datastores: [],
      networks: [],
    };
  });
  return { hosts: list, placed, strategy };
}

function vm(id: string, labels: Record<string, string>, placement: Partial<VmPlacement> = {}, namespace = "shop"): VmRequest {
  return { id, namespace, labels, cpu: 1, memoryMiB: GiB, cpuFeatures: [], datastores: [], networks: [], placement: { cluster: "prod", ...placement } };
}

function on(id: string, host: string, labels: Record<string, string>, antiAffinity?: VmAffinityTerm[], namespace = "shop"): PlacedVm {
  return { id, namespace, labels, host, cpu: 1, memoryMiB: GiB, ...(antiAffinity ? { antiAffinity } : {}) };
}

const apart = (app: string, topologyKey = HOST_LABEL): Partial<VmPlacement> => ({
  vmAntiAffinity: { required: [{ labelSelector: { matchLabels: { app } }, topologyKey }] },
});
const together = (app: string, topologyKey = HOST_LABEL): Partial<VmPlacement> => ({
  vmAffinity: { required: [{ labelSelector: { matchLabels: { app } }, topologyKey }] },
});

function hostOf(plan: ReturnType<typeof placeBatch>, id: string): string | undefined {
  return plan.placements.find((p) => p.vm === id)?.host;
}

describe("required VM anti-affinity", () => {
  it("puts the members of a group on different hosts and refuses one more than there are hosts", () => {
    const db = ["db-1", "db-2", "db-3", "db-4"].map((id) => vm(id, { app: "db" }, apart("db")));
    const plan = placeBatch(hosts(3, "Pack"), db);
    assert.equal(new Set(plan.placements.map((p) => p.host)).size, 3);
    assert.deepEqual(plan.unschedulable, [{ vm: "db-4", message: "0/3 hosts fit: 3 VM anti-affinity", reasons: { "VM anti-affinity": 3 } }]);
  });

  it("keeps a group apart by rack when the topology key is the rack", () => {
    const db = ["db-1", "db-2", "db-3"].map((id) => vm(id, { app: "db" }, apart("db", RACK)));
    const plan = placeBatch(hosts(4, "Pack"), db);
    const racks = plan.placements.map((p) => Math.ceil(Number(p.host.slice(1)) / 2));
    assert.equal(new Set(racks).size, 2);
    assert.deepEqual(plan.unschedulable.map((u) => u.message), ["0/4 hosts fit: 4 VM anti-affinity"]);
  });

  it("is symmetric: a placed VM's anti-affinity keeps a matching newcomer out of its domain", () => {
    const s = hosts(2, "Pack", [on("db-1", "h1", { app: "db" }, [{ labelSelector: { matchLabels: { app: "web" } }, topologyKey: HOST_LABEL }])]);
    assert.deepEqual(hostsThatFit(s, vm("web-1", { app: "web" })), { fits: ["h2"], rejected: { "VM anti-affinity": 1 } });
    assert.deepEqual(hostsThatFit(s, vm("cache-1", { app: "cache" })).fits.sort(), ["h1", "h2"]);
  });

  it("is symmetric within a batch: a VM placed earlier keeps later matching VMs away", () => {
    const guard = vm("guard", { app: "guard" }, apart("noisy"));
    const noisy = vm("noisy", { app: "noisy" });
    const plan = placeBatch(hosts(2, "Pack"), [noisy, guard]);
    assert.notEqual(hostOf(plan, "guard"), hostOf(plan, "noisy"));
  });

  it("only sees VMs in the VM's own namespace unless the term names namespaces", () => {
    const s = hosts(1, "Spread", [on("db-1", "h1", { app: "db" }, undefined, "other")]);
    assert.deepEqual(hostsThatFit(s, vm("db-2", { app: "db" }, apart("db"))).fits, ["h1"]);
    const wide = { vmAntiAffinity: { required: [{ labelSelector: { matchLabels: { app: "db" } }, topologyKey: HOST_LABEL, namespaces: ["other"] }] } };
    assert.deepEqual(hostsThatFit(s, vm("db-2", { app: "db" }, wide)).rejected, { "VM anti-affinity": 1 });
  });

  it("rejects hosts without the topology key, whose domain is unknown", () => {
    const s = hosts(2);
    const zoned = { ...s, hosts: s.hosts.map((h) => (h.name === "h1" ? { ...h, labels: { ...h.labels, zone: "z1" } } : h)) };
    assert.deepEqual(hostsThatFit(zoned, vm("db-1", { app: "db" }, apart("db", "zone"))), { fits: ["h1"], rejected: { "VM anti-affinity": 1 } });
  });
});

describe("required VM affinity", () => {
  it("keeps a VM in the domain of the VMs it must be near", () => {
    const s = hosts(4, "Spread", [on("db-1", "h3", { app: "db" })]);
    const fit = hostsThatFit(s, vm("app-1", { app: "shop" }, together("db", RACK)));
    assert.deepEqual(fit.fits.sort(), ["h3", "h4"]);
    assert.deepEqual(fit.rejected, { "didn't match VM affinity": 2 });
  });

  it("refuses every host when no VM it must be near exists and it does not match itself", () => {
    const fit = hostsThatFit(hosts(2), vm("app-1", { app: "shop" }, together("db")));
    assert.deepEqual(fit, { fits: [], rejected: { "didn't match VM affinity": 2 } });
  });

  it("lets the first VM of a group with affinity to itself start anywhere, and the rest follow it", () => {
    const group = ["c-1", "c-2", "c-3"].map((id) => vm(id, { app: "cache" }, together("cache", RACK)));
    const plan = placeBatch(hosts(6), group);
    assert.equal(plan.unschedulable.length, 0);
    const racks = new Set(plan.placements.map((p) => Math.ceil(Number(p.host.slice(1)) / 2)));
    assert.equal(racks.size, 1, `all in one rack: ${JSON.stringify(plan.placements)}`);
  });

  it("rejects hosts without the topology key even for the first of a group", () => {
    const fit = hostsThatFit(hosts(2), vm("c-1", { app: "cache" }, together("cache", "zone")));
    assert.deepEqual(fit.rejected, { "didn't match VM affinity": 2 });
  });
});

describe("preferred VM affinity", () => {
  it("draws a VM towards the domain of the VMs it prefers, outweighing balance", () => {
    const s = hosts(4, "Spread", [on("db-1", "h4", { app: "db" }), on("x", "h4", { app: "x" })]);
    const near = { vmAffinity: { preferred: [{ weight: 10, term: { labelSelector: { matchLabels: { app: "db" } }, topologyKey: HOST_LABEL } }] } };
    const plan = placeBatch(s, [vm("app-1", { app: "shop" }, near)]);
    assert.equal(hostOf(plan, "app-1"), "h4");
  });

  it("pushes a VM away from the domain of the VMs it prefers to avoid", () => {
    const s = hosts(2, "Pack", [on("db-1", "h1", { app: "db" }), on("x", "h1", { app: "x" })]);
    const away = { vmAntiAffinity: { preferred: [{ weight: 100, term: { labelSelector: { matchLabels: { app: "db" } }, topologyKey: HOST_LABEL } }] } };
    assert.equal(hostOf(placeBatch(s, [vm("app-1", { app: "shop" }, away)]), "app-1"), "h2");
    assert.equal(hostOf(placeBatch(s, [vm("app-1", { app: "shop" })]), "app-1"), "h1", "without the preference Pack fills h1");
  });

  it("weighs several preferred terms by their weights", () => {
    const s = hosts(4, "Spread", [on("db-1", "h1", { app: "db" }), on("cache-1", "h3", { app: "cache" })]);
    const prefer = (db: number, cache: number) => ({
      vmAffinity: {
        preferred: [
          { weight: db, term: { labelSelector: { matchLabels: { app: "db" } }, topologyKey: HOST_LABEL } },
          { weight: cache, term: { labelSelector: { matchLabels: { app: "cache" } }, topologyKey: HOST_LABEL } },
        ],
      },
    });
    assert.equal(hostOf(placeBatch(s, [vm("a", { app: "shop" }, prefer(80, 20))]), "a"), "h1");
    assert.equal(hostOf(placeBatch(s, [vm("a", { app: "shop" }, prefer(20, 80))]), "a"), "h3");
  });
});
