// The HAPolicy and Fault CRDs as the file mode applies them: the DESIGN.md §7 examples are accepted and
// defaulted; common mistakes are refused with the field path the API server would name.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { load } from "js-yaml";
import { validateManifest } from "../../controller/api/schema.ts";
import type { Fault, HAPolicy } from "../../controller/api/types.ts";

const POLICY = `apiVersion: vireo.dev/v1alpha1
kind: HAPolicy
metadata: {name: shop-db, namespace: shop}
spec:
  selector: {matchLabels: {app: shop, tier: db}}
  restartPriority: Highest
  startAfter: []
  startDelaySeconds: 0
  isolationResponse: PowerOff
  vmMonitoring: {enabled: true, heartbeatTimeoutSeconds: 30, maxResets: 3, resetWindowSeconds: 3600}
  protection: Restart
`;

const FAULT = `apiVersion: vireo.dev/v1alpha1
kind: Fault
metadata: {name: crash-esx-01}
spec: {type: HostCrash, target: {host: esx-01}, startAfterSeconds: 0, durationSeconds: 600}
`;

function accepted<T>(yaml: string): T {
  const result = validateManifest(load(yaml));
  assert.ok(result.ok, `refused: ${JSON.stringify(!result.ok && result.errors)}`);
  return result.object as T;
}

function refusedAt(yaml: string, path: string): void {
  const result = validateManifest(load(yaml));
  assert.equal(result.ok, false, `accepted: ${yaml}`);
  assert.ok(!result.ok && result.errors.some((e) => e.path === path), `no error at ${path}: ${JSON.stringify(!result.ok && result.errors)}`);
}

describe("HAPolicy", () => {
  it("accepts the DESIGN.md example and fills in the defaults", () => {
    const policy = accepted<HAPolicy>(POLICY);
    assert.equal(policy.spec.readyCondition, "ResourcesAllocated");
    assert.equal(policy.spec.readyTimeoutSeconds, 600);
    assert.equal(policy.spec.vmMonitoring.sensitivity, "Medium");
    const minimal = accepted<HAPolicy>("apiVersion: vireo.dev/v1alpha1\nkind: HAPolicy\nmetadata: {name: p, namespace: a}\nspec: {selector: {}}\n");
    assert.deepEqual([minimal.spec.restartPriority, minimal.spec.isolationResponse, minimal.spec.protection, minimal.spec.vmMonitoring.enabled, minimal.spec.startAfter], ["Medium", "LeavePoweredOn", "Restart", false, []]);
  });

  const mistakes: [string, string, string][] = [
    ["no selector", POLICY.replace("  selector: {matchLabels: {app: shop, tier: db}}\n", ""), "spec.selector"],
    ["an unknown priority", POLICY.replace("Highest", "Urgent"), "spec.restartPriority"],
    ["an unknown isolation response", POLICY.replace("PowerOff", "Reboot"), "spec.isolationResponse"],
    ["an unknown ready condition", POLICY.replace("  startAfter: []\n", "  readyCondition: Soon\n  startAfter: []\n"), "spec.readyCondition"],
    ["a negative delay", POLICY.replace("startDelaySeconds: 0", "startDelaySeconds: -5"), "spec.startDelaySeconds"],
    ["a heartbeat timeout too short", POLICY.replace("heartbeatTimeoutSeconds: 30", "heartbeatTimeoutSeconds: 1"), "spec.vmMonitoring.heartbeatTimeoutSeconds"],
    ["a reset window shorter than the timeout (CEL)", POLICY.replace("heartbeatTimeoutSeconds: 30", "heartbeatTimeoutSeconds: 600").replace("resetWindowSeconds: 3600", "resetWindowSeconds: 300"), "spec.vmMonitoring.resetWindowSeconds"],
    ["startAfter on a Disabled policy (CEL)", POLICY.replace("Highest", "Disabled").replace("startAfter: []", "startAfter: [web]"), "spec.startAfter"],
    ["a duplicate in startAfter", POLICY.replace("startAfter: []", "startAfter: [web, web]"), "spec.startAfter[1]"],
    ["an unknown protection", POLICY.replace("protection: Restart", "protection: Prayer"), "spec.protection"],
    ["an unknown field", POLICY.replace("  protection: Restart\n", "  protection: Restart\n  turbo: true\n"), "spec.turbo"],
    ["a bad selector operator", POLICY.replace("{matchLabels: {app: shop, tier: db}}", "{matchExpressions: [{key: app, operator: Near}]}"), "spec.selector.matchExpressions[0].operator"],
  ];
  for (const [what, yaml, path] of mistakes) {
    it(`refuses ${what} at ${path}`, () => refusedAt(yaml, path));
  }
});

describe("Fault", () => {
  it("accepts the DESIGN.md example and a drill of each type", () => {
    assert.equal(accepted<Fault>(FAULT).spec.type, "HostCrash");
    const drills = [
      "{type: NetworkIsolation, target: {host: esx-02}, durationSeconds: 300}",
      "{type: NetworkPartition, target: {hosts: [esx-03, esx-04]}}",
      "{type: StoragePathLoss, target: {host: esx-01, datastore: shared-ds1, paths: 1}}",
      "{type: GuestHang, target: {vm: {namespace: shop, name: web-1}}}",
      "{type: SlowHost, target: {host: esx-01}, slowdownFactor: 3}",
    ];
    for (const spec of drills) assert.equal(accepted<Fault>(FAULT.replace(/spec: .*/, `spec: ${spec}`)).spec.startAfterSeconds, 0);
  });

  const spec = (s: string) => FAULT.replace(/spec: .*/, `spec: ${s}`);
  const mistakes: [string, string, string][] = [
    ["no type", spec("{target: {host: esx-01}}"), "spec.type"],
    ["an unknown type", spec("{type: Meteor, target: {host: esx-01}}"), "spec.type"],
    ["no target", spec("{type: HostCrash}"), "spec.target"],
    ["a HostCrash without a host (CEL)", spec("{type: HostCrash, target: {}}"), "spec.target.host"],
    ["a partition without hosts (CEL)", spec("{type: NetworkPartition, target: {}}"), "spec.target.hosts"],
    ["a GuestHang without a VM (CEL)", spec("{type: GuestHang, target: {}}"), "spec.target.vm"],
    ["a StoragePathLoss without a datastore (CEL)", spec("{type: StoragePathLoss, target: {host: esx-01}}"), "spec.target.datastore"],
    ["paths on a HostCrash (CEL)", spec("{type: HostCrash, target: {host: esx-01, paths: 1}}"), "spec.target.paths"],
    ["a slowdown on a HostCrash (CEL)", spec("{type: HostCrash, target: {host: esx-01}, slowdownFactor: 2}"), "spec.slowdownFactor"],
    ["a negative start delay", spec("{type: HostCrash, target: {host: esx-01}, startAfterSeconds: -1}"), "spec.startAfterSeconds"],
    ["a zero duration", spec("{type: HostCrash, target: {host: esx-01}, durationSeconds: 0}"), "spec.durationSeconds"],
    ["a host name that is not a DNS label", spec("{type: HostCrash, target: {host: ESX_01}}"), "spec.target.host"],
    ["a VM without a namespace", spec("{type: GuestHang, target: {vm: {name: web-1}}}"), "spec.target.vm.namespace"],
  ];
  for (const [what, yaml, path] of mistakes) {
    it(`refuses ${what} at ${path}`, () => refusedAt(yaml, path));
  }
});
