// Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics and defaults (lease 15 s,
// renew deadline 10 s, retry 2 s): only the leader reconciles; a standby stays live and ready but idle;
// a leader that cannot renew within the deadline stops at once; a clean shutdown releases the lease so a
// standby takes over without waiting for it to expire. Every write carries the resourceVersion it read,
// so two candidates can never both believe they hold the lease.

import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import type { V1Lease } from "@kubernetes/client-node";
import { Gauge, Counter, type Registry } from "prom-client";
import type { Clock, Timer } from "../core/clock.ts";
import type { Logger } from "../observe/log.ts";
import type { KubeClient } from "../sources/kube/client.ts";
import { statusOf } from "../sources/kube/client.ts";

export interface LeaderElectionConfig {
  namespace: string;
  name: string;
  identity?: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

export interface LeaderCallbacks {
  onStartedLeading(): void;
  /** Called once when leadership is lost (not on release): the caller must stop all work at once. */
  onStoppedLeading(): void;
}

/** client-go's defaults (k8s.io/client-go/tools/leaderelection). */
export const DEFAULT_LEASE_DURATION_MS = 15_000;
export const DEFAULT_RENEW_DEADLINE_MS = 10_000;
export const DEFAULT_RETRY_PERIOD_MS = 2_000;
/** client-go's JitterFactor for acquire attempts. */
const JITTER = 1.2;

export class LeaderElector {
  readonly identity: string;
  private readonly cfg: Required<LeaderElectionConfig>;
  private readonly client: KubeClient;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly callbacks: LeaderCallbacks;
  private readonly leaderGauge: Gauge<"lease">;
  private readonly transitions: Counter<"lease">;
  /** The lease as last read, and when (by our clock) its record last changed: client-go's observedTime. */
  private observed: { lease: V1Lease; at: number } | undefined;
  private leading = false;
  private lastRenew = 0;
  private timer: Timer | undefined;
  /** Fires if no renewal succeeds within the renew deadline, even when a request hangs. */
  private deadline: Timer | undefined;
  private stopped = false;

