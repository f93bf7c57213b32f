// The addresses and MACs of a lab's NICs. Every NIC gets an address from its network's CIDR that is unique in
// its segment and stays put: a fixed address when the tier asks for one, else what status held while it is
// still valid, else the lowest free one — so a controller restart or a scale change moves no kept VM.
// Fenced copies are clones behind their own fences, as in Lab Manager: every copy reuses the same internal
// addresses and MACs, and each NIC gets an external address unique across copies. Pure and deterministic;
// linear in the number of NICs (maps and a moving cursor per address space, no scans over addresses).

import type { LabAddress, LabNetwork } from "../../api/types.ts";
import { fnv1a, MAC_PREFIX } from "../macs.ts";

export interface NicRequest {
  /** The VM's name, unique in the lab. */
  vm: string;
  /** The copy's name ("esx-0", "0"). */
  copy: string;
  /** The VM's name within its copy, the same in every copy ("db-0"). */
  vmInCopy: string;
  /** A lab network's name. */
  network: string;
  /** A per-instance override. */
  fixedAddress?: string;
}

export interface AllocationInput {
  /** "namespace/name": MACs are derived from it. */
  lab: string;
  networks: readonly LabNetwork[];
  /** In a stable order: new NICs are given addresses in it. */
  nics: readonly NicRequest[];
  /** What status held: kept wherever still valid. */
  previous: readonly LabAddress[];
}

export type AddressProblemReason =
  | "InvalidCIDR"
  | "MissingExternalCIDR"
  | "DuplicateNetwork"
  | "OverlappingCIDRs"
  | "UnknownNetwork"
  | "DuplicateNIC"
  | "CIDRTooSmall"
  | "InvalidFixedAddress"
  | "FixedAddressTaken";

export interface AddressProblem {
  reason: AddressProblemReason;
  message: string;
}

export type AllocationResult = { ok: true; addresses: LabAddress[] } | ({ ok: false } & AddressProblem);

// ------------------------------------------------------------------ IPv4 as plain integers

interface Cidr {
  text: string;
  base: number;
  size: number;
}

const OCTET = /^(0|[1-9]\d{0,2})$/;

/** A dotted quad as an unsigned 32-bit integer; leading zeros refused (they read as octal elsewhere). */
export function parseIpv4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    const octet = OCTET.test(part) ? Number(part) : 256;
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

export function formatIpv4(n: number): string {
  return `${Math.floor(n / 16777216)}.${Math.floor(n / 65536) % 256}.${Math.floor(n / 256) % 256}.${n % 256}`;
}

/** The CIDR, or why it is not one. Host bits must be clear, as Kubernetes' validation has it. */
function parseCidr(text: string): Cidr | string {
  const [address = "", prefixText = "", ...rest] = text.split("/");
  const base = parseIpv4(address);
  const prefix = /^([0-9]|[12][0-9]|3[0-2])$/.test(prefixText) ? Number(prefixText) : undefined;
  if (base === undefined || prefix === undefined || rest.length > 0) return `"${text}" is not an IPv4 CIDR`;
  const size = 2 ** (32 - prefix);
  if (base % size !== 0) return `"${text}" has host bits set (the network is ${formatIpv4(base - (base % size))}/${prefix})`;
  return { text, base, size };
}

// The network address, the gateway (the first usable address: .1 of a /24) and the broadcast address are
// never handed out.
function usableCount(cidr: Cidr): number {
  return Math.max(0, cidr.size - 3);
}

function allocatable(cidr: Cidr, address: number): boolean {
  return address >= cidr.base + 2 && address <= cidr.base + cidr.size - 2;
}

// ------------------------------------------------------------------ the networks

interface Range {
  label: string;
  cidr: Cidr;
}

interface ParsedNetwork {
  network: LabNetwork;
  cidr: Cidr;
  /** Fenced only. */
  external?: Cidr;
}

/** Why the lab's networks cannot be used, or undefined: duplicate names, bad or overlapping CIDRs. */
export function labNetworkProblem(networks: readonly LabNetwork[]): AddressProblem | undefined {
  const parsed = parseNetworks(networks);
  return "reason" in parsed ? parsed : overlap(parsed.flatMap(rangesOf));
}

