// Lab topologies on the virtual clock: tiers start in dependency order and stop in reverse, a dependency
// that never comes stalls the lab with the reason, copies land on their own platform, addresses stay put,
// leases stop and delete labs, and a lab's VMs scale, roll and go with it.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Scenario, condition } from "../support/scenario.ts";
import { COPY_LABEL, TIER_LABEL } from "../../controller/api/types.ts";
import { isReady, lab, labFleetYaml, labVmsOf, labYaml, tierYaml } from "../support/labs.ts";

const THREE_TIERS = tierYaml("db")
  + tierYaml("app", { replicas: 2, dependsOn: "{tier: db, waitFor: Ready, delaySeconds: 30}", stop: "{action: GuestShutdown, delaySeconds: 20}" })
  + tierYaml("web", { replicas: 2, dependsOn: "{tier: app, waitFor: Ready}", stop: "{action: PowerOff, delaySeconds: 10}" });

/** When each VM of the lab first powered on, and last went off, watched step by step. */
function watch(s: Scenario, name: string): { on: Map<string, number>; off: Map<string, number>; step: () => void } {
  const on = new Map<string, number>();
  const off = new Map<string, number>();
  return {
    on, off,
    step: () => {
      for (const vm of labVmsOf(s, name)) {
        const instance = s.sim.observeVm(`default/${vm.metadata.name}`);
        const powered = instance !== undefined && instance.power !== "Off";
        if (powered && !on.has(vm.metadata.name)) on.set(vm.metadata.name, instance.poweredOnAt ?? s.clock.now());
        if (!powered && on.has(vm.metadata.name) && !off.has(vm.metadata.name)) off.set(vm.metadata.name, s.clock.now());
      }
    },
  };
}

function tierOf(s: Scenario, vmName: string): string {
  return s.vm(vmName).metadata.labels![TIER_LABEL]!;
}

test("a three-tier lab starts db, then app once db is Ready (plus its delay), then web once app is Ready; it stops in reverse", async () => {
  const s = await Scenario.start(labFleetYaml() + labYaml("shop", THREE_TIERS));
  try {
    const w = watch(s, "shop");
    await s.until(() => { w.step(); return lab(s, "shop").status?.phase === "Running"; }, 600_000);
    assert.equal(labVmsOf(s, "shop").length, 5);
    const readyAt = (tier: string) => Math.max(...labVmsOf(s, "shop").filter((vm) => tierOf(s, vm.metadata.name) === tier).map((vm) => Date.parse(vm.status!.conditions!.find((c) => c.type === "Ready")!.lastTransitionTime)));
    const startedAt = (tier: string) => Math.min(...[...w.on].filter(([n]) => tierOf(s, n) === tier).map(([, t]) => t));
    assert.ok(startedAt("app") >= readyAt("db") + 30_000, "no app VM before the database is Ready, plus 30 s");
    assert.ok(startedAt("web") >= readyAt("app"), "no web VM before the app tier is Ready");
    assert.ok(labVmsOf(s, "shop").every(isReady));

    s.apply(labYaml("shop", THREE_TIERS, { running: false }));
    await s.until(() => { w.step(); return lab(s, "shop").status?.phase === "Stopped"; }, 900_000);
    const stoppedAt = (tier: string) => Math.max(...[...w.off].filter(([n]) => tierOf(s, n) === tier).map(([, t]) => t));
    const stopBegan = (tier: string) => Math.min(...[...w.off].filter(([n]) => tierOf(s, n) === tier).map(([, t]) => t));
    assert.ok(stopBegan("app") >= stoppedAt("web") + 10_000, "app stops once web is down, plus web's 10 s");
    assert.ok(stopBegan("db") >= stoppedAt("app") + 20_000, "db stops once app is down, plus app's 20 s");
    // web's PowerOff is told; app's GuestShutdown is the guest's own.
    assert.ok(s.events.some((e) => e.object === "LabTopology/default/shop" && e.reason === "TierPoweredOff" && /tier web/.test(e.message)));
    assert.ok(!s.events.some((e) => e.reason === "TierPoweredOff" && /tier app/.test(e.message)));
  } finally {
    await s.stop();
  }
});

