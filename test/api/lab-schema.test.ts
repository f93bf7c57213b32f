// LabTopology as the file mode applies it: a lab is defaulted as the CRD says, a VM's owner and lease are
// checked, and mistakes the schema can name are refused with the field path the API server would name.
// What it cannot name (dependency cycles, overlapping or too small CIDRs) is the controller's to refuse.
// `vireo get labs` prints the CRD's printer columns.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { load } from "js-yaml";
import { formatFieldErrors, kindForResource, printerColumns, validateManifest } from "../../controller/api/schema.ts";
import type { LabTopology, VirtualMachine } from "../../controller/api/types.ts";
import { get } from "../../controller/cli/get.ts";
import { STATE_FORMAT } from "../../controller/state/state-dir.ts";
import { tempDir } from "../support/process.ts";
import { accepted, changed, refusedAt, type Doc } from "../support/admission.ts";

const LAB = `apiVersion: vireo.dev/v1alpha1
kind: LabTopology
metadata: {name: shop-qa, namespace: qa}
spec:
  owner: team-qa
  cluster: lab
  copies: 2
  platforms: [esx, kvm]
  networks:
    - {name: front, cidr: 10.0.1.0/24, mode: Fenced, externalCidr: 192.168.100.0/22}
    - {name: back, cidr: 10.0.2.0/24}
  tiers:
    - name: db
      template: {cpu: 4, memoryMiB: 8192}
      networks: [back]
    - name: app
      replicas: 2
      template: {cpu: 2, memoryMiB: 4096}
      networks: [front, back]
      dependsOn: [{tier: db}]
      overrides: [{index: 0, hostname: app-main, addresses: {back: 10.0.2.10}}]
    - name: web
      replicas: 3
      hostnamePattern: www-{index}
      template: {cpu: 1, memoryMiB: 2048}
      networks: [front]
      dependsOn: [{tier: app, waitFor: GuestHeartbeat, delaySeconds: 30, timeoutSeconds: 300}]
      stop: {action: PowerOff, delaySeconds: 5}
  lease: {runtime: 8h, storage: 72h, maxLifetime: 720h, warnBefore: [1h, 15m]}
`;

const VM = `apiVersion: vireo.dev/v1alpha1
kind: VirtualMachine
metadata: {name: scratch, namespace: qa}
spec:
  cpu: 2
  memoryMiB: 2048
  placement: {cluster: lab}
`;


const tier = (d: Doc, name: string): Doc => (d.spec.tiers as Doc[]).find((t) => t.name === name)!;