function parseNetworks(networks: readonly LabNetwork[]): ParsedNetwork[] | AddressProblem {
  const seen = new Set<string>();
  const parsed: ParsedNetwork[] = [];
  for (const network of networks) {
    if (seen.has(network.name)) return { reason: "DuplicateNetwork", message: `network ${network.name} is declared twice` };
    seen.add(network.name);
    const one = parseNetwork(network);
    if ("reason" in one) return one;
    parsed.push(one);
  }
  return parsed;
}

function parseNetwork(network: LabNetwork): ParsedNetwork | AddressProblem {
  const cidr = parseCidr(network.cidr);
  if (typeof cidr === "string") return { reason: "InvalidCIDR", message: `network ${network.name}: cidr ${cidr}` };
  // An externalCidr means something only behind a fence; on other networks it is ignored.
  if (network.mode !== "Fenced") return { network, cidr };
  if (!network.externalCidr) return { reason: "MissingExternalCIDR", message: `network ${network.name} is Fenced and declares no externalCidr for its copies' external addresses` };
  const external = parseCidr(network.externalCidr);
  if (typeof external === "string") return { reason: "InvalidCIDR", message: `network ${network.name}: externalCidr ${external}` };
  return { network, cidr, external };
}

function rangesOf(p: ParsedNetwork): Range[] {
  const own = { label: `network ${p.network.name} (${p.cidr.text})`, cidr: p.cidr };
  return p.external ? [own, { label: `network ${p.network.name}'s external range (${p.external.text})`, cidr: p.external }] : [own];
}

/** The first overlap by address: sorted by start, each range against the one reaching furthest before it. */
function overlap(ranges: Range[]): AddressProblem | undefined {
  const sorted = [...ranges].sort((a, b) => a.cidr.base - b.cidr.base);
  let furthest: Range | undefined;
  for (const range of sorted) {
    if (furthest && range.cidr.base < furthest.cidr.base + furthest.cidr.size) {
      return { reason: "OverlappingCIDRs", message: `${furthest.label} and ${range.label} overlap` };
    }
    if (!furthest || range.cidr.base + range.cidr.size > furthest.cidr.base + furthest.cidr.size) furthest = range;
  }
  return undefined;
}

// ------------------------------------------------------------------ address spaces and what takes them

/**
 * One address space: a Bridged network's, an Isolated network's in one copy, a Fenced network's (the same in
 * every copy) or a Fenced network's external range.
 */
interface Pool {
  kind: LabNetwork["mode"] | "External";
  network: NetworkUnits;
  cidr: Cidr;
  /** Isolated: the copy it is the segment of. */
  copy?: string;
  holders: Map<number, AddressUnit>;
  /** Below it every allocatable address is taken. */
  cursor: number;
  units: number;
}

/** Whatever holds one address of a pool: a NIC, or a fenced NIC in every copy at once. */
interface AddressUnit {
  pool: Pool;
  /** The VM's name, or for a fenced internal address its name within every copy. */
  name: string;
  fixed?: { text: string; vm: string };
  /** Addresses status held for it, in the NICs' order. */
  previous: string[];
  address?: number;
  text?: string;
}

/** Whatever holds one MAC: a NIC, or a fenced NIC in every copy at once (no copy then). */
interface MacUnit {
  copy?: string;
  vmInCopy: string;
  network: string;
  previous: string[];
  mac?: string;
}

interface Nic {
  request: NicRequest;
  segment: string;
  internal: AddressUnit;
  external?: AddressUnit;
  mac: MacUnit;
  /** What status held for it. */
  held?: LabAddress;
}

/** One copy's part of a network. */
interface CopyOnNetwork {
  segment: string;
  /** Isolated: the copy's own pool. */
  pool?: Pool;
  vmsInCopy: Set<string>;
}

/** A lab network and what its NICs take of it. */
interface NetworkUnits {
  parsed: ParsedNetwork;
  /** By VM. */
  nics: Map<string, Nic>;
  copies: Map<string, CopyOnNetwork>;
  /** Bridged, and the internal addresses of Fenced. */
  shared?: Pool;
  external?: Pool;
  /** Fenced: the internal address and MAC of each VM by its name within every copy. */
  fenced: Map<string, { internal: AddressUnit; mac: MacUnit }>;
}