test("a dependency that never becomes ready stalls the lab with the reason after its timeout", async () => {
  const tiers = tierYaml("db", { memoryMiB: 4_000_000 }) + tierYaml("app", { dependsOn: "{tier: db, waitFor: Ready, timeoutSeconds: 120}" });
  const s = await Scenario.start(labFleetYaml() + labYaml("stuck", tiers));
  try {
    await s.until(() => lab(s, "stuck").status?.phase === "Stalled", 600_000);
    const stalled = condition(lab(s, "stuck"), "Stalled");
    assert.equal(stalled?.reason, "DependencyTimeout");
    assert.match(stalled!.message, /tier app waited \d+ s for db to be Ready \(timeout 120 s\)/);
    const app = labVmsOf(s, "stuck").find((vm) => tierOf(s, vm.metadata.name) === "app")!;
    assert.equal(s.sim.observeVm(`default/${app.metadata.name}`), undefined, "the app VM never started");
  } finally {
    await s.stop();
  }
});

test("a dependency cycle is refused with the reason, and nothing is made", async () => {
  const tiers = tierYaml("a", { dependsOn: "{tier: b}" }) + tierYaml("b", { dependsOn: "{tier: a}" });
  const s = await Scenario.start(labFleetYaml() + labYaml("loop", tiers));
  try {
    await s.advance(5_000);
    assert.equal(condition(lab(s, "loop"), "Stalled")?.reason, "DependencyCycle");
    assert.equal(labVmsOf(s, "loop").length, 0);
  } finally {
    await s.stop();
  }
});

test("a cross-platform lab puts each copy on its own hypervisor; a platform without hosts leaves its copy Unschedulable while the others run", async () => {
  const s = await Scenario.start(labFleetYaml() + labYaml("matrix", tierYaml("db") + tierYaml("app", { dependsOn: "{tier: db}" }), { platforms: ["esx", "kvm", "hyperv"], copies: 1 }));
  try {
    await s.until(() => labVmsOf(s, "matrix").filter((vm) => !vm.metadata.labels![COPY_LABEL]!.startsWith("hyperv")).every(isReady), 600_000);
    for (const vm of labVmsOf(s, "matrix")) {
      const copy = vm.metadata.labels![COPY_LABEL]!;
      if (copy.startsWith("hyperv")) continue;
      const host = s.host(vm.status!.host!);
      assert.equal(host.spec.hypervisor, copy.split("-")[0], `${vm.metadata.name} on ${host.metadata.name}`);
    }
    const hyperv = lab(s, "matrix").status!.copies!.find((c) => c.name === "hyperv-0")!;
    assert.match(hyperv.message!, /Unschedulable/);
    const db = labVmsOf(s, "matrix").find((vm) => vm.metadata.labels![COPY_LABEL] === "hyperv-0" && tierOf(s, vm.metadata.name) === "db")!;
    assert.equal(db.status?.phase, "Unschedulable");
  } finally {
    await s.stop();
  }
});

test("fenced copies share internal addresses and MACs, with distinct external addresses; addresses survive a controller restart", async () => {
  const networks = "[{name: lab-net, cidr: 192.168.50.0/24, mode: Fenced, externalCidr: 10.99.0.0/24, uplink: lab}]";
  const s = await Scenario.start(labFleetYaml() + labYaml("fenced", tierYaml("db") + tierYaml("app", { replicas: 2 }), { copies: 2, networks }));
  try {
    await s.until(() => labVmsOf(s, "fenced").length === 6 && labVmsOf(s, "fenced").every(isReady), 600_000);
    const addresses = lab(s, "fenced").status!.addresses!;
    const byCopy = (copy: string) => new Map(addresses.filter((a) => a.vm.startsWith(`fenced-${copy}-`)).map((a) => [a.vm.slice(`fenced-${copy}-`.length), a]));
    const zero = byCopy("0");
    const one = byCopy("1");
    assert.equal(zero.size, 3);
    for (const [vm, a] of zero) {
      assert.equal(one.get(vm)!.address, a.address, `${vm}: the same internal address in both copies`);
      assert.equal(one.get(vm)!.macAddress, a.macAddress, `${vm}: the same MAC in both copies`);
      assert.notEqual(one.get(vm)!.externalAddress, a.externalAddress);
    }
    // What the hosts run is what status says.
    for (const a of addresses) assert.equal(s.sim.observeVm(`default/${a.vm}`)!.config.nics[0]!.macAddress, a.macAddress);
    await s.restartController();
    await s.advance(30_000);
    assert.deepEqual(lab(s, "fenced").status!.addresses, addresses);
  } finally {
    await s.stop();
  }
});

