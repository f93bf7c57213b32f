// A whole Vireo on a virtual clock, in one process: the object store, the real controller and the
// simulated hosts, driven timer by timer as fast as the CPU allows. Nothing here reads the wall clock or
// draws an unseeded random number, so the same scenario and seed replay the same run.

import type { VireoObject } from "../api/types.ts";
import { keyOf } from "../api/types.ts";
import { VirtualClock, settle } from "../core/clock.ts";
import type { VmConfig } from "../core/observation.ts";
import { Controller } from "../engine/controller.ts";
import type { EventRecorder, StatusWriter } from "../engine/context.ts";
import { silentLogger } from "../observe/log.ts";
import { SimulatedHosts } from "../provider/sim/index.ts";
import { withIdentity } from "../sources/identity.ts";
import { ObjectStore } from "../sources/store.ts";
import { storeObjectWriter } from "../sources/store-writer.ts";
import { seededRandom } from "../core/random.ts";

export type Workload = VmConfig["workload"];

export interface WorldOptions {
  seed: number;
  startMs: number;
  /** Told of every status the controller writes, before the store records it. */
  statusWriter: StatusWriter;
  events: EventRecorder;
}

export class SimulatedWorld {
  readonly clock: VirtualClock;
  readonly store = new ObjectStore();
  readonly sim: SimulatedHosts;
  readonly controller: Controller;
  private uids = 0;

  constructor(options: WorldOptions) {
    this.clock = new VirtualClock(options.startMs);
    this.sim = new SimulatedHosts({ clock: this.clock, seed: options.seed });
    this.controller = new Controller({
      store: this.store,
      provider: this.sim,
      statusWriter: options.statusWriter,
      // The objects the controller makes (a lab's VMs) are admitted as the file mode admits them, with counted uids.
      objects: storeObjectWriter(this.store, this.clock, () => this.nextUid()),
      events: options.events,
      clock: this.clock,
      log: silentLogger(),
      // The work queue's retry jitter, drawn from the run's seed.
      random: seededRandom(options.seed),
    });
  }

  /** Applies objects as `kubectl apply` would, giving new ones an identity (uids counted, not random). */
  apply(objects: readonly VireoObject[]): void {
    for (const object of objects) {
      const previous = this.store.get(keyOf(object));
      this.store.upsert(withIdentity(object, previous, this.clock.now(), () => this.nextUid()));
    }
  }

  /**
   * The guest of `id` works as `workload` from now, when the hosts have it (running, or off where it last
   * ran). A guest they do not have yet gets its workload from its manifest when Vireo starts it.
   */
  async setGuestWorkload(id: string, workload: Readonly<Workload>): Promise<boolean> {
    if (!this.sim.observeVm(id)) return false;
    await this.sim.setGuestWorkload(id, { ...workload });
    return true;
  }

  async start(): Promise<void> {
    await this.controller.start();
    await this.controller.idle();
  }

  /**
   * Moves time to `at`, timer by timer, letting the controller finish its work after each. `afterStep` runs
   * after each, at that timer's time; when it changed something, the controller finishes that work too.
   */
  async runUntil(at: number, afterStep: () => Promise<boolean>): Promise<void> {
    await this.settleStep(afterStep);
    while (this.clock.fireNext(at)) {
      await settle(1);
      await this.settleStep(afterStep);
    }
    await this.clock.advanceTo(at);
    await this.settleStep(afterStep);
  }

  private async settleStep(afterStep: () => Promise<boolean>): Promise<void> {
    await this.controller.idle();
    while (await afterStep()) {
      await settle(1);
      await this.controller.idle();
    }
  }

  async stop(): Promise<void> {
    await this.controller.stop();
    await this.sim.close();
  }

  /** A uid shaped like the API server's, numbered in the order objects arrive. */
  private nextUid(): string {
    this.uids++;
    return `00000000-0000-4000-8000-${this.uids.toString(16).padStart(12, "0")}`;
  }
}
