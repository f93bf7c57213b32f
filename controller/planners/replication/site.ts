// Whether a cluster's site is lost, and whether Vireo can know it. A site is lost when every host of it is
// silent on both the network and its heartbeat datastores — read by the controller, the witness that
// reaches the site's storage. A host the controller cannot read the storage of may be running behind a
// broken link: a loss that cannot be told from a partition is not a loss, and waits for a person (what
// Site Recovery Manager does). Pure.

import type { HostPhase } from "../../api/types.ts";

export interface SiteHost {
  name: string;
  phase: HostPhase;
  /** Last datastore heartbeat read, ms. */
  lastDatastoreHeartbeat?: number;
  /** Whether the controller could not read any of the host's heartbeat datastores at the last observation. */
  storageUnreadable: boolean;
}

export type SiteState =
  | { kind: "Up" }
  /** Every host confirmed down: since the last datastore heartbeat any of them wrote. */
  | { kind: "Lost"; since: number }
  /** Every host silent, but some only as far as the controller can tell: a person must decide. */
  | { kind: "Unconfirmed"; message: string };

export function siteState(cluster: string, hosts: readonly SiteHost[]): SiteState {
  if (hosts.length === 0) return { kind: "Up" };
  const silent = hosts.every((h) => h.phase === "Failed" || (h.phase === "Partitioned" && h.storageUnreadable));
  if (!silent) return { kind: "Up" };
  const unreadable = hosts.filter((h) => h.storageUnreadable).map((h) => h.name);
  if (unreadable.length > 0) {
    return {
      kind: "Unconfirmed",
      message: `every host of cluster ${cluster} is silent, but the controller cannot read the heartbeat datastores of ${unreadable.join(", ")}: `
        + "a site loss cannot be told from a partition; apply a RecoveryPlan with action Failover to recover from the replicas",
    };
  }
  return { kind: "Lost", since: Math.max(...hosts.map((h) => h.lastDatastoreHeartbeat ?? 0)) };
}
