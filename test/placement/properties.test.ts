// Properties of placement over random fleets and requests, each checked by a slow, obviously-correct
// re-implementation of the rules that looks at every VM for every host. fast-check prints the seed and
// the shrunk counterexample of any failure; replay with fc.assert(…, { seed, path }).

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { HOST_LABEL } from "../../controller/api/types.ts";
import type { HostAffinityTerm, LabelSelector, VmAffinityTerm, VmPlacement } from "../../controller/api/types.ts";
import { hostsThatFit, placeBatch } from "../../controller/placement/index.ts";
import type { BatchPlan, CandidateHost, ClusterSnapshot, PlacedVm, VmRequest } from "../../controller/placement/index.ts";

// ------------------------------------------------------------------ the slow checker

type Labels = Record<string, string>;

function has(labels: Labels, key: string): boolean {
  return Object.keys(labels).includes(key);
}

function selects(selector: LabelSelector, labels: Labels): boolean {
  const pairs = Object.entries(selector.matchLabels ?? {});
  const expressions = selector.matchExpressions ?? [];
  return (
    pairs.every(([k, v]) => has(labels, k) && labels[k] === v) &&
    expressions.every((e) => {
      const present = has(labels, e.key);
      const inValues = present && (e.values ?? []).includes(labels[e.key] ?? "");
      if (e.operator === "In") return inValues;
      if (e.operator === "NotIn") return !inValues;
      if (e.operator === "Exists") return present;
      return !present;
    })
  );
}

function hostLabels(host: CandidateHost): Labels {
  return { ...host.labels, [HOST_LABEL]: host.name };
}

function hostTermSelects(term: HostAffinityTerm, labels: Labels): boolean {
  const empty = Object.keys(term.matchLabels ?? {}).length === 0 && (term.matchExpressions ?? []).length === 0;
  return !empty && selects(term, labels);
}

function namespacesOf(term: VmAffinityTerm, own: string): string[] {
  return term.namespaces && term.namespaces.length > 0 ? term.namespaces : [own];
}

