// Real objects written by Vireo's controller (the scenario harness on the virtual clock), in each of the
// states the GitOps health checks must tell apart: Ready, reconciling, stalled, and a generation not yet
// observed. Shared by the Argo CD Lua and the kstatus tests.

import { Scenario, clusterYaml, hostYaml, vmYaml } from "../support/scenario.ts";
import { PROD_HOSTS, allReplicated, recoveryPlanYaml, startDrFleet } from "../support/dr-fleet.ts";
import type { RecoveryPlan, VireoObject } from "../../controller/api/types.ts";

export interface Sample {
  /** What the object is, as the test names it. */
  name: string;
  object: VireoObject;
}

function policyYaml(name: string, spec: string): string {
  return `apiVersion: vireo.dev/v1alpha1
kind: HAPolicy
metadata: {name: ${name}, namespace: watched}
spec:
${spec.split("\n").filter(Boolean).map((l) => `  ${l}`).join("\n")}
---
`;
}

/** A deep copy, as a client reading the object at that moment would get it. */
function snapshot(object: VireoObject): VireoObject {
  return structuredClone(object);
}

/**
 * Runs a small fleet until every sample exists and returns them by name:
 * running-vm, halted-vm, unschedulable-vm, failed-vm, starting-vm, maintenance-host, draining-host,
 * ready-host, cluster, policy, generation-behind-vm.
 */
export async function sampleObjects(): Promise<Map<string, Sample>> {
  const s = await Scenario.start(
    clusterYaml() + hostYaml("h1") + hostYaml("h2") + hostYaml("h3", { maintenance: true })
      + vmYaml("web-1") + vmYaml("archive", { runStrategy: "Halted" })
      + vmYaml("huge", { memoryMiB: 1_048_576 })
      + vmYaml("db-1", { namespace: "watched" })
      + policyYaml("monitored", "selector: {}\nvmMonitoring: {enabled: true, sensitivity: High, maxResets: 0}"),
  );
  const samples = new Map<string, Sample>();
  const keep = (name: string, object: VireoObject) => samples.set(name, { name, object: snapshot(object) });
  try {
    await s.until(() => s.vm("web-1").status?.phase === "Running" && s.vm("db-1", "watched").status?.phase === "Running" && s.host("h3").status?.phase === "Maintenance");
    await s.until(() => s.vm("huge").status?.phase === "Unschedulable");
    keep("running-vm", s.vm("web-1"));
    keep("halted-vm", s.vm("archive"));
    keep("unschedulable-vm", s.vm("huge"));
    keep("maintenance-host", s.host("h3"));
    keep("ready-host", s.host(s.vm("web-1").status!.host!));
    keep("cluster", s.cluster("prod"));
    keep("policy", s.store.list("HAPolicy")[0]!);

    // A new VM, caught while it boots.
    s.apply(vmYaml("web-2"));
    await s.until(() => s.vm("web-2").status?.phase === "Starting", 60_000, 100);
    keep("starting-vm", s.vm("web-2"));

    // A spec change the controller has not observed yet: read before it reconciles.
    s.apply(vmYaml("web-1", { memoryMiB: 8192 }));
    keep("generation-behind-vm", s.vm("web-1"));

    // A host put into maintenance while it holds VMs: it drains.
    const busy = s.vm("web-1").status!.host!;
    s.apply(hostYaml(busy, { maintenance: true }));
    await s.until(() => s.host(busy).status?.phase === "EnteringMaintenance", 60_000, 100);
    keep("draining-host", s.host(busy));

    // VM monitoring with no resets allowed: a hung guest is marked Failed.
    await s.advance(150_000);
    await s.sim.hangGuest("watched/db-1");
    await s.until(() => s.vm("db-1", "watched").status?.phase === "Failed", 600_000);
    keep("failed-vm", s.vm("db-1", "watched"));
  } finally {
    await s.stop();
  }
  return samples;
}

/**
 * RecoveryPlans in each phase GitOps tools must tell apart, written by the controller on the two-site fleet
 * (test/support/dr-fleet.ts): succeeded-plan (a Test whose copies run), running-plan (a Migrate caught
 * while it shuts its VM down or syncs), failed-plan (refused: it selects no VM) and waiting-plan (a
 * Failover whose original may still run on a partitioned host: WaitingForUser).
 */
export async function recoveryPlanSamples(): Promise<Map<string, Sample>> {
  const s = await startDrFleet([
    { name: "web-0", tier: "web", diskGiB: 1 },
    { name: "app-0", tier: "app", diskGiB: 1 },
    { name: "db-0", tier: "db", diskGiB: 1 },
  ]);
  const samples = new Map<string, Sample>();
  const plan = (name: string) => s.store.list("RecoveryPlan").find((p) => p.metadata.name === name);
  const phase = (name: string) => plan(name)?.status?.phase;
  const keep = (sample: string, name: string) => samples.set(sample, { name: sample, object: snapshot(plan(name) as RecoveryPlan) });
  try {
    await s.until(() => allReplicated(s, ["web-0", "app-0", "db-0"]), 3_600_000, 10_000);

    s.apply(recoveryPlanYaml("test-web", "Test", "  testNetwork: dr-test\n", "{matchLabels: {tier: web}}"));
    s.apply(recoveryPlanYaml("nothing", "Failover", "", "{matchLabels: {tier: none}}"));
    s.apply(recoveryPlanYaml("move-app", "Migrate", "", "{matchLabels: {tier: app}}"));
    await s.until(() => phase("move-app") === "Running", 600_000, 100);
    keep("running-plan", "move-app");
    await s.until(() => phase("test-web") === "Succeeded" && phase("nothing") === "Failed" && phase("move-app") === "Succeeded", 1_800_000);
    keep("succeeded-plan", "test-web");
    keep("failed-plan", "nothing");

    // The prod hosts are cut off from the controller but still write their datastore heartbeats: db-0 may
    // still run there, so a Failover cannot power it off, nor start its replica.
    await s.sim.partitionHosts(PROD_HOSTS);
    await s.until(() => s.store.list("Host").filter((h) => PROD_HOSTS.includes(h.metadata.name)).every((h) => h.status?.phase === "Partitioned"), 600_000);
    s.apply(recoveryPlanYaml("failover-db", "Failover", "", "{matchLabels: {tier: db}}"));
    await s.until(() => phase("failover-db") === "WaitingForUser", 600_000);
    keep("waiting-plan", "failover-db");
  } finally {
    await s.stop();
  }
  return samples;
}
