// A conversion's pre-check as a pure function: each hypervisor's table (NIC models, firmware, vCPUs, its
// paravirtual NIC, its guest agent), the blockers that refuse a conversion before anything is touched, and
// the warnings that say what will not survive it. No simulator, no clock.

import { test } from "node:test";
import assert from "node:assert/strict";
import type { Host, Hypervisor, VirtualMachine } from "../../controller/api/types.ts";
import { DEFAULT_CONVERSION_RATE_MIBPS } from "../../controller/core/conversion.ts";
import { conversionPreCheck, type PreCheckInput } from "../../controller/planners/migration/pre-check.ts";
import { PLATFORMS, nicModelOn } from "../../controller/planners/migration/platforms.ts";
import { convertedConfig, renewedMacs } from "../../controller/planners/migration/conversion-config.ts";
import { desiredConfig } from "../../controller/planners/lifecycle.ts";
import { clusterObject, hostObject, networksOf, vmObject } from "../support/objects.ts";

function host(name: string, hypervisor: Hypervisor, o: { features?: string[]; datastores?: string[]; networks?: string[]; vendor?: "intel" | "amd"; rack?: string } = {}): Host {
  const h = hostObject(name);
  return {
    ...h,
    metadata: { ...h.metadata, labels: { ...h.metadata.labels, ...(o.rack ? { "topology.vireo.dev/rack": o.rack } : {}) } },
    spec: { ...h.spec, hypervisor, cpu: { ...h.spec.cpu, vendor: o.vendor ?? "intel", features: o.features ?? ["sse4_2", "avx", "avx2"] }, datastores: o.datastores ?? ["shared"], networks: o.networks ?? ["prod"] },
  };
}

const ESX = host("esx-1", "esx", { features: ["sse4_2", "avx", "avx2", "avx512f"] });
const KVM = host("kvm-1", "kvm");

function check(vm: VirtualMachine, to: Hypervisor, o: Partial<PreCheckInput> = {}) {
  return conversionPreCheck({
    vm,
    config: desiredConfig(vm, networksOf(vm), undefined, []),
    power: "Running",
    source: ESX,
    to,
    hosts: [ESX, KVM, host("hv-1", "hyperv"), host("xen-1", "xen")],
    mode: "Live",
    keepMacAddresses: true,
    rateMiBps: DEFAULT_CONVERSION_RATE_MIBPS,
    ...o,
  });
}

function withSpec(vm: VirtualMachine, spec: Partial<VirtualMachine["spec"]>): VirtualMachine {
  return { ...vm, spec: { ...vm.spec, ...spec } };
}

test("each hypervisor's table: its NIC models, firmware, vCPUs per VM and paravirtual NIC, as documented", () => {
  assert.deepEqual(PLATFORMS.esx, { nicModels: ["vmxnet3", "e1000", "e1000e"], paravirtualNic: "vmxnet3", firmware: ["BIOS", "EFI", "EFISecureBoot"], maxVcpus: 768, guestAgent: "VMware Tools" });
  assert.deepEqual(PLATFORMS.kvm, { nicModels: ["virtio", "e1000", "e1000e", "rtl8139"], paravirtualNic: "virtio", firmware: ["BIOS", "EFI", "EFISecureBoot"], maxVcpus: 710, guestAgent: "qemu-guest-agent" });
  assert.deepEqual(PLATFORMS.hyperv, { nicModels: ["netvsc", "legacy"], paravirtualNic: "netvsc", firmware: ["BIOS", "EFI", "EFISecureBoot"], maxVcpus: 240, guestAgent: "Hyper-V Integration Services" });
  assert.deepEqual(PLATFORMS.xen, { nicModels: ["netfront", "e1000", "rtl8139"], paravirtualNic: "netfront", firmware: ["BIOS", "EFI"], maxVcpus: 128, guestAgent: "the Xen guest utilities" });
  for (const [name, p] of Object.entries(PLATFORMS)) assert.ok(p.nicModels.includes(p.paravirtualNic), `${name}'s paravirtual NIC is one of its models`);
  assert.equal(nicModelOn("kvm", undefined), "virtio");
  assert.equal(nicModelOn("kvm", "e1000"), "e1000");
});