/** Every reason `host` has to refuse `request`, in filter order, given the VMs on hosts now. */
function reasonsAgainst(snapshot: ClusterSnapshot, running: readonly PlacedVm[], request: VmRequest, host: CandidateHost): string[] {
  const reasons: string[] = [];
  const hostsByName = new Map(snapshot.hosts.map((h) => [h.name, h]));
  const onKnownHosts = running.filter((vm) => hostsByName.has(vm.host));
  const labels = hostLabels(host);
  const features = [...request.cpuFeatures].sort();
  const baseline = snapshot.cpuBaseline;
  for (const f of features) if (baseline && !baseline.features.includes(f)) reasons.push(`CPU feature ${f} is not in the cluster baseline`);
  if (host.unavailable !== undefined) reasons.push(host.unavailable || "unavailable");
  const hypervisor = request.hypervisor ?? request.placement.hypervisor;
  if (hypervisor && host.hypervisor !== hypervisor) reasons.push(`hypervisor is not ${hypervisor}`);
  if (baseline?.vendor && host.cpu.vendor !== baseline.vendor) reasons.push(`CPU vendor is not ${baseline.vendor}`);
  for (const f of features) if (!host.cpu.features.includes(f)) reasons.push(`missing CPU feature ${f}`);
  for (const d of [...request.datastores].sort()) if (!host.datastores.includes(d)) reasons.push(`datastore ${d} not visible`);
  for (const n of [...request.networks].sort()) if (!host.networks.includes(n)) reasons.push(`network ${n} not available`);
  const required = request.placement.hostAffinity?.required ?? [];
  if (required.length > 0 && !required.some((t) => hostTermSelects(t, labels))) reasons.push("didn't match host affinity");
  const here = onKnownHosts.filter((vm) => vm.host === host.name);
  if (here.reduce((s, vm) => s + vm.memoryMiB, 0) + request.memoryMiB > host.memoryMiB) reasons.push("insufficient memory");
  if (here.reduce((s, vm) => s + vm.cpu, 0) + request.cpu > host.cpu.cores * host.cpu.overcommitRatio) reasons.push("insufficient cpu");

  const domainOf = (vm: PlacedVm, key: string): string | undefined => {
    const h = hostsByName.get(vm.host);
    return h && has(hostLabels(h), key) ? hostLabels(h)[key] : undefined;
  };
  const matching = (term: VmAffinityTerm, own: string) =>
    onKnownHosts.filter((vm) => namespacesOf(term, own).includes(vm.namespace) && selects(term.labelSelector, vm.labels));
  const affinity = request.placement.vmAffinity?.required ?? [];
  const nobodyYet = affinity.every((t) => matching(t, request.namespace).every((vm) => domainOf(vm, t.topologyKey) === undefined));
  const matchesItself = affinity.every((t) => namespacesOf(t, request.namespace).includes(request.namespace) && selects(t.labelSelector, request.labels));
  for (const t of affinity) {
    const near = matching(t, request.namespace).some((vm) => has(labels, t.topologyKey) && domainOf(vm, t.topologyKey) === labels[t.topologyKey]);
    if (!has(labels, t.topologyKey) || (!near && !(nobodyYet && matchesItself))) reasons.push("didn't match VM affinity");
  }
  for (const t of request.placement.vmAntiAffinity?.required ?? []) {
    const near = matching(t, request.namespace).some((vm) => domainOf(vm, t.topologyKey) === labels[t.topologyKey]);
    if (!has(labels, t.topologyKey) || near) reasons.push("VM anti-affinity");
  }
  for (const other of onKnownHosts) {
    for (const t of other.antiAffinity ?? []) {
      const theirs = domainOf(other, t.topologyKey);
      if (theirs === undefined) continue;
      if (!namespacesOf(t, other.namespace).includes(request.namespace) || !selects(t.labelSelector, request.labels)) continue;
      if (!has(labels, t.topologyKey) || labels[t.topologyKey] === theirs) reasons.push("VM anti-affinity");
    }
  }
  return reasons;
}

/** The VMs the snapshot lists, less those being placed again, plus the plan's first `count` placements. */
function runningAfter(snapshot: ClusterSnapshot, requests: readonly VmRequest[], plan: BatchPlan, count: number): PlacedVm[] {
  const byId = new Map(requests.map((r) => [r.id, r]));
  const moving = new Set(byId.keys());
  const running = snapshot.placed.filter((vm) => !moving.has(vm.id));
  for (const p of plan.placements.slice(0, count)) {
    const r = byId.get(p.vm);
    assert.ok(r, `placed an unknown VM ${p.vm}`);
    running.push({ ...r, host: p.host, ...(r.placement.vmAntiAffinity?.required ? { antiAffinity: r.placement.vmAntiAffinity.required } : {}) });
  }
  return running;
}

// ------------------------------------------------------------------ random clusters

const KEYS = ["topology.vireo.dev/rack", "zone", HOST_LABEL] as const;
const APPS = ["a", "b", "c"];
const FEATURES = ["sse4_2", "avx2", "avx512f"];

const hostArb = (name: string) =>
  fc.record({
    rack: fc.option(fc.constantFrom("r1", "r2", "r3"), { nil: undefined }),
    zone: fc.option(fc.constantFrom("z1", "z2"), { nil: undefined }),
    hypervisor: fc.constantFrom("kvm", "kvm", "esx"),
    vendor: fc.constantFrom("intel", "intel", "amd"),
    features: fc.subarray(FEATURES),
    cores: fc.integer({ min: 1, max: 8 }),
    ratio: fc.constantFrom(1, 1.5, 2, 4),
    memoryGiB: fc.integer({ min: 2, max: 24 }),
    datastores: fc.subarray(["ds1", "ds2"]),
    networks: fc.subarray(["prod", "lab"]),
    unavailable: fc.option(fc.constantFrom("in maintenance", "not ready"), { freq: 6, nil: undefined }),
  }).map(
    (h): CandidateHost => ({
      name,
      labels: { ...(h.rack ? { "topology.vireo.dev/rack": h.rack } : {}), ...(h.zone ? { zone: h.zone } : {}) },
      hypervisor: h.hypervisor,
      cpu: { cores: h.cores, vendor: h.vendor, features: h.features, overcommitRatio: h.ratio },
      memoryMiB: h.memoryGiB * 1024,
      datastores: h.datastores,
      networks: h.networks,
      ...(h.unavailable ? { unavailable: h.unavailable } : {}),
    }),
  );