test("a CIDR too small for the lab is refused up front, nothing made", async () => {
  const networks = "[{name: lab-net, cidr: 10.10.0.0/30, mode: Isolated, uplink: lab}]";
  const s = await Scenario.start(labFleetYaml() + labYaml("tiny", tierYaml("app", { replicas: 4 }), { networks }));
  try {
    await s.advance(5_000);
    assert.equal(condition(lab(s, "tiny"), "Stalled")?.reason, "CIDRTooSmall");
    assert.equal(labVmsOf(s, "tiny").length, 0);
  } finally {
    await s.stop();
  }
});

test("scaling a tier up and down, and a template change replacing one VM at a time", async () => {
  const s = await Scenario.start(labFleetYaml() + labYaml("web", tierYaml("web", { replicas: 2 })));
  try {
    await s.until(() => labVmsOf(s, "web").length === 2 && labVmsOf(s, "web").every(isReady), 600_000);
    const kept = new Map(lab(s, "web").status!.addresses!.map((a) => [a.vm, a.address]));
    s.apply(labYaml("web", tierYaml("web", { replicas: 4 })));
    await s.until(() => labVmsOf(s, "web").length === 4 && labVmsOf(s, "web").every(isReady), 600_000);
    for (const [vm, address] of kept) assert.equal(lab(s, "web").status!.addresses!.find((a) => a.vm === vm)!.address, address, `${vm} keeps its address`);
    s.apply(labYaml("web", tierYaml("web", { replicas: 3 })));
    await s.until(() => labVmsOf(s, "web").length === 3, 120_000);
    assert.deepEqual(labVmsOf(s, "web").map((vm) => vm.metadata.name).sort(), ["web-0-web-0", "web-0-web-1", "web-0-web-2"]);
    await s.until(() => s.sim.observeVm("default/web-0-web-3") === undefined, 120_000);

    // A new template: at most one VM is away at any moment.
    s.apply(labYaml("web", tierYaml("web", { replicas: 3, memoryMiB: 3072 })));
    let mostAway = 0;
    await s.until(() => {
      const vms = labVmsOf(s, "web");
      mostAway = Math.max(mostAway, vms.filter((vm) => !isReady(vm)).length);
      return vms.every((vm) => isReady(vm) && s.sim.observeVm(`default/${vm.metadata.name}`)!.config.memoryMiB === 3072);
    }, 1_800_000);
    assert.equal(mostAway, 1, "one VM replaced at a time");
  } finally {
    await s.stop();
  }
});

test("deleting a lab deletes every VM it made, also when the controller is killed mid-deletion", async () => {
  const s = await Scenario.start(labFleetYaml() + labYaml("gone", THREE_TIERS));
  try {
    await s.until(() => lab(s, "gone").status?.phase === "Running", 600_000);
    await s.controller.stop();
    s.delete("LabTopology", "gone", "default");
    await s.restartController();
    await s.until(() => labVmsOf(s, "gone").length === 0 && s.sim.groundTruth().vms.length === 0, 300_000);
  } finally {
    await s.stop();
  }
});

test("leases: a warning, then the runtime lease stops the lab, the storage lease deletes it; renewing keeps it; the exemption label exempts", async () => {
  const lease = "{runtime: 2h, storage: 1h, maxLifetime: 720h, warnBefore: [30m, 5m]}";
  const s = await Scenario.start(labFleetYaml() + labYaml("short", tierYaml("app"), { lease }) + labYaml("kept", tierYaml("app"), { lease, labels: "{vireo.dev/lease-exempt: \"true\"}" }));
  try {
    await s.until(() => lab(s, "short").status?.phase === "Running", 600_000);
    await s.until(() => condition(lab(s, "short"), "LeaseExpiring")?.status === "True", 3 * 3_600_000, 60_000);
    assert.match(condition(lab(s, "short"), "LeaseExpiring")!.message, /stopped at .* \(less than 30m away\)/);
    assert.ok(s.events.some((e) => e.reason === "LeaseExpiring" && e.object === "LabTopology/default/short"));
    await s.until(() => lab(s, "short").status?.phase === "Stopped", 3_600_000, 60_000);
    assert.match(lab(s, "short").status!.message!, /runtime lease expired/);
    assert.equal(lab(s, "kept").status?.phase, "Running", "the exempt lab runs on");
    await s.until(() => lab(s, "short").status?.phase === "Expired", 2 * 3_600_000, 60_000);
    assert.equal(labVmsOf(s, "short").length, 0);
    assert.equal(labVmsOf(s, "kept").length, 1);
  } finally {
    await s.stop();
  }
});