/** What the allocator builds from the NICs, in their order, before it gives anything. */
interface LabUnits {
  networks: Map<string, NetworkUnits>;
  nics: Nic[];
  addressUnits: AddressUnit[];
  macUnits: MacUnit[];
  pools: Pool[];
}

function newPool(lab: LabUnits, network: NetworkUnits, kind: Pool["kind"], cidr: Cidr): Pool {
  const pool: Pool = { kind, network, cidr, holders: new Map(), cursor: cidr.base + 2, units: 0 };
  lab.pools.push(pool);
  return pool;
}

function newAddressUnit(lab: LabUnits, pool: Pool, name: string): AddressUnit {
  const unit: AddressUnit = { pool, name, previous: [] };
  lab.addressUnits.push(unit);
  pool.units++;
  return unit;
}

function networkUnits(lab: LabUnits, parsed: ParsedNetwork): NetworkUnits {
  const network: NetworkUnits = { parsed, nics: new Map(), copies: new Map(), fenced: new Map() };
  if (parsed.network.mode !== "Isolated") network.shared = newPool(lab, network, parsed.network.mode, parsed.cidr);
  if (parsed.external) network.external = newPool(lab, network, "External", parsed.external);
  return network;
}

function copyOn(lab: LabUnits, network: NetworkUnits, copy: string): CopyOnNetwork {
  let on = network.copies.get(copy);
  if (on) return on;
  const { name, mode } = network.parsed.network;
  on = { segment: mode === "Bridged" ? name : `${name}/${copy}`, vmsInCopy: new Set() };
  if (mode === "Isolated") {
    on.pool = newPool(lab, network, mode, network.parsed.cidr);
    on.pool.copy = copy;
  }
  network.copies.set(copy, on);
  return on;
}

/**
 * The address and MAC of every NIC, or why the lab cannot have them — checked up front, before anything is
 * given: the networks, the NICs, each address space's size against what it must hold, the fixed addresses.
 */
export function allocateAddresses(input: Readonly<AllocationInput>): AllocationResult {
  const parsed = parseNetworks(input.networks);
  const lab = "reason" in parsed ? parsed : (overlap(parsed.flatMap(rangesOf)) ?? unitsOf(input, parsed));
  if ("reason" in lab) return { ok: false, ...lab };
  const refused = tooSmall(lab) ?? claimFixed(lab) ?? keepPrevious(lab);
  if (refused) return { ok: false, ...refused };
  for (const unit of lab.addressUnits) unit.address ??= nextFree(unit);
  chooseMacs(input.lab, lab);
  return { ok: true, addresses: lab.nics.map(labAddress) };
}

function unitsOf(input: Readonly<AllocationInput>, parsed: readonly ParsedNetwork[]): LabUnits | AddressProblem {
  const lab: LabUnits = { networks: new Map(), nics: [], addressUnits: [], macUnits: [], pools: [] };
  for (const p of parsed) lab.networks.set(p.network.name, networkUnits(lab, p));
  for (const request of input.nics) {
    const network = lab.networks.get(request.network);
    if (!network) return { reason: "UnknownNetwork", message: `VM ${request.vm} has a NIC on network ${request.network}, which the lab does not declare` };
    const on = copyOn(lab, network, request.copy);
    const duplicate = duplicateNic(network, on, request);
    if (duplicate) return duplicate;
    on.vmsInCopy.add(request.vmInCopy);
    const nic = network.external ? fencedNic(lab, network, on, request) : plainNic(lab, on.pool ?? network.shared!, on, request);
    if ("reason" in nic) return nic;
    network.nics.set(request.vm, nic);
    lab.nics.push(nic);
  }
  addPrevious(lab, input.previous);
  return lab;
}

/** A VM has one NIC on a network, and within a copy one VM has a name: a fenced address is given by it. */
function duplicateNic(network: NetworkUnits, on: CopyOnNetwork, request: NicRequest): AddressProblem | undefined {
  const { vm, vmInCopy, copy } = request;
  const { name } = network.parsed.network;
  if (network.nics.has(vm)) return { reason: "DuplicateNIC", message: `VM ${vm} has more than one NIC on network ${name}` };
  if (on.vmsInCopy.has(vmInCopy)) return { reason: "DuplicateNIC", message: `two VMs of copy ${copy} on network ${name} are named ${vmInCopy} within it` };
  return undefined;
}