const selectorArb: fc.Arbitrary<LabelSelector> = fc.oneof(
  fc.constantFrom(...APPS).map((app) => ({ matchLabels: { app } })),
  fc.constantFrom(...APPS).map((app) => ({ matchExpressions: [{ key: "app", operator: "In" as const, values: [app, "x"] }] })),
  fc.constant<LabelSelector>({ matchExpressions: [{ key: "app", operator: "NotIn", values: ["a"] }] }),
);
const termArb: fc.Arbitrary<VmAffinityTerm> = fc.record({
  labelSelector: selectorArb,
  topologyKey: fc.constantFrom(...KEYS),
  namespaces: fc.option(fc.subarray(["n1", "n2"], { minLength: 1 }), { nil: undefined }),
}).map((t) => (t.namespaces ? t : { labelSelector: t.labelSelector, topologyKey: t.topologyKey }));
const weighted = fc.record({ weight: fc.integer({ min: 1, max: 100 }), term: termArb });

const placementArb = (withAffinity: boolean): fc.Arbitrary<VmPlacement> =>
  fc.record({
    hostRequired: fc.option(
      fc.array(fc.constant<HostAffinityTerm>({ matchExpressions: [{ key: "zone", operator: "In", values: ["z1"] }] }), { minLength: 1, maxLength: 2 }),
      { freq: 4, nil: undefined },
    ),
    hostPreferred: fc.option(fc.array(fc.record({ weight: fc.integer({ min: 1, max: 100 }), preference: fc.constant<HostAffinityTerm>({ matchLabels: { "topology.vireo.dev/rack": "r1" } }) }), { maxLength: 2 }), {
      freq: 3,
      nil: undefined,
    }),
    affinity: withAffinity ? fc.option(fc.array(termArb, { minLength: 1, maxLength: 2 }), { freq: 4, nil: undefined }) : fc.constant(undefined),
    antiAffinity: fc.option(fc.array(termArb, { minLength: 1, maxLength: 2 }), { freq: 2, nil: undefined }),
    preferredAffinity: fc.option(fc.array(weighted, { maxLength: 2 }), { freq: 4, nil: undefined }),
    preferredAnti: fc.option(fc.array(weighted, { maxLength: 2 }), { freq: 4, nil: undefined }),
    hypervisor: fc.option(fc.constantFrom("kvm" as const, "esx" as const), { freq: 4, nil: undefined }),
  }).map((p): VmPlacement => ({
    cluster: "c",
    ...(p.hypervisor ? { hypervisor: p.hypervisor } : {}),
    hostAffinity: { ...(p.hostRequired ? { required: p.hostRequired } : {}), ...(p.hostPreferred ? { preferred: p.hostPreferred } : {}) },
    vmAffinity: { ...(p.affinity ? { required: p.affinity } : {}), ...(p.preferredAffinity ? { preferred: p.preferredAffinity } : {}) },
    vmAntiAffinity: { ...(p.antiAffinity ? { required: p.antiAffinity } : {}), ...(p.preferredAnti ? { preferred: p.preferredAnti } : {}) },
  }));

