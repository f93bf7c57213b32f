// A conversion's pre-check (V2V, as Forklift validates a VM before its plan runs): before the VM is shut
// down, what cannot work on the target platform (blockers: the request is refused, nothing is touched) and
// what will not survive the move (warnings). Only what the hosts of the target type are made of counts here
// (their CPU features, datastores, networks, the VM's required host rules); whether one has room now is
// placement's question, asked when the VM is about to leave. Pure.

import type { ConversionPreCheck, Host, Hypervisor, VirtualMachine } from "../../api/types.ts";
import { hostLabels } from "../../api/membership.ts";
import { conversionMs } from "../../core/conversion.ts";
import type { VmConfig, VmPowerState } from "../../core/observation.ts";
import { requiredHostAffinityHolds } from "../../placement/host-affinity.ts";
import { DEFAULT_FIRMWARE, PLATFORMS, nicModelOn } from "./platforms.ts";

export interface PreCheckInput {
  vm: Readonly<VirtualMachine>;
  /** The VM as it is registered now: its disks, its NICs' models and its firmware as they are. */
  config: Readonly<VmConfig>;
  /** Its power state where it is registered. */
  power: VmPowerState;
  /** The host it is registered on. */
  source: Readonly<Host>;
  to: Hypervisor;
  /** The hosts of the VM's cluster, as declared. */
  hosts: readonly Readonly<Host>[];
  /** The host the request names, if it names one. */
  targetHost?: string;
  /** The request's targetHypervisor, when it names one. */
  targetHypervisor?: Hypervisor;
  mode: "Live" | "Cold";
  keepMacAddresses: boolean;
  rateMiBps: number;
  /** Why the VM cannot be converted where it stands, found outside the VM (it runs away from home on its replica), if so. */
  elsewhere?: string;
}

/** The pre-check's findings: from, to, blockers, warnings, the disks' size and the conversion's expected time. */
export function conversionPreCheck(input: Readonly<PreCheckInput>): ConversionPreCheck {
  const from = input.source.spec.hypervisor;
  const diskMiB = diskMiBOf(input.config);
  return {
    from,
    to: input.to,
    blockers: blockersOf(input).slice(0, 32),
    warnings: warningsOf(input).slice(0, 32),
    estimatedSeconds: conversionMs(diskMiB, input.rateMiBps) / 1000,
    diskMiB,
  };
}

/** What a conversion reads and rewrites: the disks' total size, MiB. */
export function diskMiBOf(config: Readonly<Pick<VmConfig, "disks">>): number {
  return config.disks.reduce((sum, d) => sum + d.sizeGiB * 1024, 0);
}

/** The hosts of the target type the VM may go to: the one named, or every one its required host rules allow. */
export function conversionCandidates(input: Readonly<Pick<PreCheckInput, "vm" | "to" | "hosts" | "targetHost">>): Readonly<Host>[] {
  return input.hosts.filter((h) => h.spec.hypervisor === input.to
    && (input.targetHost === undefined || h.metadata.name === input.targetHost)
    && requiredHostAffinityHolds(input.vm.spec.placement, hostLabels(h)));
}

function blockersOf(input: Readonly<PreCheckInput>): string[] {
  const { vm, to } = input;
  const platform = PLATFORMS[to];
  const blockers: string[] = [];
  const from = input.source.spec.hypervisor;
  if (input.elsewhere) blockers.push(input.elsewhere);
  if (vm.spec.migration.policy === "Never") blockers.push("its migration policy is Never");
  const pinned = vm.spec.placement.hypervisor;
  if (pinned !== undefined && pinned !== to) blockers.push(`its spec.placement.hypervisor is ${pinned}: remove it to convert the VM, and set it to ${to} once converted`);
  const named = input.targetHost === undefined ? undefined : input.hosts.find((h) => h.metadata.name === input.targetHost);
  if (named && input.targetHypervisor !== undefined && named.spec.hypervisor !== input.targetHypervisor) blockers.push(`host ${named.metadata.name} is ${named.spec.hypervisor}, not ${input.targetHypervisor} as targetHypervisor asks`);
  if (vm.spec.cpu > platform.maxVcpus) blockers.push(`${vm.spec.cpu} vCPUs: a ${to} VM has at most ${platform.maxVcpus}`);
  vm.spec.networks.forEach((n) => {
    if (n.model !== undefined && !platform.nicModels.includes(n.model)) blockers.push(`its NIC on network ${n.name} is ${n.model}, which ${to} lacks (${to} has ${platform.nicModels.join(", ")})`);
  });
  const firmware = vm.spec.firmware ?? input.config.firmware ?? DEFAULT_FIRMWARE;
  if (!platform.firmware.includes(firmware)) blockers.push(`it boots with ${firmware} firmware, which ${to} lacks (${to} has ${platform.firmware.join(", ")})`);
  if (from === to) return blockers;
  return [...blockers, ...targetBlockers(input)];
}