function plainNic(lab: LabUnits, pool: Pool, on: CopyOnNetwork, request: NicRequest): Nic {
  const internal = newAddressUnit(lab, pool, request.vm);
  if (request.fixedAddress !== undefined) internal.fixed = { text: request.fixedAddress, vm: request.vm };
  const mac: MacUnit = { copy: request.copy, vmInCopy: request.vmInCopy, network: request.network, previous: [] };
  lab.macUnits.push(mac);
  return { request, segment: on.segment, internal, mac };
}

/** A fenced NIC shares its internal address and its MAC with the same VM in every other copy. */
function fencedNic(lab: LabUnits, network: NetworkUnits, on: CopyOnNetwork, request: NicRequest): Nic | AddressProblem {
  let twin = network.fenced.get(request.vmInCopy);
  if (!twin) {
    twin = { internal: newAddressUnit(lab, network.shared!, request.vmInCopy), mac: { vmInCopy: request.vmInCopy, network: request.network, previous: [] } };
    network.fenced.set(request.vmInCopy, twin);
    lab.macUnits.push(twin.mac);
  }
  const { internal, mac } = twin;
  const fixed = request.fixedAddress;
  if (fixed !== undefined && internal.fixed && internal.fixed.text !== fixed) {
    return {
      reason: "InvalidFixedAddress",
      message: `VMs ${internal.fixed.vm} and ${request.vm} ask for different fixed addresses (${internal.fixed.text}, ${fixed}) on Fenced network ${request.network}, where every copy has the same`,
    };
  }
  if (fixed !== undefined) internal.fixed ??= { text: fixed, vm: request.vm };
  return { request, segment: on.segment, internal, external: newAddressUnit(lab, network.external!, request.vm), mac };
}

/** What status held for each NIC (the first record of a VM on a network); a fenced unit collects every copy's. */
function addPrevious(lab: LabUnits, previous: readonly LabAddress[]): void {
  for (const p of previous) {
    const nic = lab.networks.get(p.network)?.nics.get(p.vm);
    if (nic) nic.held ??= p;
  }
  for (const { held, internal, external, mac } of lab.nics) {
    if (!held) continue;
    internal.previous.push(held.address);
    if (external && held.externalAddress !== undefined) external.previous.push(held.externalAddress);
    mac.previous.push(held.macAddress);
  }
}

// ------------------------------------------------------------------ giving addresses

function tooSmall(lab: LabUnits): AddressProblem | undefined {
  for (const pool of lab.pools) {
    const usable = usableCount(pool.cidr);
    if (pool.units > usable) return { reason: "CIDRTooSmall", message: `${poolLabel(pool)} has ${usable} usable addresses; ${demand(pool)}` };
  }
  return undefined;
}

function poolLabel(pool: Pool): string {
  const { name } = pool.network.parsed.network;
  return pool.kind === "External" ? `network ${name}'s external range (${pool.cidr.text})` : `network ${name} (${pool.cidr.text})`;
}

function demand(pool: Pool): string {
  const { units, network } = pool;
  switch (pool.kind) {
    case "Bridged":
      return `the lab needs ${units}`;
    case "Isolated":
      return `copy ${pool.copy} needs ${units}`;
    case "External":
      return `${network.copies.size} copies need ${units}`;
    case "Fenced": {
      const [copy, most] = [...network.copies].map(([name, on]) => [name, on.vmsInCopy.size] as const).reduce((a, b) => (b[1] > a[1] ? b : a));
      return most === units ? `copy ${copy} needs ${units}` : `its copies need ${units} distinct addresses`;
    }
  }
}

function holderName(unit: AddressUnit): string {
  return unit.pool.kind === "Fenced" ? `${unit.name} in every copy` : `VM ${unit.name}`;
}

