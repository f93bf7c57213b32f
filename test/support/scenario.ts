// A whole Vireo on the virtual clock: store, controller and simulated hosts in one process, driven step
// by step. Manifests go through the same parsing and validation as the file mode.

import assert from "node:assert/strict";
import { VirtualClock, settle } from "../../controller/core/clock.ts";
import { Controller } from "../../controller/engine/controller.ts";
import type { EventRecorder, EventType, StatusWriter } from "../../controller/engine/context.ts";
import { ObjectStore } from "../../controller/sources/store.ts";
import { withIdentity } from "../../controller/sources/identity.ts";
import { parseManifestFile } from "../../controller/sources/files/manifests.ts";
import { SimulatedHosts } from "../../controller/provider/sim/index.ts";
import type { SimTimings } from "../../controller/provider/sim/timings.ts";
import { silentLogger } from "../../controller/observe/log.ts";
import type { Host, HostCluster, Kind, VireoObject, VirtualMachine } from "../../controller/api/types.ts";
import { keyOf, objectKey } from "../../controller/api/types.ts";
import { formatManifestError } from "../../controller/sources/files/manifests.ts";

export interface RecordedEvent {
  object: string;
  type: EventType;
  reason: string;
  message: string;
}

export interface ScenarioOptions {
  seed?: number;
  timings?: Partial<SimTimings>;
  /** How often the controller observes the hosts (default 1 s); coarser makes long runs cheaper. */
  observeIntervalMs?: number;
}

export class Scenario {
  readonly clock = new VirtualClock();
  readonly store = new ObjectStore();
  readonly sim: SimulatedHosts;
  controller: Controller;
  readonly events: RecordedEvent[] = [];
  statusWrites = 0;
  /** Told of every status write, as it is written (tests that watch a status go by between two steps). */
  onStatus: ((key: string, status: NonNullable<VireoObject["status"]>) => void) | undefined;
  private uids = 0;
  private readonly observeIntervalMs: number | undefined;

  constructor(options: ScenarioOptions = {}) {
    this.sim = new SimulatedHosts({ clock: this.clock, seed: options.seed ?? 1, ...(options.timings ? { timings: options.timings } : {}) });
    this.observeIntervalMs = options.observeIntervalMs;
    this.controller = this.newController();
  }

  private newController(): Controller {
    const statusWriter: StatusWriter = {
      writeStatus: async (object, status) => {
        this.statusWrites++;
        this.onStatus?.(keyOf(object as VireoObject), status);
      },
    };
    const events: EventRecorder = {
      record: (object, type, reason, message) => this.events.push({ object: keyOf(object as VireoObject), type, reason, message }),
    };
    return new Controller({ store: this.store, provider: this.sim, statusWriter, events, clock: this.clock, log: silentLogger(), ...(this.observeIntervalMs ? { observeIntervalMs: this.observeIntervalMs } : {}) });
  }

  /** Kills the controller and starts a new one over the same store and hosts, as a restarted process would. */
  async restartController(): Promise<void> {
    await this.controller.stop();
    this.controller = this.newController();
    await this.controller.start();
  }

  static async start(manifests: string, options?: ScenarioOptions): Promise<Scenario> {
    const scenario = new Scenario(options);
    scenario.apply(manifests);
    await scenario.controller.start();
    await scenario.controller.idle();
    return scenario;
  }

  /** Applies YAML as `kubectl apply` would: validated and defaulted by the CRDs, or refused. */
  apply(yaml: string): void {
    const parsed = parseManifestFile("scenario.yaml", yaml);
    if (!parsed.ok) throw new Error(parsed.errors.map(formatManifestError).join("\n"));
    for (const { object } of parsed.documents) {
      const previous = this.store.get(keyOf(object));
      this.store.upsert(withIdentity(object, previous, this.clock.now(), () => `uid-${++this.uids}`));
    }
  }

  delete(kind: Kind, name: string, namespace?: string): void {
    this.store.delete(objectKey(kind, name, namespace));
  }

  /** Moves simulated time forward, letting the controller finish its work after every event. */
  async advance(ms: number): Promise<void> {
    const target = this.clock.now() + ms;
    await this.controller.idle();
    while (this.clock.fireNext(target)) {
      await settle(1);
      await this.controller.idle();
    }
    await this.clock.advanceTo(target);
    await this.controller.idle();
  }