  constructor(client: KubeClient, config: LeaderElectionConfig, clock: Clock, log: Logger, callbacks: LeaderCallbacks, registry?: Registry) {
    this.client = client;
    this.clock = clock;
    this.log = log;
    this.callbacks = callbacks;
    this.identity = config.identity ?? `${hostname()}_${randomBytes(4).toString("hex")}`;
    this.cfg = {
      namespace: config.namespace,
      name: config.name,
      identity: this.identity,
      leaseDurationMs: config.leaseDurationMs ?? DEFAULT_LEASE_DURATION_MS,
      renewDeadlineMs: config.renewDeadlineMs ?? DEFAULT_RENEW_DEADLINE_MS,
      retryPeriodMs: config.retryPeriodMs ?? DEFAULT_RETRY_PERIOD_MS,
    };
    if (!(this.cfg.leaseDurationMs > this.cfg.renewDeadlineMs && this.cfg.renewDeadlineMs > this.cfg.retryPeriodMs * JITTER)) {
      throw new RangeError("leader election needs leaseDuration > renewDeadline > retryPeriod × 1.2");
    }
    const registers = registry ? [registry] : [];
    this.leaderGauge = new Gauge({ name: "vireo_leader", help: "1 while this process holds the leader lease, else 0.", labelNames: ["lease"] as const, registers });
    this.transitions = new Counter({ name: "vireo_leader_transitions_total", help: "Times this process gained the leader lease.", labelNames: ["lease"] as const, registers });
    this.leaderGauge.set({ lease: this.cfg.name }, 0);
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** Starts trying to acquire the lease; callbacks say what happens next. */
  start(): void {
    this.schedule(0);
  }

  /** Stops trying; a leader releases the lease so a standby can take over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.deadline?.cancel();
    if (!this.leading) return;
    this.leading = false;
    this.leaderGauge.set({ lease: this.cfg.name }, 0);
    await this.release();
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = this.clock.setTimer(ms, () => {
      this.tick().catch((error: unknown) => this.log.error({ err: error }, "leader election step failed"));
    });
  }

  private async tick(): Promise<void> {
    const ok = await this.tryAcquireOrRenew();
    const now = this.clock.now();
    if (!this.leading && this.stopped) return;
    if (this.leading) {
      if (ok) this.renewed(now);
      else if (now - this.lastRenew >= this.cfg.renewDeadlineMs) return this.lose();
      return this.schedule(this.cfg.retryPeriodMs);
    }
    if (ok) {
      this.leading = true;
      this.renewed(now);
      this.leaderGauge.set({ lease: this.cfg.name }, 1);
      this.transitions.inc({ lease: this.cfg.name });
      this.log.info({ identity: this.identity, lease: `${this.cfg.namespace}/${this.cfg.name}` }, "became leader");
      this.callbacks.onStartedLeading();
      return this.schedule(this.cfg.retryPeriodMs);
    }
    this.schedule(this.cfg.retryPeriodMs * (1 + Math.random() * (JITTER - 1)));
  }

  private renewed(now: number): void {
    this.lastRenew = now;
    this.deadline?.cancel();
    this.deadline = this.clock.setTimer(this.cfg.renewDeadlineMs, () => { if (this.leading) this.lose(); });
  }

  private lose(): void {
    this.timer?.cancel();
    this.deadline?.cancel();
    this.leading = false;
    this.stopped = true;
    this.leaderGauge.set({ lease: this.cfg.name }, 0);
    this.log.error({ identity: this.identity }, "leader lease lost: stopping all work");
    this.callbacks.onStoppedLeading();
  }

  /** One attempt, as client-go's tryAcquireOrRenew: true when we hold the lease afterwards. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = this.clock.now();
    const durationSeconds = Math.round(this.cfg.leaseDurationMs / 1000);
    let current: V1Lease;
    try {
      current = await this.client.call("get", "leases", () => this.client.coordination.readNamespacedLease({ name: this.cfg.name, namespace: this.cfg.namespace }));
    } catch (error) {
      if (statusOf(error) !== 404) {
        this.log.warn({ err: error }, "reading the leader lease failed");
        return false;
      }
      return this.create(now, durationSeconds);
    }
    const spec = current.spec ?? {};
    if (!this.observed || this.observed.lease.metadata?.resourceVersion !== current.metadata?.resourceVersion) {
      this.observed = { lease: current, at: now };
    }
    const held = spec.holderIdentity !== undefined && spec.holderIdentity !== "" && spec.holderIdentity !== this.identity;
    const expired = this.observed.at + (spec.leaseDurationSeconds ?? durationSeconds) * 1000 <= now;
    if (held && !expired) return false;

    const mine = spec.holderIdentity === this.identity;
    const body: V1Lease = {
      ...current,
      spec: {
        ...spec,
        holderIdentity: this.identity,
        leaseDurationSeconds: durationSeconds,
        renewTime: microTime(now),
        acquireTime: mine && spec.acquireTime ? spec.acquireTime : microTime(now),
        leaseTransitions: (spec.leaseTransitions ?? 0) + (mine ? 0 : 1),
      },
    };
    try {
      const updated = await this.client.call("update", "leases", () => this.client.coordination.replaceNamespacedLease({ name: this.cfg.name, namespace: this.cfg.namespace, body }));
      this.observed = { lease: updated, at: now };
      return true;
    } catch (error) {
      if (statusOf(error) !== 409) this.log.warn({ err: error }, "updating the leader lease failed");
      return false;
    }
  }

  private async create(now: number, durationSeconds: number): Promise<boolean> {
    const body: V1Lease = {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: { name: this.cfg.name, namespace: this.cfg.namespace },
      spec: { holderIdentity: this.identity, leaseDurationSeconds: durationSeconds, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: 0 },
    };
    try {
      const created = await this.client.call("create", "leases", () => this.client.coordination.createNamespacedLease({ namespace: this.cfg.namespace, body }));
      this.observed = { lease: created, at: now };
      return true;
    } catch (error) {
      if (statusOf(error) !== 409) this.log.warn({ err: error }, "creating the leader lease failed");
      return false;
    }
  }

  /** client-go's ReleaseOnCancel: clear the holder and shorten the lease to 1 s. */
  private async release(): Promise<void> {
    const lease = this.observed?.lease;
    if (!lease || lease.spec?.holderIdentity !== this.identity) return;
    const body: V1Lease = { ...lease, spec: { ...lease.spec, holderIdentity: "", leaseDurationSeconds: 1, renewTime: microTime(this.clock.now()) } };
    try {
      await this.client.call("update", "leases", () => this.client.coordination.replaceNamespacedLease({ name: this.cfg.name, namespace: this.cfg.namespace, body }));
      this.log.info({ identity: this.identity }, "released the leader lease");
    } catch (error) {
      this.log.warn({ err: error }, "releasing the leader lease failed; a standby takes over when it expires");
    }
  }
}

/**
 * A Lease's time as the API server's MicroTime: RFC 3339 with microseconds (JSON goes through toISOString).
 * Written here rather than imported: the client library's class is only this, and importing it loads the
 * whole library's models.
 */
class MicroTime extends Date {
  override toISOString(): string {
    return super.toISOString().slice(0, -1) + "000Z";
  }
}

function microTime(ms: number): Date {
  return new MicroTime(ms);
}