function claimFixed(lab: LabUnits): AddressProblem | undefined {
  for (const unit of lab.addressUnits) {
    if (!unit.fixed) continue;
    const { pool } = unit;
    const address = parseIpv4(unit.fixed.text);
    const what = `fixed address ${unit.fixed.text} of VM ${unit.fixed.vm}`;
    if (address === undefined) return { reason: "InvalidFixedAddress", message: `${what} is not an IPv4 address` };
    if (!allocatable(pool.cidr, address)) return { reason: "InvalidFixedAddress", message: `${what} ${outsideOrReserved(pool.cidr, address)} ${poolLabel(pool)}` };
    const holder = pool.holders.get(address);
    if (holder) return { reason: "FixedAddressTaken", message: `${what} on ${poolLabel(pool)} is taken by ${holderName(holder)}` };
    pool.holders.set(address, unit);
    unit.address = address;
  }
  return undefined;
}

function outsideOrReserved(cidr: Cidr, address: number): string {
  if (address < cidr.base || address >= cidr.base + cidr.size) return "is outside";
  if (address === cidr.base + 1) return "is the gateway of";
  return address === cidr.base ? "is the network address of" : "is the broadcast address of";
}

/**
 * Each unit keeps the first address status held for it that is still in its space, not reserved and not
 * already kept by a unit before it. A fixed address may not take an address another NIC holds: that is
 * refused, so no kept VM's address ever moves.
 */
function keepPrevious(lab: LabUnits): AddressProblem | undefined {
  for (const unit of lab.addressUnits) {
    const problem = unit.address === undefined ? keepOne(unit) : undefined;
    if (problem) return problem;
  }
  return undefined;
}

function keepOne(unit: AddressUnit): AddressProblem | undefined {
  const { pool } = unit;
  for (const text of unit.previous) {
    const address = parseIpv4(text);
    if (address === undefined || !allocatable(pool.cidr, address)) continue;
    const holder = pool.holders.get(address);
    if (holder?.fixed && !holder.previous.includes(text)) {
      return { reason: "FixedAddressTaken", message: `fixed address ${holder.fixed.text} of VM ${holder.fixed.vm} on ${poolLabel(pool)} is taken by ${holderName(unit)}` };
    }
    if (holder) continue;
    pool.holders.set(address, unit);
    unit.address = address;
    return undefined;
  }
  return undefined;
}

/** The lowest free address at or above the pool's cursor; the size check made sure there is one. */
function nextFree(unit: AddressUnit): number {
  const { pool } = unit;
  while (pool.holders.has(pool.cursor)) pool.cursor++;
  pool.holders.set(pool.cursor, unit);
  return pool.cursor++;
}

// ------------------------------------------------------------------ MACs

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/**
 * Each unit keeps the MAC status held for it unless a unit before it kept it; the others get one derived
 * from the lab and the unit's identity — (copy, VM in copy, network), without the copy when fenced —
 * re-hashed while it collides within the lab.
 */
function chooseMacs(labName: string, lab: LabUnits): void {
  const taken = new Set<string>();
  for (const unit of lab.macUnits) {
    unit.mac = unit.previous.map((m) => m.toLowerCase()).find((m) => MAC.test(m) && !taken.has(m));
    if (unit.mac) taken.add(unit.mac);
  }
  for (const unit of lab.macUnits) {
    unit.mac ??= freshMac(`${labName}/${unit.copy === undefined ? "" : `${unit.copy}/`}${unit.vmInCopy}/${unit.network}`, taken);
    taken.add(unit.mac);
  }
}

function freshMac(identity: string, taken: ReadonlySet<string>): string {
  for (let attempt = 0; ; attempt++) {
    const mac = macFromHash(fnv1a(`${identity}#${attempt}`));
    if (!taken.has(mac)) return mac;
  }
}

function macFromHash(hash: number): string {
  const bytes = [(hash >>> 16) & 0xff, (hash >>> 8) & 0xff, hash & 0xff];
  return `${MAC_PREFIX}:${bytes.map((b) => b.toString(16).padStart(2, "0")).join(":")}`;
}

function addressText(unit: AddressUnit): string {
  unit.text ??= formatIpv4(unit.address!);
  return unit.text;
}

function labAddress(nic: Nic): LabAddress {
  const { request, external } = nic;
  const address: LabAddress = { vm: request.vm, network: request.network, segment: nic.segment, address: addressText(nic.internal), macAddress: nic.mac.mac! };
  if (external) address.externalAddress = addressText(external);
  return address;
}