  /** Advances in steps until `done` holds, failing after `limitMs` of simulated time. */
  async until(done: () => boolean, limitMs = 600_000, stepMs = 1_000): Promise<number> {
    const start = this.clock.now();
    while (!done()) {
      if (this.clock.now() - start > limitMs) assert.fail(`condition not reached within ${limitMs / 1000}s of simulated time`);
      await this.advance(stepMs);
    }
    return this.clock.now() - start;
  }

  vm(name: string, namespace = "default"): VirtualMachine {
    const vm = this.store.get(objectKey("VirtualMachine", name, namespace)) as VirtualMachine | undefined;
    assert.ok(vm, `no VirtualMachine ${namespace}/${name}`);
    return vm;
  }

  host(name: string): Host {
    const host = this.store.get(objectKey("Host", name)) as Host | undefined;
    assert.ok(host, `no Host ${name}`);
    return host;
  }

  cluster(name: string): HostCluster {
    const cluster = this.store.get(objectKey("HostCluster", name)) as HostCluster | undefined;
    assert.ok(cluster, `no HostCluster ${name}`);
    return cluster;
  }

  vms(): VirtualMachine[] {
    return this.store.list("VirtualMachine");
  }

  async stop(): Promise<void> {
    await this.controller.stop();
    await this.sim.close();
  }
}

export function condition(object: VireoObject, type: string): { status: string; reason: string; message: string } | undefined {
  return object.status?.conditions?.find((c) => c.type === type);
}

/** YAML for a host; the defaults fill the rest. */
export function hostYaml(name: string, options: { cluster?: string; cores?: number; memoryMiB?: number; rack?: string; hypervisor?: string; features?: string[]; vendor?: string; datastores?: string[]; networks?: string[]; maintenance?: boolean } = {}): string {
  return `apiVersion: vireo.dev/v1alpha1
kind: Host
metadata:
  name: ${name}
  labels: {vireo.dev/cluster: ${options.cluster ?? "prod"}, topology.vireo.dev/rack: ${options.rack ?? "r1"}}
spec:
  hypervisor: ${options.hypervisor ?? "esx"}
  cpu: {cores: ${options.cores ?? 16}, vendor: ${options.vendor ?? "intel"}, features: [${(options.features ?? ["sse4_2", "avx", "avx2"]).join(", ")}], overcommitRatio: 4}
  memoryMiB: ${options.memoryMiB ?? 65536}
  datastores: [${(options.datastores ?? ["shared"]).join(", ")}]
  networks: [${(options.networks ?? ["prod"]).join(", ")}]
  maintenance: ${options.maintenance ?? false}
---
`;
}

export function clusterYaml(name = "prod", strategy = "Spread", ha = ""): string {
  return `apiVersion: vireo.dev/v1alpha1
kind: HostCluster
metadata: {name: ${name}}
spec:
  hostSelector: {matchLabels: {vireo.dev/cluster: ${name}}}
  placement: {strategy: ${strategy}}
${ha ? `  ha: ${ha}\n` : ""}---
`;
}

export function vmYaml(name: string, options: { namespace?: string; cluster?: string; cpu?: number; memoryMiB?: number; runStrategy?: string; labels?: Record<string, string>; features?: string[]; extra?: string } = {}): string {
  const labels = Object.entries(options.labels ?? { app: name }).map(([k, v]) => `${k}: ${v}`).join(", ");
  return `apiVersion: vireo.dev/v1alpha1
kind: VirtualMachine
metadata: {name: ${name}, namespace: ${options.namespace ?? "default"}, labels: {${labels}}}
spec:
  runStrategy: ${options.runStrategy ?? "Always"}
  cpu: ${options.cpu ?? 2}
  memoryMiB: ${options.memoryMiB ?? 4096}
  cpuFeatures: [${(options.features ?? []).join(", ")}]
  disks: [{name: root, sizeGiB: 20, datastore: shared}]
  networks: [{name: prod}]
  placement: {cluster: ${options.cluster ?? "prod"}}
${options.extra ?? ""}---
`;
}
