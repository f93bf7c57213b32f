// Stable MAC addresses for VM network attachments. Guest-level clustering (Windows failover clusters,
// Pacemaker, licence servers) breaks when a NIC's MAC changes, so a MAC is assigned once, kept in status
// and reused across restarts, re-placement, failover and migration.

import type { VirtualMachine, VmStatusNetwork } from "../api/types.ts";

/** Locally administered, unicast: the second-lowest bit of the first octet set, the lowest clear. */
export const MAC_PREFIX = "02:76:69";

/**
 * The MAC of each of the VM's networks: the one given in the spec, else the one already assigned in
 * status (by network name), else a new one derived from the VM's identity and not in `taken`.
 * Pure: the same VM and the same taken set give the same answer.
 */
/** MACs already in use elsewhere. */
export interface TakenMacs {
  has(mac: string): boolean;
}

export function assignMacs(vm: Readonly<VirtualMachine>, taken: TakenMacs): VmStatusNetwork[] {
  const assigned = new Map((vm.status?.networks ?? []).map((n) => [n.name, n.macAddress]));
  const usedHere = new Set<string>();
  return vm.spec.networks.map((network) => {
    const given = network.macAddress?.toLowerCase();
    let mac = given ?? assigned.get(network.name);
    if (mac === undefined || (given === undefined && usedHere.has(mac))) {
      mac = freshMac(`${vm.metadata.uid ?? ""}/${vm.metadata.namespace ?? "default"}/${vm.metadata.name}/${network.name}`, taken, usedHere);
    }
    usedHere.add(mac);
    return { name: network.name, macAddress: mac };
  });
}

function freshMac(identity: string, taken: TakenMacs, usedHere: ReadonlySet<string>): string {
  for (let attempt = 0; ; attempt++) {
    const mac = macFromHash(fnv1a(`${identity}#${attempt}`));
    if (!taken.has(mac) && !usedHere.has(mac)) return mac;
  }
}

function macFromHash(hash: number): string {
  const bytes = [(hash >>> 16) & 0xff, (hash >>> 8) & 0xff, hash & 0xff];
  return `${MAC_PREFIX}:${bytes.map((b) => b.toString(16).padStart(2, "0")).join(":")}`;
}

/** FNV-1a, 32 bits: small, fast and well spread for short strings. */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