test("renewing a lease before it expires keeps the lab running; the maximum lifetime caps renewals", async () => {
  const s = await Scenario.start(labFleetYaml() + labYaml("renew", tierYaml("app"), { lease: "{runtime: 1h, maxLifetime: 3h}" }));
  try {
    await s.until(() => lab(s, "renew").status?.phase === "Running", 600_000);
    await s.advance(50 * 60_000);
    s.apply(labYaml("renew", tierYaml("app"), { lease: "{runtime: 10h, maxLifetime: 3h}" }));
    await s.advance(60 * 60_000);
    assert.equal(lab(s, "renew").status?.phase, "Running", "renewed before expiry: still running");
    const expiry = Date.parse(lab(s, "renew").status!.nextExpiry!.time);
    assert.ok(expiry <= Date.parse(lab(s, "renew").metadata.creationTimestamp!) + 3 * 3_600_000, "no renewal passes the maximum lifetime");
    await s.until(() => lab(s, "renew").status?.phase === "Stopped" || lab(s, "renew").status?.phase === "Expired", 3 * 3_600_000, 60_000);
  } finally {
    await s.stop();
  }
});

test("a plain VM's lease stops it when it runs out", async () => {
  const s = await Scenario.start(labFleetYaml() + `apiVersion: vireo.dev/v1alpha1
kind: VirtualMachine
metadata: {name: scratch, namespace: default}
spec:
  runStrategy: Always
  cpu: 1
  memoryMiB: 1024
  disks: [{name: root, sizeGiB: 10, datastore: shared}]
  networks: [{name: prod}]
  placement: {cluster: labs}
  owner: alice
  lease: {ttl: 2h, onExpiry: Stop}
---
`);
  try {
    await s.until(() => isReady(s.vm("scratch")), 600_000);
    await s.until(() => s.vm("scratch").status?.phase === "Stopped", 3 * 3_600_000, 60_000);
    assert.equal(condition(s.vm("scratch"), "Ready")?.reason, "LeaseExpired");
    assert.equal(s.sim.observeVm("default/scratch")?.power, "Off");
  } finally {
    await s.stop();
  }
});

test("isolated copies reuse no MAC and keep their addresses apart per copy; overlapping networks, or two on one uplink, are refused, nothing made", async () => {
  const isolated = "[{name: lab-net, cidr: 10.20.0.0/24, mode: Isolated, uplink: lab}]";
  const overlapping = "[{name: a, cidr: 10.30.0.0/16, mode: Isolated, uplink: lab}, {name: b, cidr: 10.30.5.0/24, mode: Bridged, uplink: lab}]";
  const s = await Scenario.start(labFleetYaml()
    + labYaml("iso", tierYaml("app", { replicas: 2 }), { copies: 2, networks: isolated })
    + labYaml("overlap", tierYaml("app", { networks: ["a", "b"] }), { networks: overlapping })
    + labYaml("shared", tierYaml("app", { networks: ["front", "back"] }), { networks: "[{name: front, cidr: 10.40.0.0/24, mode: Isolated, uplink: lab}, {name: back, cidr: 10.41.0.0/24, mode: Isolated, uplink: lab}]" }));
  try {
    await s.until(() => labVmsOf(s, "iso").length === 4 && labVmsOf(s, "iso").every(isReady), 600_000);
    const addresses = lab(s, "iso").status!.addresses!;
    assert.equal(new Set(addresses.map((a) => a.macAddress)).size, 4, "every NIC its own MAC");
    for (const segment of new Set(addresses.map((a) => a.segment))) {
      const inSegment = addresses.filter((a) => a.segment === segment).map((a) => a.address);
      assert.equal(new Set(inSegment).size, inSegment.length, `no address twice in ${segment}`);
    }
    assert.equal(new Set(addresses.map((a) => a.segment)).size, 2, "one segment per copy");
    assert.equal(condition(lab(s, "overlap"), "Stalled")?.reason, "OverlappingCIDRs");
    assert.equal(labVmsOf(s, "overlap").length, 0);
    assert.equal(condition(lab(s, "shared"), "Stalled")?.reason, "SharedUplink");
    assert.equal(labVmsOf(s, "shared").length, 0);
  } finally {
    await s.stop();
  }
});