describe("a LabTopology", () => {
  it("is accepted as written, with every default of its tiers, networks and lease filled in", () => {
    const lab = accepted<LabTopology>(load(LAB));
    assert.equal(lab.spec.running, true);
    assert.deepEqual(lab.spec.networks[1], { name: "back", cidr: "10.0.2.0/24", mode: "Isolated" });
    const [db, app, web] = lab.spec.tiers;
    assert.deepEqual(db, {
      name: "db", replicas: 1, hostnamePattern: "{tier}-{index}",
      template: { cpu: 4, memoryMiB: 8192, cpuFeatures: [], disks: [], migration: { policy: "Live" } },
      networks: ["back"], overrides: [], dependsOn: [], stop: { action: "GuestShutdown", delaySeconds: 0 },
    });
    assert.deepEqual(app?.dependsOn, [{ tier: "db", waitFor: "Ready", delaySeconds: 0, timeoutSeconds: 600 }]);
    assert.deepEqual(app?.overrides, [{ index: 0, hostname: "app-main", addresses: { back: "10.0.2.10" } }]);
    assert.deepEqual(web?.dependsOn, [{ tier: "app", waitFor: "GuestHeartbeat", delaySeconds: 30, timeoutSeconds: 300 }]);
    assert.deepEqual(web?.stop, { action: "PowerOff", delaySeconds: 5 });
    assert.deepEqual(lab.spec.lease, { runtime: "8h", storage: "72h", maxLifetime: "720h", warnBefore: ["1h", "15m"] });
  });

  it("defaults to one running copy on any platform, with no networks and no lease", () => {
    const lab = accepted<LabTopology>(changed(LAB, (d) => {
      for (const field of ["copies", "platforms", "networks", "lease"]) delete d.spec[field];
      for (const t of d.spec.tiers as Doc[]) { delete t.networks; delete t.overrides; }
    }));
    assert.deepEqual([lab.spec.running, lab.spec.copies, lab.spec.platforms, lab.spec.networks, lab.spec.lease], [true, 1, [], [], undefined]);
  });

  it("is found as lab, labs, labtopology and labtopologies", () => {
    for (const name of ["lab", "labs", "labtopology", "labtopologies", "labtopologies.vireo.dev"]) assert.equal(kindForResource(name), "LabTopology", name);
  });

  it("prints its owner, phase, copies, readiness, next expiry and age", () => {
    assert.deepEqual(printerColumns("LabTopology").filter((c) => !c.priority).map((c) => [c.name, c.jsonPath]), [
      ["Owner", ".spec.owner"], ["Phase", ".status.phase"], ["Copies", ".spec.copies"],
      ["Ready", '.status.conditions[?(@.type=="Ready")].status'], ["Next Expiry", ".status.nextExpiry.time"], ["Age", ".metadata.creationTimestamp"],
    ]);
  });

  describe("is refused with the field path", () => {
    it("without an owner", () => refusedAt(changed(LAB, (d) => { delete d.spec.owner; }), "spec.owner", "Required value"));
    it("with an empty owner", () => refusedAt(changed(LAB, (d) => { d.spec.owner = ""; }), "spec.owner", "should be at least 1 chars long"));
    it("with a blank owner", () => refusedAt(changed(LAB, (d) => { d.spec.owner = "  "; }), "spec.owner", "should match"));
    it("without tiers", () => refusedAt(changed(LAB, (d) => { d.spec.tiers = []; }), "spec.tiers", "should have at least 1 items"));
    it("with two tiers of one name", () => refusedAt(changed(LAB, (d) => { tier(d, "web").name = "app"; tier(d, "app").dependsOn = []; }), "spec.tiers[2]", 'Duplicate value: {"name":"app"}'));
    it("with two networks of one name", () => refusedAt(changed(LAB, (d) => { d.spec.networks[1].name = "front"; }), "spec.networks[1]", 'Duplicate value: {"name":"front"}'));
    it("when a tier depends on a tier the lab lacks", () => refusedAt(changed(LAB, (d) => { tier(d, "app").dependsOn = [{ tier: "cache" }]; }), "spec.tiers", "every dependsOn must name a tier of the lab"));
    it("when a tier depends on itself", () => refusedAt(changed(LAB, (d) => { tier(d, "app").dependsOn = [{ tier: "app" }]; }), "spec.tiers[1].dependsOn", "a tier cannot depend on itself"));
    it("when a tier names a dependency twice", () => refusedAt(changed(LAB, (d) => { tier(d, "web").dependsOn = [{ tier: "app" }, { tier: "app" }]; }), "spec.tiers[2].dependsOn[1]", 'Duplicate value: {"tier":"app"}'));
    it("when a tier waits for something unknown", () => refusedAt(changed(LAB, (d) => { tier(d, "app").dependsOn[0].waitFor = "Pinged"; }), "spec.tiers[1].dependsOn[0].waitFor", 'Unsupported value: "Pinged"'));
    it("when a Fenced network has no externalCidr", () => refusedAt(changed(LAB, (d) => { delete d.spec.networks[0].externalCidr; }), "spec.networks[0].externalCidr", "Required value: externalCidr is required when mode is Fenced"));
    it("when a network that is not Fenced has an externalCidr", () => refusedAt(changed(LAB, (d) => { d.spec.networks[1].externalCidr = "192.168.0.0/24"; }), "spec.networks[1].externalCidr", "Forbidden: externalCidr may only be set when mode is Fenced"));
    it("when a tier is on a network the lab lacks", () => refusedAt(changed(LAB, (d) => { tier(d, "web").networks = ["front", "dmz"]; }), "spec.tiers", "every network of a tier must name a network of the lab"));
    it("when an override's address is on a network the tier lacks", () => refusedAt(changed(LAB, (d) => { tier(d, "app").overrides[0].addresses = { dmz: "10.0.3.1" }; }), "spec.tiers[1].overrides", "every address of an override must be on a network of the tier"));
    it("with a CIDR that is no CIDR", () => refusedAt(changed(LAB, (d) => { d.spec.networks[1].cidr = "10.0.2.0"; }), "spec.networks[1].cidr", "should match"));
    it("with a CIDR octet past 255", () => refusedAt(changed(LAB, (d) => { d.spec.networks[1].cidr = "10.0.256.0/24"; }), "spec.networks[1].cidr", "should match"));
    it("with a prefix longer than /30", () => refusedAt(changed(LAB, (d) => { d.spec.networks[1].cidr = "10.0.2.0/31"; }), "spec.networks[1].cidr", "should match"));
    it("with a prefix shorter than /8", () => refusedAt(changed(LAB, (d) => { d.spec.networks[0].externalCidr = "10.0.0.0/7"; }), "spec.networks[0].externalCidr", "should match"));
    it("with an override address that is no IPv4 address", () => refusedAt(changed(LAB, (d) => { tier(d, "app").overrides[0].addresses = { back: "10.0.2" }; }), "spec.tiers[1].overrides[0].addresses.back", "should match"));
    it("with an unknown platform", () => refusedAt(changed(LAB, (d) => { d.spec.platforms = ["esx", "vbox"]; }), "spec.platforms[1]", 'Unsupported value: "vbox": supported values: "esx", "hyperv", "kvm", "xen"'));
    it("with a platform twice", () => refusedAt(changed(LAB, (d) => { d.spec.platforms = ["esx", "esx"]; }), "spec.platforms[1]", 'Duplicate value: "esx"'));
    it("with no copies", () => refusedAt(changed(LAB, (d) => { d.spec.copies = 0; }), "spec.copies", "should be greater than or equal to 1"));
    it("with more than 100 copies", () => refusedAt(changed(LAB, (d) => { d.spec.copies = 101; }), "spec.copies", "should be less than or equal to 100"));
    it("with more than 100 replicas in a tier", () => refusedAt(changed(LAB, (d) => { tier(d, "web").replicas = 101; }), "spec.tiers[2].replicas", "should be less than or equal to 100"));
    it("when replicas would share one hostname", () => refusedAt(changed(LAB, (d) => { tier(d, "web").hostnamePattern = "www"; }), "spec.tiers[2].hostnamePattern", "hostnamePattern must contain {index}"));
    it("with a hostname pattern of unknown placeholders", () => refusedAt(changed(LAB, (d) => { tier(d, "web").hostnamePattern = "www-{copy}"; }), "spec.tiers[2].hostnamePattern", "should match"));
    it("with a lease that is no duration", () => refusedAt(changed(LAB, (d) => { d.spec.lease.runtime = "8 hours"; }), "spec.lease.runtime", "should match"));
    it("with a warning that is no duration", () => refusedAt(changed(LAB, (d) => { d.spec.lease.warnBefore = ["1d"]; }), "spec.lease.warnBefore[0]", "should match"));
    it("with an empty lease", () => refusedAt(changed(LAB, (d) => { d.spec.lease = { warnBefore: ["1h"] }; }), "spec.lease", "Required value: a lease must set runtime, storage or maxLifetime"));
    it("with a name too long for the vireo.dev/lab label", () => refusedAt(changed(LAB, (d) => { d.metadata.name = "l".repeat(64); }), "", "a LabTopology name must be at most 63 characters"));
    it("with a template VM of no CPU", () => refusedAt(changed(LAB, (d) => { tier(d, "db").template.cpu = 0; }), "spec.tiers[0].template.cpu", "should be greater than or equal to 1"));
  });
});