test("a plain VM passes esx → kvm with the disks' size and the time at 100 MiB/s, and warnings of what changes", () => {
  const vm = withSpec(vmObject("web"), { disks: [{ name: "root", sizeGiB: 20, datastore: "shared" }, { name: "data", sizeGiB: 30, datastore: "shared" }] });
  const p = check(vm, "kvm");
  assert.deepEqual([p.from, p.to, p.blockers, p.diskMiB, p.estimatedSeconds], ["esx", "kvm", [], 51_200, 512]);
  const text = p.warnings.join("\n");
  assert.match(text, /a conversion is cold whatever the mode: the VM is down while it shuts down, is converted \(~512 s\) and boots on kvm/);
  assert.match(text, /its NIC on network prod becomes virtio \(vmxnet3 on esx\)/);
  assert.match(text, /VMware Tools stops working on kvm: install qemu-guest-agent/);
  assert.match(text, /moving it back to esx takes another conversion/);
  assert.doesNotMatch(text, /MAC/, "MACs are kept by default: nothing to warn of");
});

test("a NIC model or firmware the target lacks, and more vCPUs than it gives a VM, are blockers; a model both have is not even a warning", () => {
  const nics = withSpec(vmObject("app"), { networks: [{ name: "prod", model: "vmxnet3" }] });
  assert.deepEqual(check(nics, "kvm").blockers, ["its NIC on network prod is vmxnet3, which kvm lacks (kvm has virtio, e1000, e1000e, rtl8139)"]);
  const e1000 = withSpec(vmObject("app"), { networks: [{ name: "prod", model: "e1000" }] });
  assert.deepEqual(check(e1000, "kvm").blockers, []);
  assert.ok(!check(e1000, "kvm").warnings.some((w) => /NIC on network prod/.test(w)), "e1000 stays e1000");
  assert.deepEqual(check(e1000, "hyperv").blockers, ["its NIC on network prod is e1000, which hyperv lacks (hyperv has netvsc, legacy)"]);
  const secure = withSpec(vmObject("app"), { firmware: "EFISecureBoot" });
  assert.deepEqual(check(secure, "kvm").blockers, []);
  assert.deepEqual(check(secure, "xen").blockers, ["it boots with EFISecureBoot firmware, which xen lacks (xen has BIOS, EFI)"]);
  const big = vmObject("big", { cpu: 200 });
  assert.deepEqual(check(big, "kvm").blockers, []);
  assert.deepEqual(check(big, "xen").blockers, ["200 vCPUs: a xen VM has at most 128"]);
  assert.deepEqual(check(vmObject("huge", { cpu: 300 }), "hyperv").blockers, ["300 vCPUs: a hyperv VM has at most 240"]);
});

test("what no host of the target type offers is a blocker: a CPU feature, a datastore, a network, or all of them on one host", () => {
  const avx512 = withSpec(vmObject("db"), { cpuFeatures: ["avx512f"] });
  assert.deepEqual(check(avx512, "kvm").blockers, ["CPU feature avx512f: no kvm host has it"]);
  assert.deepEqual(check(avx512, "kvm", { targetHost: "kvm-1" }).blockers, ["CPU feature avx512f: host kvm-1 lacks it"]);
  const local = withSpec(vmObject("db"), { disks: [{ name: "root", sizeGiB: 20, datastore: "local-esx-1" }], networks: [{ name: "prod" }, { name: "backup" }] });
  const config = { ...desiredConfig(local, networksOf(local), undefined, []) };
  assert.deepEqual(check(local, "kvm", { config }).blockers, ["datastore local-esx-1 of its disks: no kvm host has it", "network backup: no kvm host has it"]);
  // Each need is met by some kvm host, but no one host meets them all.
  const split = [ESX, host("kvm-a", "kvm", { networks: ["prod"], datastores: ["shared"] }), host("kvm-b", "kvm", { networks: ["prod", "backup"], datastores: ["other"] })];
  const both = withSpec(vmObject("db"), { networks: [{ name: "prod" }, { name: "backup" }] });
  assert.deepEqual(check(both, "kvm", { hosts: split }).blockers, ["no kvm host has all it needs: kvm-a lacks network backup; kvm-b lacks datastore shared of its disks"]);
  assert.deepEqual(check(vmObject("web"), "kvm", { hosts: [ESX] }).blockers, ["no kvm host is in its cluster"]);
});