const requestArb = (id: string, withAffinity: boolean): fc.Arbitrary<VmRequest> =>
  fc.record({
    namespace: fc.constantFrom("n1", "n2"),
    app: fc.constantFrom(...APPS),
    cpu: fc.integer({ min: 1, max: 8 }),
    memoryGiB: fc.integer({ min: 1, max: 12 }),
    cpuFeatures: fc.subarray(FEATURES, { maxLength: 1 }),
    datastores: fc.subarray(["ds1", "ds2"], { maxLength: 1 }),
    networks: fc.subarray(["prod", "lab"], { maxLength: 1 }),
    placement: placementArb(withAffinity),
  }).map((r) => ({
    id,
    namespace: r.namespace,
    labels: { app: r.app },
    cpu: r.cpu,
    memoryMiB: r.memoryGiB * 1024,
    cpuFeatures: r.cpuFeatures,
    datastores: r.datastores,
    networks: r.networks,
    placement: r.placement,
  }));

const placedArb = (id: string, hostNames: readonly string[]): fc.Arbitrary<PlacedVm> =>
  fc.record({
    namespace: fc.constantFrom("n1", "n2"),
    app: fc.constantFrom(...APPS),
    host: fc.constantFrom(...hostNames, "elsewhere"),
    cpu: fc.integer({ min: 1, max: 4 }),
    memoryGiB: fc.integer({ min: 1, max: 6 }),
    antiAffinity: fc.option(fc.array(termArb, { minLength: 1, maxLength: 1 }), { freq: 3, nil: undefined }),
  }).map((p) => ({
    id,
    namespace: p.namespace,
    labels: { app: p.app },
    host: p.host,
    cpu: p.cpu,
    memoryMiB: p.memoryGiB * 1024,
    ...(p.antiAffinity ? { antiAffinity: p.antiAffinity } : {}),
  }));

/** A cluster and a batch. Some requests reuse a placed VM's id: that VM is being placed again. */
const scenarioArb = (withAffinity = true) =>
  fc.integer({ min: 1, max: 7 }).chain((hostCount) => {
    const names = Array.from({ length: hostCount }, (_, i) => `h${i}`);
    return fc.record({
      hosts: fc.tuple(...names.map(hostArb)),
      placed: fc.uniqueArray(fc.integer({ min: 0, max: 14 }), { maxLength: 8 }).chain((ids) => fc.tuple(...ids.map((i) => placedArb(`vm-${i}`, names)))),
      requests: fc.uniqueArray(fc.integer({ min: 0, max: 14 }), { minLength: 1, maxLength: 10 }).chain((ids) =>
        fc.tuple(...ids.map((i) => requestArb(`vm-${i}`, withAffinity))),
      ),
      strategy: fc.constantFrom("Spread" as const, "Pack" as const),
      baseline: fc.option(fc.record({ vendor: fc.option(fc.constantFrom("intel" as const, "amd" as const), { nil: undefined }), features: fc.subarray(FEATURES) }), {
        nil: undefined,
      }),
    });
  }).map(({ hosts, placed, requests, strategy, baseline }) => ({
    snapshot: {
      hosts,
      placed,
      strategy,
      ...(baseline ? { cpuBaseline: baseline.vendor ? baseline : { features: baseline.features } } : {}),
    } satisfies ClusterSnapshot,
    requests: requests as VmRequest[],
  }));

function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let state = seed >>> 0 || 1;
  for (let i = out.length - 1; i > 0; i--) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const j = state % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

// ------------------------------------------------------------------ properties