describe("a VM's owner and lease", () => {
  it("are optional, and accepted as written", () => {
    assert.equal(accepted<VirtualMachine>(load(VM)).spec.owner, undefined);
    const vm = accepted<VirtualMachine>(changed(VM, (d) => { d.spec.owner = "alice@example.com"; d.spec.lease = { ttl: "1.5h" }; }));
    assert.equal(vm.spec.owner, "alice@example.com");
    assert.deepEqual(vm.spec.lease, { ttl: "1.5h", onExpiry: "Stop" });
  });

  it("refuse an empty owner", () => refusedAt(changed(VM, (d) => { d.spec.owner = ""; }), "spec.owner", "should be at least 1 chars long"));
  it("refuse a lease without a ttl", () => refusedAt(changed(VM, (d) => { d.spec.lease = { onExpiry: "Delete" }; }), "spec.lease.ttl", "Required value"));
  it("refuse a ttl that is no duration", () => refusedAt(changed(VM, (d) => { d.spec.lease = { ttl: "30d" }; }), "spec.lease.ttl", "should match"));
  it("refuse an unknown action on expiry", () => refusedAt(changed(VM, (d) => { d.spec.lease = { ttl: "1h", onExpiry: "Archive" }; }), "spec.lease.onExpiry", 'Unsupported value: "Archive"'));
});

