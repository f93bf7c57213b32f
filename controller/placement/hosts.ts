// The hosts of a snapshot, prepared once per batch: sorted by name (so a host's index is also its rank
// in every tie-break), with feature/datastore/network Sets, capacities in typed arrays and the topology
// domain of each host for every topology key a rule names.

import { HOST_LABEL } from "../api/types.ts";
import { byCodeUnits, labelValue, type Labels } from "../api/selectors.ts";
import type { CandidateHost } from "./types.ts";

/** The domains of one topology key: a small integer per distinct label value, −1 where a host lacks the key. */
export interface TopologyDomains {
  key: string;
  domainOfHost: Int32Array;
  /** The label value of each domain, by domain number. */
  values: readonly string[];
  domainOfValue: ReadonlyMap<string, number>;
}

export interface HostTable {
  hosts: readonly CandidateHost[];
  indexByName: ReadonlyMap<string, number>;
  /** The host's labels with `vireo.dev/host=<name>` guaranteed. */
  labels: readonly Labels[];
  features: readonly ReadonlySet<string>[];
  datastores: readonly ReadonlySet<string>[];
  networks: readonly ReadonlySet<string>[];
  memoryCapacity: Float64Array;
  /** vCPUs the host may hand out: cores × overcommit ratio. */
  cpuCapacity: Float64Array;
  maxMemoryCapacity: number;
  maxCpuCapacity: number;
  domainsByKey: Map<string, TopologyDomains>;
}

export function hostTable(candidates: readonly CandidateHost[]): HostTable {
  const hosts = [...candidates].sort((a, b) => byCodeUnits(a.name, b.name));
  const indexByName = new Map<string, number>();
  hosts.forEach((host, index) => {
    if (indexByName.has(host.name)) throw new RangeError(`host ${host.name} appears twice in the snapshot`);
    indexByName.set(host.name, index);
  });
  const memoryCapacity = Float64Array.from(hosts, (h) => h.memoryMiB);
  const cpuCapacity = Float64Array.from(hosts, (h) => h.cpu.cores * h.cpu.overcommitRatio);
  return {
    hosts,
    indexByName,
    labels: hosts.map((h) => labelValue(h.labels, HOST_LABEL) === h.name ? h.labels : { ...h.labels, [HOST_LABEL]: h.name }),
    features: hosts.map((h) => new Set(h.cpu.features)),
    datastores: hosts.map((h) => new Set(h.datastores)),
    networks: hosts.map((h) => new Set(h.networks)),
    memoryCapacity,
    cpuCapacity,
    maxMemoryCapacity: memoryCapacity.reduce((max, v) => Math.max(max, v), 0),
    maxCpuCapacity: cpuCapacity.reduce((max, v) => Math.max(max, v), 0),
    domainsByKey: new Map(),
  };
}

/** The topology domains of `key`, computed the first time a rule asks for them. */
export function topologyDomains(table: HostTable, key: string): TopologyDomains {
  const known = table.domainsByKey.get(key);
  if (known !== undefined) return known;
  const domainOfHost = new Int32Array(table.hosts.length).fill(-1);
  const values: string[] = [];
  const domainOfValue = new Map<string, number>();
  table.labels.forEach((labels, host) => {
    const value = labelValue(labels, key);
    if (value === undefined) return;
    let domain = domainOfValue.get(value);
    if (domain === undefined) {
      domain = values.length;
      values.push(value);
      domainOfValue.set(value, domain);
    }
    domainOfHost[host] = domain;
  });
  const domains = { key, domainOfHost, values, domainOfValue };
  table.domainsByKey.set(key, domains);
  return domains;
}