describe("placement properties", () => {
  it("every placement passes every filter, judged against the VMs placed before it", () => {
    fc.assert(
      fc.property(scenarioArb(), ({ snapshot, requests }) => {
        const plan = placeBatch(snapshot, requests);
        plan.placements.forEach((p, i) => {
          const host = snapshot.hosts.find((h) => h.name === p.host);
          assert.ok(host, `placed on unknown host ${p.host}`);
          const request = requests.find((r) => r.id === p.vm);
          assert.ok(request);
          assert.deepEqual(reasonsAgainst(snapshot, runningAfter(snapshot, requests, plan, i), request, host), [], `${p.vm} on ${p.host}`);
        });
        assert.equal(plan.placements.length + plan.unschedulable.length, requests.length);
      }),
      { numRuns: 300 },
    );
  });

  it("never overcommits memory, keeps vCPUs within the ratio and breaks no anti-affinity in the final state", () => {
    fc.assert(
      fc.property(scenarioArb(), ({ snapshot, requests }) => {
        const plan = placeBatch(snapshot, requests);
        const running = runningAfter(snapshot, requests, plan, plan.placements.length);
        for (const host of snapshot.hosts) {
          const here = running.filter((vm) => vm.host === host.name);
          const newcomers = plan.placements.some((p) => p.host === host.name);
          if (!newcomers) continue;
          assert.ok(here.reduce((s, vm) => s + vm.memoryMiB, 0) <= host.memoryMiB, `memory overcommitted on ${host.name}`);
          assert.ok(here.reduce((s, vm) => s + vm.cpu, 0) <= host.cpu.cores * host.cpu.overcommitRatio, `cpu over ratio on ${host.name}`);
        }
        const hostsByName = new Map(snapshot.hosts.map((h) => [h.name, hostLabels(h)]));
        for (const p of plan.placements) {
          const me = running.find((vm) => vm.id === p.vm);
          for (const t of me?.antiAffinity ?? []) {
            const mine = hostsByName.get(p.host)?.[t.topologyKey];
            const clash = running.find(
              (other) =>
                other.id !== p.vm &&
                namespacesOf(t, me?.namespace ?? "").includes(other.namespace) &&
                selects(t.labelSelector, other.labels) &&
                mine !== undefined &&
                hostsByName.get(other.host)?.[t.topologyKey] === mine,
            );
            assert.equal(clash, undefined, `${p.vm} shares ${t.topologyKey}=${mine} with ${clash?.id}`);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it("gives the same plan whatever the order of hosts, placed VMs and requests", () => {
    fc.assert(
      fc.property(scenarioArb(), fc.integer(), ({ snapshot, requests }, seed) => {
        const reordered = { ...snapshot, hosts: shuffled(snapshot.hosts, seed), placed: shuffled(snapshot.placed, seed + 1) };
        assert.deepEqual(placeBatch(reordered, shuffled(requests, seed + 2)), placeBatch(snapshot, requests));
      }),
      { numRuns: 200 },
    );
  });

  it("reports a VM unschedulable only if no host fits it in the final state, when it needs no VM affinity", () => {
    // Without required VM affinity a batch only ever takes room away, so a VM that fitted nowhere when
    // its turn came fits nowhere at the end either.
    fc.assert(
      fc.property(scenarioArb(false), ({ snapshot, requests }) => {
        const plan = placeBatch(snapshot, requests);
        const running = runningAfter(snapshot, requests, plan, plan.placements.length);
        for (const { vm, reasons } of plan.unschedulable) {
          const request = requests.find((r) => r.id === vm);
          assert.ok(request);
          for (const host of snapshot.hosts) {
            assert.notDeepEqual(reasonsAgainst(snapshot, running, request, host), [], `${vm} would fit on ${host.name}`);
          }
          assert.equal(Object.values(reasons).reduce((s, n) => s + n, 0), snapshot.hosts.length);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("hostsThatFit agrees with the slow checker on which hosts fit and why the others do not", () => {
    fc.assert(
      fc.property(scenarioArb(), ({ snapshot, requests }) => {
        const request = requests[0];
        if (request === undefined) return;
        const running = snapshot.placed.filter((vm) => vm.id !== request.id);
        const expected = { fits: [] as string[], rejected: new Map<string, number>() };
        for (const host of snapshot.hosts) {
          const [first] = reasonsAgainst(snapshot, running, request, host);
          if (first === undefined) expected.fits.push(host.name);
          else expected.rejected.set(first, (expected.rejected.get(first) ?? 0) + 1);
        }
        const fit = hostsThatFit(snapshot, request);
        assert.deepEqual([...fit.fits].sort(), expected.fits.sort());
        assert.deepEqual(fit.rejected, Object.fromEntries(expected.rejected));
      }),
      { numRuns: 300 },
    );
  });
});