describe("vireo get labs", () => {
  const state = tempDir("get-labs");
  after(() => state.remove());
  const lab = accepted<LabTopology>(load(LAB));
  lab.metadata.creationTimestamp = "2026-11-24T10:00:00Z";
  lab.status = {
    phase: "Running", nextExpiry: { time: "2026-11-24T18:00:00Z", action: "Stop" }, message: "esx-0 6/6, esx-1 6/6, kvm-0 6/6, kvm-1 6/6",
    conditions: [{ type: "Ready", status: "True", reason: "Running", message: "every copy is up", lastTransitionTime: "2026-11-24T10:05:00Z" }],
  };
  const stopped = accepted<LabTopology>(changed(LAB, (d) => { d.metadata.name = "old-qa"; d.spec.owner = "bob"; d.spec.copies = 1; d.spec.running = false; }));
  stopped.metadata.creationTimestamp = "2026-11-20T12:00:00Z";
  stopped.status = { phase: "Stopped" };
  writeFileSync(join(state.path, "objects.json"), JSON.stringify({ format: STATE_FORMAT, updatedAt: "2026-11-24T11:00:00Z", objects: [lab, stopped].map((object) => ({ object })), manifestErrors: [] }));

  async function vireoGet(...args: string[]): Promise<string> {
    let out = "";
    const code = await get([...args, "--state-dir", state.path], { out: (t) => { out += `${t}\n`; }, err: (t) => { out += `${t}\n`; } }, Date.parse("2026-11-24T12:00:00Z"));
    assert.equal(code, 0, out);
    return out;
  }

  it("lists each lab's owner, phase, copies, readiness, next expiry and age", async () => {
    assert.equal(await vireoGet("labs", "-n", "qa"), [
      "NAME      OWNER     PHASE     COPIES   READY   NEXT EXPIRY            AGE",
      "old-qa    bob       Stopped   1                                       4d",
      "shop-qa   team-qa   Running   2        True    2026-11-24T18:00:00Z   120m",
      "",
    ].join("\n"));
  });

  it("adds the cluster and the message with -o wide", async () => {
    assert.equal(await vireoGet("lab", "shop-qa", "-n", "qa", "-o", "wide"), [
      "NAME      OWNER     PHASE     COPIES   READY   NEXT EXPIRY            AGE    CLUSTER   MESSAGE",
      "shop-qa   team-qa   Running   2        True    2026-11-24T18:00:00Z   120m   lab       esx-0 6/6, esx-1 6/6, kvm-0 6/6, kvm-1 6/6",
      "",
    ].join("\n"));
  });
});
