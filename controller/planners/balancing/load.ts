// Host load as classic DRS measures it (BEHAVIOUR.md, Balancing): on every host that takes VMs, Σ VM demand /
// host capacity, for CPU (physical cores the guests use / cores) and for memory (MiB allocated / MiB). The
// cluster's imbalance is the larger of the two standard deviations; the threshold sets what it may reach.

/** What a VM asks of the host it runs on. */
export interface Demand {
  /** Physical cores the guest uses. */
  cpu: number;
  /** Memory allocated to it. */
  memoryMiB: number;
}

export interface LoadHost {
  name: string;
  cores: number;
  memoryMiB: number;
}

/**
 * One resource's load on every host, with the sum and the sum of squares of its distances from `center`
 * (the mean when last summed, so the figures stay precise near perfect balance): a move is judged in O(1).
 */
interface Loads {
  values: Float64Array;
  center: number;
  sum: number;
  squares: number;
}

/** The load of every host that takes VMs, as fractions of its capacity, updated move by move. */
export interface LoadModel {
  hosts: readonly LoadHost[];
  index: ReadonlyMap<string, number>;
  cpu: Loads;
  memory: Loads;
}

export function loadModel(hosts: readonly LoadHost[], demands: Iterable<{ host: string; demand: Demand }>): LoadModel {
  const index = new Map(hosts.map((h, i) => [h.name, i]));
  const empty = (): Loads => ({ values: new Float64Array(hosts.length), center: 0, sum: 0, squares: 0 });
  const model: LoadModel = { hosts, index, cpu: empty(), memory: empty() };
  for (const { host, demand } of demands) {
    const i = index.get(host);
    if (i !== undefined) addDemand(model, i, demand, 1);
  }
  resum(model.cpu);
  resum(model.memory);
  return model;
}

/** The standard deviation of host load, the larger of CPU and memory; 0 with fewer than two hosts. */
export function imbalanceOf(model: Readonly<LoadModel>): number {
  return Math.max(deviation(model.cpu), deviation(model.memory));
}

/** A host's load, the larger of its CPU and memory shares. */
export function hostLoad(model: Readonly<LoadModel>, host: number): { cpu: number; memory: number } {
  return { cpu: model.cpu.values[host] ?? 0, memory: model.memory.values[host] ?? 0 };
}

/** The imbalance once `demand` runs on host `to` instead of host `from` (indices of the model). */
export function imbalanceAfterMove(model: Readonly<LoadModel>, from: number, to: number, demand: Readonly<Demand>): number {
  const source = model.hosts[from]!;
  const target = model.hosts[to]!;
  return Math.max(
    deviationAfter(model.cpu, { from, to, removed: share(demand.cpu, source.cores), added: share(demand.cpu, target.cores) }),
    deviationAfter(model.memory, { from, to, removed: share(demand.memoryMiB, source.memoryMiB), added: share(demand.memoryMiB, target.memoryMiB) }),
  );
}

export function applyMove(model: LoadModel, from: number, to: number, demand: Readonly<Demand>): void {
  addDemand(model, from, demand, -1);
  addDemand(model, to, demand, 1);
  // Summed afresh, not adjusted: no rounding error accumulates over a pass.
  resum(model.cpu);
  resum(model.memory);
}

/**
 * The imbalance the threshold tolerates. BEHAVIOUR.md, Balancing: a move is recommended at priority
 * 6 − ceil(imbalance / 0.1 × √hosts) and applied when its priority ≤ threshold, so a pass moves while
 * imbalance > (5 − threshold) / (10 × √hosts). Threshold 1 takes only mandatory moves (priority 1: rules,
 * maintenance), which are not balancing's: see `balancesLoad`.
 */
export function targetImbalance(threshold: number, hosts: number): number {
  return (5 - threshold) / (10 * Math.sqrt(Math.max(hosts, 1)));
}

/** Whether the threshold lets balancing move VMs at all: threshold 1 is mandatory moves only. */
export function balancesLoad(threshold: number): boolean {
  return threshold >= 2;
}

/** The DRS priority (1–5) of a move recommended at this imbalance; load balancing never rates priority 1. */
export function movePriority(imbalance: number, hosts: number): number {
  return Math.min(5, Math.max(2, 6 - Math.ceil((imbalance / 0.1) * Math.sqrt(hosts))));
}

function addDemand(model: LoadModel, host: number, demand: Readonly<Demand>, sign: 1 | -1): void {
  const h = model.hosts[host]!;
  model.cpu.values[host] = (model.cpu.values[host] ?? 0) + sign * share(demand.cpu, h.cores);
  model.memory.values[host] = (model.memory.values[host] ?? 0) + sign * share(demand.memoryMiB, h.memoryMiB);
}

function share(amount: number, capacity: number): number {
  return capacity > 0 ? amount / capacity : 0;
}

function resum(loads: Loads): void {
  let total = 0;
  for (const l of loads.values) total += l;
  const center = loads.values.length > 0 ? total / loads.values.length : 0;
  let sum = 0;
  let squares = 0;
  for (const l of loads.values) {
    sum += l - center;
    squares += (l - center) ** 2;
  }
  loads.center = center;
  loads.sum = sum;
  loads.squares = squares;
}

function deviationOf(n: number, sum: number, squares: number): number {
  if (n < 2) return 0;
  const mean = sum / n;
  return Math.sqrt(Math.max(0, squares / n - mean * mean));
}

function deviation(loads: Readonly<Loads>): number {
  return deviationOf(loads.values.length, loads.sum, loads.squares);
}

/** The deviation with `removed` taken off host `from` and `added` put on host `to`. */
function deviationAfter(loads: Readonly<Loads>, { from, to, removed, added }: { from: number; to: number; removed: number; added: number }): number {
  const f = (loads.values[from] ?? 0) - loads.center;
  const t = (loads.values[to] ?? 0) - loads.center;
  const sum = loads.sum - removed + added;
  const squares = loads.squares - f * f + (f - removed) ** 2 - t * t + (t + added) ** 2;
  return deviationOf(loads.values.length, sum, squares);
}
