// How long things take on the simulated hosts. Every figure is either a row of BEHAVIOUR.md or a
// choice, and says which.

export interface SimTimings {
  /** A live host sends a network heartbeat this often. */
  networkHeartbeatIntervalMs: number;
  /** A host with a working storage path writes its datastore heartbeat this often. */
  datastoreHeartbeatIntervalMs: number;
  /** A booted guest's agent (VMware Tools / qemu-guest-agent) heartbeats this often. */
  guestHeartbeatIntervalMs: number;
  /** Power-on to a booted guest: Starting lasts this long, then Running and the guest heartbeat begins. */
  bootMs: number;
  /** A guest asked to shut down is Stopping this long, then Off. */
  guestShutdownMs: number;
  /** A live host renews the disk locks of its powered-on VMs this often. */
  lockRenewIntervalMs: number;
  /** A disk lock not renewed for this long has expired: another host may take it. */
  lockExpiryMs: number;
  /** A host cut off from its peers and isolation address declares itself isolated after this long. */
  isolationDeclareMs: number;
  /** The isolation response fires this long after the host declared itself isolated. */
  isolationResponseDelayMs: number;
  /** Shutdown isolation response: a guest still on this long after it was asked to shut down is powered off. */
  isolationShutdownTimeoutMs: number;
}

export const DEFAULT_SIM_TIMINGS: Readonly<SimTimings> = Object.freeze({
  // BEHAVIOUR.md "Failure detection": network heartbeat interval between hosts and the HA leader, 1 s.
  networkHeartbeatIntervalMs: 1_000,
  // A choice: BEHAVIOUR.md gives no interval for the datastore heartbeat; the same 1 s as the network one
  // lets a watcher tell "fresh" from "stale" well inside the 3 s at which vSphere HA starts looking at it.
  datastoreHeartbeatIntervalMs: 1_000,
  // A choice: 1 s resolves the VM-monitoring presets (30/60/120 s without a heartbeat, BEHAVIOUR.md
  // "VM monitoring") to well under a percent.
  guestHeartbeatIntervalMs: 1_000,
  // A choice: a server Linux or Windows guest on virtual hardware reaches its guest agent in roughly
  // 15–30 s (firmware, kernel, init); 20 s sits in the middle.
  bootMs: 20_000,
  // A choice: a clean guest shutdown (stop services, sync, ACPI off) of an idle server takes seconds;
  // 10 s. BEHAVIOUR.md's 300 s is HA's patience before it powers off, not the usual duration.
  guestShutdownMs: 10_000,
  // A deliberate difference from BEHAVIOUR.md "Locks and fencing" (renewed every 20 s, expiring 80 s after
  // the last renewal): the same 1:4 ratio at a quarter of the scale, 5 s and 20 s, so a crashed host's VMs
  // may restart ~20 s after the crash and a failover completes in well under a minute (docs/ha.md).
  lockRenewIntervalMs: 5_000,
  lockExpiryMs: 20_000,
  // BEHAVIOUR.md "Failure detection": a host declares itself isolated 30 s after it lost its peers.
  isolationDeclareMs: 30_000,
  // BEHAVIOUR.md "Failure detection": the isolation response fires 30 s after the host declared itself isolated.
  isolationResponseDelayMs: 30_000,
  // BEHAVIOUR.md "Failure detection": Shutdown response — guest shutdown, then power off if still on after 300 s.
  isolationShutdownTimeoutMs: 300_000,
});

/** The defaults with `overrides` applied; refuses a figure that is not a positive number of milliseconds. */
export function resolveTimings(overrides: Partial<SimTimings> = {}): SimTimings {
  const timings: SimTimings = { ...DEFAULT_SIM_TIMINGS };
  for (const [name, value] of Object.entries(overrides)) {
    if (!(name in DEFAULT_SIM_TIMINGS)) throw new RangeError(`unknown simulator timing ${name}`);
    if (value === undefined) continue;
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
      throw new RangeError(`simulator timing ${name} must be a positive number of ms, got ${String(value)}`);
    }
    timings[name as keyof SimTimings] = value;
  }
  return timings;
}