test("the VM's own rules are blockers: policy Never, a hypervisor pinned in its placement, required host affinity no host of the type matches", () => {
  const never = vmObject("pinned", { migrationPolicy: "Never" });
  assert.deepEqual(check(never, "kvm").blockers, ["its migration policy is Never"]);
  const pinned = withSpec(vmObject("pinned"), { placement: { cluster: "prod", hypervisor: "esx" } });
  assert.deepEqual(check(pinned, "kvm").blockers, ["its spec.placement.hypervisor is esx: remove it to convert the VM, and set it to kvm once converted"]);
  const pinnedToKvm = withSpec(vmObject("pinned"), { placement: { cluster: "prod", hypervisor: "kvm" } });
  assert.deepEqual(check(pinnedToKvm, "kvm").blockers, []);
  assert.ok(!check(pinnedToKvm, "kvm").warnings.some((w) => /placement.hypervisor/.test(w)));
  const rack = withSpec(vmObject("racked"), { placement: { cluster: "prod", hostAffinity: { required: [{ matchLabels: { "topology.vireo.dev/rack": "r9" } }] } } });
  assert.deepEqual(check(rack, "kvm").blockers, ["no kvm host matches its required host affinity"]);
  assert.deepEqual(check(vmObject("web"), "hyperv", { targetHost: "kvm-1", targetHypervisor: "hyperv" }).blockers, ["host kvm-1 is kvm, not hyperv as targetHypervisor asks"]);
});

test("warnings: new MACs but the ones the spec gives, a replica synced afresh, a fault-tolerant secondary dropped, another CPU vendor, a VM that is off", () => {
  const vm = withSpec(vmObject("db", { status: { faultTolerance: { state: "Protected", secondaryHost: "esx-2" } } }), {
    networks: [{ name: "prod" }, { name: "backup", macAddress: "02:00:00:00:00:01" }],
    replication: { targetCluster: "dr", rpoSeconds: 300, instances: 0, networkMapping: [], keepMacAddresses: true },
  });
  const amd = host("kvm-amd", "kvm", { vendor: "amd", networks: ["prod", "backup"] });
  const p = check(vm, "kvm", { keepMacAddresses: false, power: "Off", mode: "Cold", hosts: [ESX, amd] });
  assert.deepEqual(p.blockers, []);
  const text = p.warnings.join("\n");
  assert.match(text, /keepMacAddresses is false: its NICs on network prod get new MAC addresses/);
  assert.match(text, /the MAC addresses its spec gives \(network backup\) are kept/);
  assert.match(text, /its replica in cluster dr starts afresh with a full sync/);
  assert.match(text, /its fault-tolerant secondary on esx-2 is dropped when it shuts down/);
  assert.match(text, /it moves from an intel CPU to an amd one/);
  assert.match(text, /the VM is off: it is converted as it is \(~205 s\) and started on kvm only if its runStrategy wants it running/);
  assert.doesNotMatch(text, /whatever the mode/);
});

test("the converted configuration: the spec's on the target, each NIC the model it names or the target's paravirtual one, the firmware kept; new MACs never an old or taken one", () => {
  const vm = withSpec(vmObject("web"), { networks: [{ name: "prod" }, { name: "lab", model: "e1000" }], firmware: "EFI" });
  const networks = networksOf(vm);
  const config = convertedConfig(vm, networks, clusterObject(), KVM, "kvm");
  assert.deepEqual(config.nics, [{ network: "prod", macAddress: networks[0]!.macAddress, model: "virtio" }, { network: "lab", macAddress: networks[1]!.macAddress, model: "e1000" }]);
  assert.equal(config.firmware, "EFI");
  assert.deepEqual(config.cpuFeatures, ["avx", "avx2", "sse4_2"], "the target's features, without a cluster baseline");
  const pinned = withSpec(vm, { networks: [{ name: "prod" }, { name: "lab", macAddress: "02:00:00:00:00:07" }] });
  const current = [{ name: "prod", macAddress: "02:76:69:00:00:01" }, { name: "lab", macAddress: "02:00:00:00:00:07" }];
  const fresh = renewedMacs(pinned, current, new Set(["02:76:69:aa:bb:cc"]));
  assert.equal(fresh[1]!.macAddress, "02:00:00:00:00:07", "a MAC the spec gives stays");
  assert.notEqual(fresh[0]!.macAddress, current[0]!.macAddress);
  assert.match(fresh[0]!.macAddress, /^02:76:69:/);
  assert.deepEqual(renewedMacs(pinned, current, new Set()), fresh, "the same inputs give the same MACs");
});