/** What no host of the target type offers: a CPU feature, a datastore, a network, or all of them on one host. */
function targetBlockers(input: Readonly<PreCheckInput>): string[] {
  const { vm, to } = input;
  const ofType = input.hosts.filter((h) => h.spec.hypervisor === to);
  if (input.targetHost !== undefined && !ofType.some((h) => h.metadata.name === input.targetHost)) return [];
  if (ofType.length === 0) return [`no ${to} host is in its cluster`];
  const candidates = conversionCandidates(input);
  if (candidates.length === 0) return [input.targetHost !== undefined ? `host ${input.targetHost} does not match its required host affinity` : `no ${to} host matches its required host affinity`];
  const where = input.targetHost !== undefined ? `host ${input.targetHost}` : `no ${to} host`;
  const blockers: string[] = [];
  const lacking = needsOf(vm, input.config).filter((need) => !candidates.some((h) => offers(h, need)));
  for (const need of lacking) blockers.push(`${describeNeed(need)}: ${where} ${input.targetHost !== undefined ? "lacks it" : "has it"}`);
  if (blockers.length > 0 || candidates.some((h) => missingOn(h, vm, input.config).length === 0)) return blockers;
  const short = candidates.map((h) => `${h.metadata.name} lacks ${missingOn(h, vm, input.config).map(describeNeed).join(", ")}`);
  return [`no ${to} host has all it needs: ${short.join("; ")}`];
}

type Need = { kind: "feature" | "datastore" | "network"; name: string };

function needsOf(vm: Readonly<VirtualMachine>, config: Readonly<VmConfig>): Need[] {
  const datastores = [...new Set(config.disks.map((d) => d.datastore))];
  return [
    ...vm.spec.cpuFeatures.map((name): Need => ({ kind: "feature", name })),
    ...datastores.map((name): Need => ({ kind: "datastore", name })),
    ...vm.spec.networks.map((n): Need => ({ kind: "network", name: n.name })),
  ];
}

function offers(host: Readonly<Host>, need: Need): boolean {
  switch (need.kind) {
    case "feature": return host.spec.cpu.features.includes(need.name);
    case "datastore": return host.spec.datastores.includes(need.name);
    case "network": return host.spec.networks.includes(need.name);
  }
}

function missingOn(host: Readonly<Host>, vm: Readonly<VirtualMachine>, config: Readonly<VmConfig>): Need[] {
  return needsOf(vm, config).filter((need) => !offers(host, need));
}

function describeNeed(need: Need): string {
  switch (need.kind) {
    case "feature": return `CPU feature ${need.name}`;
    case "datastore": return `datastore ${need.name} of its disks`;
    case "network": return `network ${need.name}`;
  }
}

function warningsOf(input: Readonly<PreCheckInput>): string[] {
  const { vm, to, config } = input;
  const from = input.source.spec.hypervisor;
  const warnings: string[] = [];
  const seconds = Math.ceil(conversionMs(diskMiBOf(config), input.rateMiBps) / 1000);
  if (input.power === "Off") warnings.push(`the VM is off: it is converted as it is (~${seconds} s) and started on ${to} only if its runStrategy wants it running`);
  else warnings.push(`a conversion is cold${input.mode === "Live" ? " whatever the mode" : ""}: the VM is down while it shuts down, is converted (~${seconds} s) and boots on ${to}`);
  vm.spec.networks.forEach((n, i) => {
    if (n.model !== undefined) return;
    const before = nicModelOn(from, config.nics[i]?.model);
    const after = PLATFORMS[to].paravirtualNic;
    if (before !== after) warnings.push(`its NIC on network ${n.name} becomes ${after} (${before} on ${from}): the guest sees a new network device, and settings tied to the old one (a static address, an interface name) may need redoing`);
  });
  warnings.push(`${PLATFORMS[from].guestAgent} stops working on ${to}: install ${PLATFORMS[to].guestAgent}, which the guest heartbeat, VM monitoring and a clean shutdown rely on`);
  if (!input.keepMacAddresses) warnings.push(...macWarnings(vm));
  if (vm.spec.replication) warnings.push(`its replica in cluster ${vm.spec.replication.targetCluster} starts afresh with a full sync of its disks`);
  const ft = vm.status?.faultTolerance;
  if (ft && ft.state !== "NotProtected") warnings.push(`its fault-tolerant secondary${ft.secondaryHost ? ` on ${ft.secondaryHost}` : ""} is dropped when it shuts down`);
  const vendors = new Set(conversionCandidates(input).map((h) => h.spec.cpu.vendor));
  if (vendors.size > 0 && !vendors.has(input.source.spec.cpu.vendor)) warnings.push(`it moves from an ${input.source.spec.cpu.vendor} CPU to an ${[...vendors].join(" or ")} one`);
  warnings.push(`moving it back to ${from} takes another conversion: a VM cannot migrate live between hypervisor types`);
  return warnings;
}

function macWarnings(vm: Readonly<VirtualMachine>): string[] {
  const kept = vm.spec.networks.filter((n) => n.macAddress !== undefined).map((n) => n.name);
  const renewed = vm.spec.networks.filter((n) => n.macAddress === undefined).map((n) => n.name);
  const warnings: string[] = [];
  if (renewed.length > 0) warnings.push(`keepMacAddresses is false: its NICs on ${renewed.map((n) => `network ${n}`).join(", ")} get new MAC addresses (DHCP reservations and licences tied to the old ones break)`);
  if (kept.length > 0) warnings.push(`the MAC addresses its spec gives (network ${kept.join(", ")}) are kept: the spec decides them`);
  return warnings;
}
